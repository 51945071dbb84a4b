"""Git facts (part of grok): per Python file, its last change, churn, authors and co-changed files.

Read with one ``git log --name-only`` over the newest `MAX_COMMITS` commits; commits that touch
more than `BULK_COMMIT_FILES` Python files (reformatting, renames) do not count for co-change.
A source without git history (a directory that is not a checkout, an sdist) has no git facts;
nothing fails. Per symbol, `symbol_history` asks ``git log -L`` on demand (dates and subjects
only, never the diff: in task mode the diff would show the hidden body).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path


MAX_COMMITS = 2000
BULK_COMMIT_FILES = 40
CO_CHANGED = 5
GIT_TIMEOUT_S = 30


def _git(root: Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def collect(root: Path, *, max_commits: int = MAX_COMMITS) -> dict[str, dict]:
    """``{relpath: facts}`` for the Python files under ``root`` that git knows; {} without git."""
    root = Path(root)
    prefix = _git(root, "rev-parse", "--show-prefix")
    if prefix is None:
        return {}
    prefix = prefix.strip()
    log = _git(root, "log", f"-n{max_commits}", "--no-renames", "--format=%x1e%H%x1f%at%x1f%an%x1f%s",
               "--name-only", "--", ".")
    if not log:
        return {}
    commits = []
    for block in log.split("\x1e")[1:]:
        head, _, names = block.partition("\n")
        rev, when, author, subject = (head.split("\x1f") + ["", "", "", ""])[:4]
        files = [n[len(prefix):] for n in names.splitlines()
                 if n.endswith(".py") and n.startswith(prefix)]
        commits.append((rev, int(when or 0), author, subject, files))
    facts: dict[str, dict] = {}
    co: dict[str, Counter] = {}
    authors: dict[str, set] = {}
    for rev, when, author, subject, files in commits:  # newest first
        for f in files:
            entry = facts.setdefault(f, {"commits": 0, "last_rev": rev[:12], "last_time": when,
                                         "last_subject": subject[:120]})
            entry["commits"] += 1
            entry["first_time"] = when
            authors.setdefault(f, set()).add(author)
        if 1 < len(files) <= BULK_COMMIT_FILES:
            for f in files:
                co.setdefault(f, Counter()).update(g for g in files if g != f)
    for f, entry in facts.items():
        entry["authors"] = len(authors.get(f, ()))
        pairs = sorted(co.get(f, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
        entry["co_changed"] = [[g, n] for g, n in pairs[:CO_CHANGED] if (root / g).is_file()]
    entry_total = {"commits_read": len(commits), "head": commits[0][0][:12] if commits else None}
    return {**dict(sorted(facts.items())), ".": entry_total}


def symbol_history(root: Path, relpath: str, start: int, end: int, *, limit: int = 5) -> list[dict]:
    """The newest commits that changed lines ``start..end`` of ``relpath``: rev, time, subject."""
    out = _git(Path(root), "log", f"-n{limit}", "--no-patch", "--format=%x1e%H%x1f%at%x1f%s",
               f"-L{start},{end}:{relpath}", timeout=10)
    if not out:
        return []
    rows = []
    for block in out.split("\x1e")[1:]:
        rev, when, subject = (block.strip().split("\x1f") + ["", "", ""])[:3]
        rows.append({"rev": rev[:12], "time": int(when or 0), "subject": subject[:120]})
    return rows
