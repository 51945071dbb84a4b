"""The symbol graph's edges (`edges`): calls, references, imports, inheritance, and the
``define:*``, ``bind`` and ``base`` rows the name table is rebuilt from."""

from __future__ import annotations

import sqlite3

from regrow.store.db import Store

_INSERT = "INSERT OR IGNORE INTO edges (source_key, src, dst, kind, line) VALUES (?, ?, ?, ?, ?)"


def replace_edges(store: Store, source_key: str, rows: list[tuple]) -> None:
    """Every edge of ``source_key`` becomes ``rows`` (source_key, src, dst, kind, line)."""
    with store.write() as w:
        w.execute("DELETE FROM edges WHERE source_key=?", (source_key,))
        w.executemany(_INSERT, rows)


def replace_module_edges(store: Store, source_key: str, modules: list[str], rows: list[tuple]) -> None:
    """The edges from ``modules`` (and their members) become ``rows``; other edges stay."""
    with store.write() as w:
        for mod in modules:
            w.execute("DELETE FROM edges WHERE source_key=? AND (src=? OR substr(src, 1, ?)=?)",
                      (source_key, mod, len(mod) + 1, mod + ":"))
        w.executemany(_INSERT, rows)


def structure_rows(store: Store, source_key: str) -> list[sqlite3.Row]:
    """src, dst, kind, line of the ``define:*``, ``bind``, ``base`` and ``type`` rows, in a stable order."""
    return store.query("SELECT src, dst, kind, line FROM edges WHERE source_key=? "
                       "AND (kind LIKE 'define:%' OR kind IN ('bind', 'base', 'type')) ORDER BY src, dst, kind, line",
                       (source_key,))


def use_rows(store: Store, source_key: str) -> list[sqlite3.Row]:
    """src, dst, kind, line of every other edge (calls, references, imports, ...), in a stable order."""
    return store.query("SELECT src, dst, kind, line FROM edges WHERE source_key=? "
                       "AND kind NOT LIKE 'define:%' AND kind NOT IN ('bind', 'base', 'type') "
                       "ORDER BY src, dst, kind, line", (source_key,))


def has_edges(store: Store, source_key: str) -> bool:
    return store.one("SELECT 1 FROM edges WHERE source_key=? LIMIT 1", (source_key,)) is not None


def importers(store: Store, source_key: str, modules: list[str]) -> set[str]:
    """The modules with an import edge to one of ``modules``."""
    if not modules:
        return set()
    return {r["src"] for r in store.query(
        "SELECT DISTINCT src FROM edges WHERE source_key=? AND kind='import' AND dst IN (%s)"
        % ",".join("?" * len(modules)), (source_key, *modules))}
