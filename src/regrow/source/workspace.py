"""Private copies of a source tree, made of hard links so a copy costs no file data.

A file that a candidate changes is *replaced* (unlink, then write a new inode), never written
through the link, so the pristine tree is not touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

EXCLUDED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".regrow", ".venv", "venv", ".tox", ".nox", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules", ".eggs",
})


def private_copy(root: Path, dest: Path, *, link: bool = True) -> Path:
    """Mirror ``root`` into ``dest`` with hard links (plain copies across file systems, or ``link=False``).

    Version-control metadata and caches are left out: the copy holds no history. A copy that
    untrusted code may write to must not be linked: writing through a hard link would change
    the pristine tree.
    """
    root, dest = Path(root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    can_link = link
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS and not d.endswith(".egg-info")]
        rel = os.path.relpath(dirpath, root)
        target_dir = dest if rel == "." else dest / rel
        target_dir.mkdir(exist_ok=True)
        for name in filenames:
            src = os.path.join(dirpath, name)
            dst = target_dir / name
            if os.path.islink(src):
                continue  # links could point outside the tree
            if can_link:
                try:
                    os.link(src, dst)
                    continue
                except OSError:
                    can_link = False
            shutil.copy2(src, dst)
    return dest


def replace_file(copy_root: Path, relpath: str, text: str) -> None:
    """Give ``relpath`` in a private copy new content without touching the linked original."""
    path = Path(copy_root) / relpath
    tmp = path.with_name(path.name + ".regrow-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # replaces the directory entry; the shared inode is left as it was


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


_SCRATCH = re.compile(r"^regrow-(verify|job|testmap|record)-(\d+)-")
_swept: set[str] = set()


def scratch_dir(kind: str, workdir: Path | None = None) -> Path:
    """A new temporary folder ``regrow-KIND-PID-XXXX`` for one job.

    The pid lets a later process remove what a process killed with -9 (or interrupted past its
    ``finally``) left behind: the first scratch folder a process makes in a base folder sweeps
    the ones whose process is gone (`sweep_scratch`).
    """
    base = str(workdir) if workdir else tempfile.gettempdir()
    if base not in _swept:
        _swept.add(base)
        sweep_scratch(Path(base))
    return Path(tempfile.mkdtemp(prefix=f"regrow-{kind}-{os.getpid()}-", dir=base))


def sweep_scratch(base: Path) -> int:
    """Remove the scratch folders in ``base`` whose process is no longer alive; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    for entry in entries:
        m = _SCRATCH.match(entry.name)
        if not m or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            os.kill(int(m.group(2)), 0)
            continue  # its process is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # alive under another user, or not a pid: not ours to judge
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed
