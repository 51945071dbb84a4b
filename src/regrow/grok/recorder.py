"""Recorded calls: what each function received and returned while the suite ran on the reference.

`record_calls` runs the suite once more (not under coverage, so the test map stays exactly as
measured) with ``_plugin/regrow_record.py`` wrapping the target's functions, and stores one row
per recorded call in the store's ``calls`` table:

- ``args``: the arguments pickled at entry, base64 (NULL when not picklable); the equivalence
  check replays them (`regrow.verify.equivalence`; a coroutine function's call is awaited there);
- ``result``: the canonical serialisation of the return value (`_plugin/regrow_canon.py`), NULL
  for iterators and values holding one (never consumed while a test uses them), unpicklable
  values or when it raised. A coroutine function's row holds what its call awaited to (or the
  exception it raised); a generator function's row is taken when its generator first runs;
- ``exception``, ``arg_types``, ``return_type``, ``summary`` (short reprs): runtime facts for the
  context engine, filled for every recorded call even when nothing could be serialised.

Functions a wrapper could not stand in for faithfully (async generators, functions referenced
by identity elsewhere, ...: see the recorder plugin) are not recorded at all.

Caps keep grok's cost bounded: at most 50 calls per function, 5 of them from any one test,
pickles up to 64 KiB, 256 MiB of records in all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from regrow.verify.sandbox import Job, LocalSandbox, Outcome, Sandbox
from regrow.store import Store
from regrow.store.calls import call_args, replace_calls
from regrow.source.workspace import private_copy, remove_tree, scratch_dir


@dataclass(frozen=True, slots=True)
class Recording:
    calls: int  # rows stored
    functions: int  # distinct functions with at least one call
    outcome: Outcome


def record_calls(root: Path, python: Path, import_roots: tuple[str, ...], store: Store, source_key: str, *,
                 qualnames: set[str] | None = None, timeout: float = 1800.0, sandbox: Sandbox | None = None,
                 workdir: Path | None = None, pytest_args: tuple[str, ...] = (),
                 test_timeout: float = 0.0) -> Recording:
    """Run the suite on a private copy of ``root`` recording calls; replace ``source_key``'s rows."""
    sandbox = sandbox or LocalSandbox()
    tmp = scratch_dir("record", workdir)
    try:
        copy = private_copy(root, tmp / "src", link=False)
        out = tmp / "calls.jsonl"
        sources = [str(copy / r) if r not in (".", "") else str(copy) for r in import_roots]
        job = Job(cwd=copy, python=python, pythonpath=tuple(sources), timeout=timeout, memory_mb=8192,
                  pytest_args=pytest_args, grok=True, test_timeout=test_timeout,
                  env={"REGROW_RECORD": str(out), "REGROW_RECORD_ROOTS": os.pathsep.join(sources)})
        outcome = sandbox.run(job)
        rows = list(_rows(out, source_key, qualnames))
        replace_calls(store, source_key, rows)
        return Recording(len(rows), len({r[1] for r in rows}), outcome)
    finally:
        remove_tree(tmp)


def _rows(path: Path, source_key: str, qualnames: set[str] | None):
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            q = rec.get("q")
            if not isinstance(q, str) or (qualnames is not None and q not in qualnames):
                continue
            result = rec.get("result")
            yield (source_key, q, int(rec.get("seq") or 0), str(rec.get("test", "")), rec.get("args"),
                   json.dumps(result) if result is not None and "exception" not in rec else None,
                   rec.get("exception"), json.dumps(rec.get("arg_types") or {}), rec.get("return_type"),
                   json.dumps(rec.get("summary") or {}))


class CallLog:
    """Reads recorded calls of one source for the equivalence check."""

    def __init__(self, store: Store, source_key: str):
        self.store, self.source_key = store, source_key

    def cases(self, qualname: str) -> list[str]:
        """Pickled argument sets (base64) of ``qualname``'s recorded calls, in recording order."""
        return call_args(self.store, self.source_key, qualname)
