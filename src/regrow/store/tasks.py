"""Hollowed tasks with their validation status, per hollow configuration (`tasks`)."""

from __future__ import annotations

from regrow.store.db import Store


def task_rows(store: Store, source_key: str, hollow_key: str) -> list[tuple[str, str, str, str]]:
    """(task_id, status, reason, data JSON) of every task and exclusion, by task id."""
    return [(r["task_id"], r["status"], r["reason"], r["data"]) for r in store.query(
        "SELECT task_id, status, reason, data FROM tasks WHERE source_key=? AND hollow_key=? ORDER BY task_id",
        (source_key, hollow_key))]


def save_task_rows(store: Store, source_key: str, hollow_key: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Insert or replace (task_id, status, reason, data JSON) rows."""
    with store.write() as w:
        w.executemany("INSERT OR REPLACE INTO tasks (source_key, hollow_key, task_id, status, reason, data) "
                      "VALUES (?, ?, ?, ?, ?, ?)", [(source_key, hollow_key, *row) for row in rows])
