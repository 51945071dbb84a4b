"""Runs and their attempts (`runs`, `attempts`)."""

from __future__ import annotations

import sqlite3
import time

from regrow.store.db import Store

ATTEMPT_FORMAT = "regrow-attempt/1"


def has_run(store: Store, run_id: str) -> bool:
    return store.one("SELECT 1 FROM runs WHERE run_id=?", (run_id,)) is not None


def create_run(store: Store, run_id: str, *, source_key: str, spec: str, solver: str, config_json: str) -> None:
    with store.write() as w:
        w.execute("INSERT INTO runs (run_id, created, source_key, spec, solver, config) VALUES (?, ?, ?, ?, ?, ?)",
                  (run_id, time.time(), source_key, spec, solver, config_json))


def finish_run(store: Store, run_id: str) -> None:
    with store.write() as w:
        w.execute("UPDATE runs SET finished=? WHERE run_id=?", (time.time(), run_id))


def run_row(store: Store, run_id: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM runs WHERE run_id=?", (run_id,))


def list_runs(store: Store) -> list[dict]:
    """Every run, oldest first, with its number of attempts."""
    return [dict(r) for r in store.query(
        "SELECT r.run_id, r.created, r.finished, r.solver, r.spec, "
        "(SELECT COUNT(*) FROM attempts a WHERE a.run_id=r.run_id) AS attempts FROM runs r ORDER BY r.created")]


def attempt_rows(store: Store, run_id: str) -> list[sqlite3.Row]:
    """task_id, sample, turn, status, solved, attempt, verdict of every attempt of a run."""
    return store.query("SELECT task_id, sample, turn, status, solved, attempt, verdict FROM attempts "
                       "WHERE run_id=? ORDER BY task_id, sample, turn", (run_id,))


def chain_rows(store: Store, run_id: str, task_id: str, sample: int) -> list[sqlite3.Row]:
    """turn, solved, attempt, verdict of one chain's stored turns, in order."""
    return store.query("SELECT turn, solved, attempt, verdict FROM attempts WHERE run_id=? AND task_id=? AND sample=? "
                       "ORDER BY turn", (run_id, task_id, sample))


def save_attempt(store: Store, run_id: str, task_id: str, sample: int, turn: int, *, status: str, solved: bool,
                 attempt_json: str, verdict_json: str) -> None:
    with store.write() as w:
        w.execute("INSERT OR REPLACE INTO attempts (run_id, task_id, sample, turn, created, status, solved, attempt, "
                  "verdict, format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (run_id, task_id, sample, turn, time.time(), status, int(solved), attempt_json, verdict_json,
                   ATTEMPT_FORMAT))
