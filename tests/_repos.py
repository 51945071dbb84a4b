"""Throwaway repositories for tests: write a tree of files under ``tmp_path`` in one call."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path


def make_file(root: Path, relpath: str, text: str | bytes = "") -> Path:
    """Write ``relpath`` under ``root`` (parents created); ``str`` content is dedented first."""
    path = Path(root) / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def make_repo(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write every ``{relpath: content}`` under ``root`` and return ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for relpath, text in files.items():
        make_file(root, relpath, text)
    return root


def git_init(root: Path) -> str:
    """Make ``root`` a git repository with everything committed; returns the commit id."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init")
    return git("rev-parse", "HEAD").strip()


def fixture_config(home: Path, **kw):
    """The RunConfig tests use on fixture packages: this interpreter (it has pytest and coverage),
    two workers, 30 s per candidate; ``kw`` overrides any field."""
    import sys

    from regrow.config import RunConfig

    return RunConfig(**{"home": home, "python": Path(sys.executable), "workers": 2, "timeout": 30, **kw})
