"""grok: parse every module, map tests to functions, persist it all keyed by content.

A second grok of unchanged content reads the store and runs nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from .envs import Environment
from .errors import NoTestsError
from .index import Index, load_index, save_static, save_testmap
from .parse import parse_file
from .source import Source, iter_python_files
from .store import Store
from .testmap import run_test_map

Log = Callable[[str], None]


def _upsert_source(store: Store, source: Source) -> dict:
    row = store.one("SELECT * FROM sources WHERE source_key=?", (source.key,))
    if row is None:
        with store.write() as w:
            w.execute("INSERT INTO sources(source_key, spec, name, version, root, git_rev, facts) VALUES (?,?,?,?,?,?,?)",
                      (source.key, source.spec, source.name, source.version, str(source.root), source.git_rev,
                       json.dumps({"import_roots": list(source.import_roots)})))
        row = store.one("SELECT * FROM sources WHERE source_key=?", (source.key,))
    return dict(row)


def _update_facts(store: Store, key: str, column: str | None, **facts) -> None:
    row = store.one("SELECT facts FROM sources WHERE source_key=?", (key,))
    merged = {**json.loads(row["facts"]), **facts}
    with store.write() as w:
        w.execute("UPDATE sources SET facts=? WHERE source_key=?", (json.dumps(merged), key))
        if column:
            w.execute(f"UPDATE sources SET {column}=? WHERE source_key=?", (time.time(), key))


def grok_static(source: Source) -> tuple[dict, dict, list]:
    """(file statuses, file modules, symbols) from parsing every Python file of ``source``."""
    files: dict[str, str] = {}
    modules: dict[str, str] = {}
    symbols = []
    for path in iter_python_files(source.root):
        rel = path.relative_to(source.root).as_posix()
        parsed = parse_file(source.root, rel, source.import_roots)
        files[rel] = parsed.error or "ok"
        modules[rel] = parsed.module
        symbols.extend(parsed.symbols)
    for rel, reason in source.skipped:
        if rel.endswith(".py"):
            files.setdefault(rel, reason)
    return files, modules, symbols


def grok(source: Source, env: Environment, store: Store, *, timeout: float = 1800.0, force: bool = False,
         workdir: Path | None = None, log: Log | None = None) -> Index:
    log = log or (lambda _msg: None)
    row = _upsert_source(store, source)
    if force or row["static_done"] is None:
        start = time.perf_counter()
        files, modules, symbols = grok_static(source)
        save_static(store, source.key, files, modules, symbols)
        skipped = sum(1 for s in files.values() if s != "ok")
        _update_facts(store, source.key, "static_done", static_seconds=time.perf_counter() - start,
                      n_files=len(files), n_skipped_files=skipped)
        log(f"parsed {len(files)} files ({skipped} skipped), {len(symbols)} functions")
    if force or row["testmap_done"] is None:
        log("running the test suite under coverage to map tests to functions")
        start = time.perf_counter()
        tmap = run_test_map(source.root, env.python, source.import_roots, timeout=timeout, workdir=workdir)
        seconds = time.perf_counter() - start
        passed = sum(1 for o, _ in tmap.tests.values() if o == "passed")
        if not tmap.tests:
            reason = "timed out" if tmap.outcome.timed_out else "collected no tests"
            raise NoTestsError(f"the test suite of {source.name} {reason}; nothing to score.\n"
                               f"pytest said:\n{tmap.outcome.output_tail[-1500:]}")
        if passed == 0:
            raise NoTestsError(f"every test of {source.name} fails before any change; nothing to score.\n"
                               f"pytest said:\n{tmap.outcome.output_tail[-1500:]}")
        index = load_index(store, source.key)
        coverage = {}
        for sym in index.symbols.values():
            ids = tmap.covering(sym)
            if ids and not sym.is_test:
                coverage[sym.qualname] = ids
        save_testmap(store, source.key, tmap.tests, coverage)
        _update_facts(store, source.key, "testmap_done", testmap_seconds=seconds, n_tests=len(tmap.tests),
                      n_tests_passed=passed, collect_errors=len(tmap.outcome.collect_errors),
                      suite_timed_out=tmap.outcome.timed_out)
        log(f"test map: {len(tmap.tests)} tests ({passed} passed) in {seconds:.1f}s, "
            f"{len(coverage)} functions covered")
    return load_index(store, source.key)
