"""Files, symbols, tests and the test map of each source content (`files`, `symbols`, `tests`,
`coverage`), and the `Index` they make."""

from __future__ import annotations

import json

from regrow.core.index import Index, symbol_from_json, symbol_to_json
from regrow.core.symbol import Symbol
from regrow.store.db import Store


def save_static(store: Store, source_key: str, files: dict, modules: dict, symbols: list[Symbol]) -> None:
    with store.write() as w:
        w.execute("DELETE FROM files WHERE source_key=?", (source_key,))
        w.execute("DELETE FROM symbols WHERE source_key=?", (source_key,))
        w.executemany("INSERT INTO files (source_key, path, module, status) VALUES (?, ?, ?, ?)",
                      [(source_key, p, modules.get(p, ""), s) for p, s in files.items()])
        w.executemany("INSERT INTO symbols (source_key, qualname, path, data) VALUES (?, ?, ?, ?)",
                      [(source_key, s.qualname, s.path, symbol_to_json(s)) for s in symbols])


def save_testmap(store: Store, source_key: str, tests: dict, coverage: dict) -> None:
    with store.write() as w:
        w.execute("DELETE FROM tests WHERE source_key=?", (source_key,))
        w.execute("DELETE FROM coverage WHERE source_key=?", (source_key,))
        w.executemany("INSERT INTO tests (source_key, test_id, outcome, duration) VALUES (?, ?, ?, ?)",
                      [(source_key, t, o, d) for t, (o, d) in tests.items()])
        w.executemany("INSERT INTO coverage (source_key, qualname, test_id) VALUES (?, ?, ?)",
                      [(source_key, q, t) for q, ids in coverage.items() for t in ids])


def load_index(store: Store, source_key: str) -> Index:
    symbols = {r["qualname"]: symbol_from_json(r["data"])
               for r in store.query("SELECT qualname, data FROM symbols WHERE source_key=? ORDER BY path, qualname", (source_key,))}
    files = {r["path"]: r["status"] for r in store.query("SELECT path, status FROM files WHERE source_key=?", (source_key,))}
    tests = {r["test_id"]: (r["outcome"], r["duration"])
             for r in store.query("SELECT test_id, outcome, duration FROM tests WHERE source_key=?", (source_key,))}
    coverage: dict[str, list[str]] = {}
    for r in store.query("SELECT qualname, test_id FROM coverage WHERE source_key=? ORDER BY test_id", (source_key,)):
        coverage.setdefault(r["qualname"], []).append(r["test_id"])
    row = store.one("SELECT facts FROM sources WHERE source_key=?", (source_key,))
    facts = json.loads(row["facts"]) if row else {}
    return Index(source_key, symbols, files, tests, {q: tuple(v) for q, v in coverage.items()}, facts)


def file_statuses(store: Store, source_key: str) -> dict[str, str]:
    """{relpath: "ok" or why it was skipped}."""
    return {r["path"]: r["status"] for r in store.query("SELECT path, status FROM files WHERE source_key=?",
                                                        (source_key,))}


def file_modules(store: Store, source_key: str, ok_only: bool = False) -> dict[str, str]:
    """{relpath: module name} (``ok_only``: only the files that parsed)."""
    sql = "SELECT path, module FROM files WHERE source_key=?" + (" AND status='ok'" if ok_only else "")
    return {r["path"]: r["module"] for r in store.query(sql, (source_key,))}


def copy_static(store: Store, source_key: str, from_key: str, changed: list[str],
                parsed: dict[str, tuple[str, str, list[Symbol]]]) -> None:
    """An incremental static grok: ``from_key``'s files, symbols and edges become ``source_key``'s,
    except the ``changed`` files, whose rows become ``parsed`` (relpath -> module, status, symbols)."""
    with store.write() as w:
        w.execute("DELETE FROM files WHERE source_key=?", (source_key,))
        w.execute("INSERT INTO files (source_key, path, module, status) "
                  "SELECT ?, path, module, status FROM files WHERE source_key=?", (source_key, from_key))
        w.execute("DELETE FROM symbols WHERE source_key=?", (source_key,))
        w.execute("INSERT INTO symbols (source_key, qualname, path, data) "
                  "SELECT ?, qualname, path, data FROM symbols WHERE source_key=?", (source_key, from_key))
        w.execute("DELETE FROM edges WHERE source_key=?", (source_key,))
        w.execute("INSERT INTO edges (source_key, src, dst, kind, line) "
                  "SELECT ?, src, dst, kind, line FROM edges WHERE source_key=?", (source_key, from_key))
        for rel in changed:
            w.execute("DELETE FROM files WHERE source_key=? AND path=?", (source_key, rel))
            w.execute("DELETE FROM symbols WHERE source_key=? AND path=?", (source_key, rel))
        for rel, (module, status, symbols) in parsed.items():
            w.execute("INSERT INTO files (source_key, path, module, status) VALUES (?, ?, ?, ?)",
                      (source_key, rel, module, status))
            w.executemany("INSERT OR REPLACE INTO symbols (source_key, qualname, path, data) VALUES (?, ?, ?, ?)",
                          [(source_key, s.qualname, s.path, symbol_to_json(s)) for s in symbols])
