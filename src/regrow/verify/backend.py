"""The `VerifyBackend` seam: where a candidate's covering tests (and its replayed calls) run.

The `Verifier` decides; a backend only runs. Two backends implement the three calls:

- `WarmBackend`: the warm engine (`regrow.verify.engine`): a worker per source that collected
  the suite once, a forked, isolated child per candidate; replays recorded calls too;
- `SubprocessBackend`: a fresh ``python -m pytest`` per candidate on a private copy
  (`regrow.verify.sandbox.LocalSandbox`); it cannot replay (``replay`` returns None), so the
  equivalence check is skipped with it.

`backend_for(trust, ...)` picks the default for a trust level; a caller may hand the verifier
any object with these three methods instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from regrow.source.workspace import private_copy, remove_tree, replace_file, scratch_dir
from regrow.verify.engine import Engine, EngineConfig, Replay
from regrow.verify.sandbox import Job, LocalSandbox, Outcome, Sandbox

__all__ = ["SubprocessBackend", "VerifyBackend", "WarmBackend", "backend_for"]

Symbol = tuple[str, int, int]  # (function name, first line, last line) in the candidate's file


class VerifyBackend(Protocol):
    name: str  # "warm" or "subprocess": what verdicts record as the engine

    def run(self, relpath: str, text: str | None, test_ids: tuple[str, ...], *, symbol: Symbol | None = None,
            classes: tuple[str, ...] = (), timeout: float, memory_mb: int, fail_fast: bool = False,
            replay: tuple[str, list[str]] | None = None,
            while_waiting: Callable[[], object] | None = None) -> Outcome:
        """Run ``test_ids`` where ``relpath`` holds ``text`` (None: the pristine file); never raises
        for what the candidate did. ``replay`` (qualname, cases): replay those calls alongside,
        its `Replay` in ``outcome.extra["replay"]`` (backends that cannot, ignore it)."""
        ...

    def replay(self, relpath: str, text: str, symbol: Symbol, classes: tuple[str, ...], qualname: str,
               cases: list[str], *, timeout: float, memory_mb: int) -> Replay | None:
        """Call ``qualname`` on each pickled argument set in a fresh child; None: cannot replay."""
        ...

    def close(self) -> None:
        ...


class WarmBackend:
    """The warm engine behind the seam (see `regrow.verify.engine.Engine`)."""

    name = "warm"

    def __init__(self, engine: Engine):
        self.engine = engine

    def run(self, relpath, text, test_ids, *, symbol=None, classes=(), timeout, memory_mb, fail_fast=False,
            replay=None, while_waiting=None) -> Outcome:
        return self.engine.run(self.engine.files(relpath, text, symbol, classes), test_ids, timeout=timeout,
                               memory_mb=memory_mb, replay=replay, while_waiting=while_waiting, fail_fast=fail_fast)

    def replay(self, relpath, text, symbol, classes, qualname, cases, *, timeout, memory_mb) -> Replay:
        return self.engine.replay(self.engine.files(relpath, text, symbol, classes), qualname, list(cases),
                                  timeout=timeout, memory_mb=memory_mb)

    def close(self) -> None:
        self.engine.close()


class SubprocessBackend:
    """A fresh pytest per candidate on a private, unlinked copy of ``root``."""

    name = "subprocess"

    def __init__(self, root: Path, python: Path, import_roots: tuple[str, ...], *, sandbox: Sandbox | None = None,
                 workdir: Path | None = None, pytest_args: tuple[str, ...] = ()):
        self.root, self.python, self.import_roots = Path(root), Path(python), tuple(import_roots)
        self.sandbox = sandbox or LocalSandbox()
        self.workdir = workdir
        self.pytest_args = tuple(pytest_args)

    def run(self, relpath, text, test_ids, *, symbol=None, classes=(), timeout, memory_mb, fail_fast=False,
            replay=None, while_waiting=None) -> Outcome:
        tmp = scratch_dir("verify", self.workdir)
        try:
            copy = private_copy(self.root, tmp / "src", link=False)  # writes must not reach the pristine tree
            if text is not None:
                replace_file(copy, relpath, text)
            paths = tuple(str(copy / r) if r not in (".", "") else str(copy) for r in self.import_roots)
            job = Job(cwd=copy, python=self.python, test_ids=test_ids, pythonpath=paths, timeout=timeout,
                      memory_mb=memory_mb, pytest_args=(*self.pytest_args, *(("-x",) if fail_fast else ())))
            outcome = self.sandbox.run(job)
            return replace(outcome, extra=dict(outcome.extra, engine="subprocess"))
        finally:
            remove_tree(tmp)

    def replay(self, relpath, text, symbol, classes, qualname, cases, *, timeout, memory_mb) -> None:
        return None

    def close(self) -> None:
        return None


def backend_for(trust: str, root: Path, python: Path, import_roots: tuple[str, ...], *, workers: int,
                hide: tuple[str, ...], pytest_args: tuple[str, ...], workdir: Path | None = None,
                engine_config: EngineConfig | None = None) -> VerifyBackend:
    """The default backend of a trust level: the warm engine, or a fresh pytest for ``subprocess``."""
    if trust == "subprocess":
        return SubprocessBackend(root, python, import_roots, workdir=workdir, pytest_args=pytest_args)
    ecfg = engine_config or EngineConfig()
    return WarmBackend(Engine(Path(root), Path(python), tuple(import_roots), workdir=workdir,
                              config=replace(ecfg, workers=workers, hide=tuple(hide) + ecfg.hide,
                                             pytest_args=tuple(pytest_args) + ecfg.pytest_args)))
