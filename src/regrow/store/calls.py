"""Calls recorded while the tests ran on the reference (`calls`): the equivalence check replays
their arguments, the context engine summarises them as runtime facts."""

from __future__ import annotations

import sqlite3

from regrow.store.db import Store

COLUMNS = ("source_key", "qualname", "seq", "test_id", "args", "result", "exception", "arg_types", "return_type",
           "summary")


def replace_calls(store: Store, source_key: str, rows: list[tuple]) -> None:
    """Replace every recorded call of ``source_key``; each row holds `COLUMNS` in order."""
    with store.write() as w:
        w.execute("DELETE FROM calls WHERE source_key=?", (source_key,))
        w.executemany(f"INSERT OR REPLACE INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                      rows)


def call_args(store: Store, source_key: str, qualname: str) -> list[str]:
    """The pickled arguments (base64) of ``qualname``'s recorded calls that have them, in order."""
    return [r["args"] for r in store.query(
        "SELECT args FROM calls WHERE source_key=? AND qualname=? AND args IS NOT NULL ORDER BY seq",
        (source_key, qualname))]


def call_facts(store: Store, source_key: str, qualname: str) -> list[sqlite3.Row]:
    """test_id, arg_types, return_type, exception, summary of each recorded call, in order."""
    return store.query("SELECT test_id, arg_types, return_type, exception, summary FROM calls "
                       "WHERE source_key=? AND qualname=? ORDER BY seq", (source_key, qualname))


def call_counts(store: Store, source_key: str) -> dict[str, int]:
    """{qualname: recorded calls} for every function with rows (empty until grok records calls)."""
    return {r["qualname"]: r["n"] for r in store.query(
        "SELECT qualname, COUNT(*) AS n FROM calls WHERE source_key=? GROUP BY qualname ORDER BY qualname",
        (source_key,))}
