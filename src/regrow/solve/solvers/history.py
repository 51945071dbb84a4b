"""``history@REV``: the body as it stood at an older git revision.

Measures how a model frozen at REV would fare: where the function existed then (same file and
qualified name), its old body is the candidate; where it did not, the answer is empty.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from regrow.errors import ConfigError
from regrow.tasks.hollow import erase
from regrow.grok.parse import parse_text
from regrow.solve.solvers.base import Completion, SolveRequest


class HistorySolver:
    def __init__(self, rev: str, *, root: Path | None):
        if root is None or not (Path(root) / ".git").exists():
            raise ConfigError(f"history@{rev} needs a git repository as the source")
        self.rev, self.root = rev, Path(root)
        self.name = self.identity = f"history@{rev}"
        self.options = None
        res = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=self.root,
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise ConfigError(f"history@{rev}: no such revision in {self.root}")
        self.commit = res.stdout.strip()

    @lru_cache(maxsize=256)
    def _old_file(self, path: str) -> str | None:
        res = subprocess.run(["git", "show", f"{self.commit}:{path}"], cwd=self.root, capture_output=True)
        if res.returncode != 0:
            return None
        try:
            return res.stdout.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def old_body(self, path: str, module: str, local_name: str) -> str | None:
        text = self._old_file(path)
        if text is None:
            return None
        parsed = parse_text(text, path, module)
        for sym in parsed.symbols:  # exact local name: a shadowed duplicate carries "@line"
            if sym.qualname.split(":", 1)[1] == local_name:
                try:
                    return erase(text, sym)[1]
                except ValueError:
                    return None
        return None

    def propose(self, request: SolveRequest) -> list[Completion]:
        sym = request.task.symbol
        body = self.old_body(sym.path, sym.module, sym.qualname.split(":", 1)[1])
        meta = {"revision": self.commit, "existed": body is not None}
        return [Completion(text=body or "", body=body, meta=meta) for _ in range(request.n)]


def from_spec(arg: str, options=None, *, root=None, index=None, kind: str = "history") -> HistorySolver:
    return HistorySolver(arg, root=root)
