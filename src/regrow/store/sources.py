"""One row per grokked source content (`sources`): what it is, when each grok step finished,
and its facts (JSON: import roots, timings, pytest options, ...)."""

from __future__ import annotations

import json
import time

from regrow.store.db import Store

_MARKS = ("static_done", "testmap_done")  # the columns a finished grok step stamps


def source_row(store: Store, source_key: str) -> dict | None:
    row = store.one("SELECT * FROM sources WHERE source_key=?", (source_key,))
    return dict(row) if row is not None else None


def add_source(store: Store, source_key: str, *, spec: str, name: str, version: str | None, root: str,
               git_rev: str | None, facts: dict) -> dict:
    """The source's row, inserted first when it is new."""
    row = source_row(store, source_key)
    if row is None:
        with store.write() as w:
            w.execute("INSERT OR IGNORE INTO sources (source_key, spec, name, version, root, git_rev, facts) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)", (source_key, spec, name, version, root, git_rev, json.dumps(facts)))
        row = source_row(store, source_key)
    return row


def update_facts(store: Store, source_key: str, done: str | None = None, **facts) -> None:
    """Merge ``facts`` into the source's facts; ``done`` ("static_done" or "testmap_done") stamps
    that grok step as finished now."""
    if done is not None and done not in _MARKS:
        raise ValueError(f"unknown grok step {done!r}")
    row = store.one("SELECT facts FROM sources WHERE source_key=?", (source_key,))
    merged = {**json.loads(row["facts"]), **facts}
    with store.write() as w:
        w.execute("UPDATE sources SET facts=? WHERE source_key=?", (json.dumps(merged), source_key))
        if done is not None:
            w.execute(f"UPDATE sources SET {done}=? WHERE source_key=?", (time.time(), source_key))


def previous_grok(store: Store, root: str, source_key: str) -> tuple[str, dict] | None:
    """(key, facts) of the newest other content of the same directory whose static grok finished."""
    row = store.one("SELECT source_key, facts FROM sources WHERE root=? AND source_key!=? AND static_done IS NOT NULL "
                    "ORDER BY static_done DESC LIMIT 1", (root, source_key))
    return (row["source_key"], json.loads(row["facts"])) if row is not None else None
