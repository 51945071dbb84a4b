"""`Index`: what grok knows about one source content, loaded from or saved to the store."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .store import Store
from .symbols import Symbol


def symbol_to_json(symbol: Symbol) -> str:
    return json.dumps(asdict(symbol), sort_keys=True)


def symbol_from_json(text: str) -> Symbol:
    data = json.loads(text)
    data["decorators"] = tuple(data.get("decorators") or ())
    data["flags"] = tuple(data.get("flags") or ())
    return Symbol(**data)


@dataclass(frozen=True, slots=True)
class Index:
    source_key: str
    symbols: dict  # qualname -> Symbol
    files: dict  # relpath -> "ok" or the reason it was skipped
    tests: dict = field(default_factory=dict)  # test id -> (outcome, duration)
    coverage: dict = field(default_factory=dict)  # qualname -> tuple of covering test ids (passed on the reference)
    facts: dict = field(default_factory=dict)

    def covering(self, qualname: str) -> tuple[str, ...]:
        return self.coverage.get(qualname, ())

    def test_seconds(self, test_ids) -> float:
        return sum(self.tests.get(t, ("", 0.0))[1] for t in test_ids)

    @property
    def skipped_files(self) -> dict:
        return {p: s for p, s in self.files.items() if s != "ok"}


def save_static(store: Store, source_key: str, files: dict, modules: dict, symbols: list[Symbol]) -> None:
    with store.write() as w:
        w.execute("DELETE FROM files WHERE source_key=?", (source_key,))
        w.execute("DELETE FROM symbols WHERE source_key=?", (source_key,))
        w.executemany("INSERT INTO files VALUES (?, ?, ?, ?)",
                      [(source_key, p, modules.get(p, ""), s) for p, s in files.items()])
        w.executemany("INSERT INTO symbols VALUES (?, ?, ?, ?)",
                      [(source_key, s.qualname, s.path, symbol_to_json(s)) for s in symbols])


def save_testmap(store: Store, source_key: str, tests: dict, coverage: dict) -> None:
    with store.write() as w:
        w.execute("DELETE FROM tests WHERE source_key=?", (source_key,))
        w.execute("DELETE FROM coverage WHERE source_key=?", (source_key,))
        w.executemany("INSERT INTO tests VALUES (?, ?, ?, ?)",
                      [(source_key, t, o, d) for t, (o, d) in tests.items()])
        w.executemany("INSERT INTO coverage VALUES (?, ?, ?)",
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
