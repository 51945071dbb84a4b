"""The reward service's request ledger: ``request_id`` → the result it was answered with.

Its own SQLite file (``<home>/service.sqlite``), apart from the main store so the service's
writes never wait on a run's, in WAL mode: a verdict is committed before the response that
carries it is sent, so a server killed at any point has either stored a request's result (a
retry gets it back, not verified again) or not answered it at all (a retry verifies it). The
first result stored for an id wins (``INSERT OR IGNORE``), so a request id is answered with one
result however many times it is retried. ``fingerprint`` names what was asked (task, source,
completion): the same id reused for another question is a conflict, never a silent replay.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from regrow.errors import StoreError

__all__ = ["Ledger", "LEDGER_VERSION", "LEDGER_FILE"]

LEDGER_VERSION = 1
LEDGER_FILE = "service.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row per answered request id: the result JSON exactly as it was first sent.
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,  -- sha256 of (source, task_id, completion) as asked
    created REAL NOT NULL,
    result TEXT NOT NULL,       -- JSON of the result (its own "format" tag inside)
    format TEXT NOT NULL        -- the result's format tag, e.g. regrow-score/1
);
"""


class Ledger:
    """One connection per thread to ``path`` (created with its parents when missing)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()  # one writer at a time inside this process
        self._init()

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                # WAL + NORMAL: a committed row survives the process being killed (not a power cut).
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot open the request ledger {self.path}: {exc}") from exc
            self._local.con = con
        return con

    def _init(self) -> None:
        con = self._connect()
        try:
            row = con.execute("SELECT value FROM meta WHERE key='ledger_version'").fetchone()
        except sqlite3.OperationalError:
            row = None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a regrow request ledger: {exc}") from exc
        if row is not None and int(row[0]) != LEDGER_VERSION:
            raise StoreError(f"{self.path} is a request ledger of version {row[0]}, this regrow reads version "
                             f"{LEDGER_VERSION}; move the file away (it only holds answered request ids)")
        with self._lock:
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('ledger_version', ?)", (str(LEDGER_VERSION),))

    def get_many(self, request_ids: list[str]) -> dict[str, tuple[str, dict]]:
        """{request_id: (fingerprint, result)} for the ids already answered."""
        found: dict[str, tuple[str, dict]] = {}
        ids = list(dict.fromkeys(request_ids))
        con = self._connect()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for rid, fp, result in con.execute(
                    f"SELECT request_id, fingerprint, result FROM requests WHERE request_id IN ({marks})", chunk):
                found[rid] = (fp, json.loads(result))
        return found

    def put_many(self, rows: list[tuple[str, str, dict]]) -> dict[str, tuple[str, dict]]:
        """Store (request_id, fingerprint, result) rows in one transaction; an id already stored
        keeps its first result. Returns what is stored now for those ids (the first results)."""
        if not rows:
            return {}
        now = time.time()
        con = self._connect()
        with self._lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(
                    "INSERT OR IGNORE INTO requests(request_id, fingerprint, created, result, format) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(rid, fp, now, json.dumps(result), str(result.get("format", ""))) for rid, fp, result in rows])
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        return self.get_many([rid for rid, _, _ in rows])

    def count(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
