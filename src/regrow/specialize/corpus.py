"""Real history for drift: a git repository whose commits are successive releases of a package.

`release_history("cachetools", ["5.0.0", "5.1.0", ...], dest, downloads=...)` downloads each
version's source distribution with pip (``pip download --no-deps --no-binary :all:``, cached in
``downloads``), and commits its tree to ``dest``, one commit per release in release order, dated
as released (author and committer date) and tagged ``vVERSION``. The release date is the
modification time of the archive's top-level ``PKG-INFO``: the build tool writes it when the
sdist is made, on the day of the release. Build leftovers (``*.egg-info``, ``__pycache__``) are
left out of the tree; everything else the sdist ships (code, tests, docs) is committed.

A repository already built from the same releases is reused as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from regrow.errors import SourceError

PIP_TIMEOUT_S = 300
_SKIP = (".egg-info", "__pycache__", ".pyc")
_NOT_CODE_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks", "bench"}
_NOT_CODE_FILES = {"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "tasks.py"}


def is_package_code(path: str) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is the package's own Python code."""
    p = PurePosixPath(path)
    if p.suffix != ".py" or p.name in _NOT_CODE_FILES:
        return False
    if p.name.startswith("test_") or p.name.endswith("_test.py"):
        return False
    return not any(part in _NOT_CODE_DIRS or part.startswith(".") for part in p.parts[:-1])


@dataclass(frozen=True)
class Release:
    """One sdist: its version, archive and release time (epoch seconds, UTC)."""

    version: str
    archive: Path
    released: int

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.released, timezone.utc).strftime("%Y-%m-%d")


def _nothing(_line: str) -> None:
    return None


def fetch_sdist(name: str, version: str, downloads: Path, *, log: Callable[[str], None] = _nothing) -> Path:
    """The sdist of ``name==version`` in ``downloads``, downloaded with pip when not there yet."""
    downloads = Path(downloads)
    downloads.mkdir(parents=True, exist_ok=True)
    found = _cached(name, version, downloads)
    if found is not None:
        return found
    log(f"downloading the sdist of {name}=={version}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
           "--dest", str(downloads), f"{name}=={version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"pip download {name}=={version} took more than {PIP_TIMEOUT_S}s") from exc
    found = _cached(name, version, downloads)
    if done.returncode != 0 or found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SourceError(f"could not download the sdist of {name}=={version}: {tail[0]}")
    return found


def _cached(name: str, version: str, downloads: Path) -> Path | None:
    stems = {f"{n}-{version}" for n in (name, name.replace("-", "_"), name.replace("_", "-"), name.lower())}
    for path in sorted(downloads.iterdir()):
        for ext in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
            if path.name.endswith(ext) and path.name[: -len(ext)].lower() in {s.lower() for s in stems}:
                return path
    return None


def release_time(archive: Path) -> int:
    """When the sdist was built: the mtime of its top-level ``PKG-INFO`` (else its newest member)."""
    members: list[tuple[str, int]] = []
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                stamp = datetime(*info.date_time, tzinfo=timezone.utc).timestamp()
                members.append((info.filename, int(stamp)))
    else:
        with tarfile.open(archive) as tf:
            members = [(m.name, int(m.mtime)) for m in tf.getmembers() if m.isfile()]
    if not members:
        raise SourceError(f"{archive.name} is empty")
    for member, stamp in members:
        parts = member.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "PKG-INFO":
            return stamp
    return max(stamp for _, stamp in members)


def _unpack(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into ``target``; returns the folder holding the project (the single
    top-level folder sdists have)."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename.startswith("/") or ".." in Path(info.filename).parts:
                    raise SourceError(f"{archive.name}: unsafe member {info.filename}")
            zf.extractall(target)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter="data")
    entries = [p for p in target.iterdir()]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _git(root: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SourceError(f"git {' '.join(args[:2])} failed in {root}: {done.stderr.strip()[:200]}")
    return done.stdout


def releases(name: str, versions: Sequence[str], downloads: Path, *,
             log: Callable[[str], None] = _nothing) -> list[Release]:
    """The sdists of ``versions``, in release order."""
    found = []
    for version in versions:
        archive = fetch_sdist(name, version, downloads, log=log)
        found.append(Release(version, archive, release_time(archive)))
    return sorted(found, key=lambda r: (r.released, r.version))


def release_history(name: str, versions: Sequence[str], dest: Path, *, downloads: Path,
                    log: Callable[[str], None] = _nothing) -> Path:
    """Build (or reuse) ``dest``: one commit per release of ``name``, dated as released."""
    dest = Path(dest)
    ordered = releases(name, versions, downloads, log=log)
    wanted = [f"v{r.version}" for r in ordered]
    if (dest / ".git").is_dir():
        have = _git(dest, "log", "--format=%D", "--reverse").split("\n")
        tags = [t.strip().removeprefix("tag: ") for line in have for t in line.split(",") if "tag: " in t]
        if tags == wanted:
            return dest
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _git(dest, "init", "-q", "-b", "main")
    for rel in ordered:
        with tempfile.TemporaryDirectory(prefix="regrow-release-") as tmp:
            tree = _unpack(rel.archive, Path(tmp))
            for entry in dest.iterdir():  # the previous release's tree goes; .git stays
                if entry.name != ".git":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            _copy_tree(tree, dest)
        stamp = f"@{rel.released} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
               "GIT_AUTHOR_NAME": f"{name} releases", "GIT_AUTHOR_EMAIL": "releases@example.invalid",
               "GIT_COMMITTER_NAME": f"{name} releases", "GIT_COMMITTER_EMAIL": "releases@example.invalid"}
        _git(dest, "add", "-A")
        _git(dest, "commit", "-q", "--allow-empty", "-m", f"{name} {rel.version} (released {rel.date})", env=env)
        _git(dest, "tag", f"v{rel.version}")
        log(f"committed {name} {rel.version} ({rel.date})")
    return dest


def _copy_tree(src: Path, dest: Path) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part.endswith(_SKIP) for part in rel.parts):
            continue
        target = dest / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
