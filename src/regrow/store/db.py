"""SQLite store: the index of each source, its tasks, runs and their attempts.

One database file (``<home>/regrow.sqlite``) in WAL mode, so a crash or Ctrl-C loses at
most the attempt being verified, and readers (report, compare) never block the writer.
The schema is versioned. A store of an older version is upgraded in place when it is opened
(`MIGRATIONS`, one list of statements per step, run in one transaction); a store of a newer
version raises `StoreError` naming both versions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from regrow.errors import StoreError

SCHEMA_VERSION = 2

# Every table is keyed by the source's content key, so an unchanged source is found again
# and a changed one is grokked anew.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row per grokked source content. `facts` is JSON (import roots, skipped files, timings).
CREATE TABLE IF NOT EXISTS sources (
    source_key TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    root TEXT NOT NULL,
    git_rev TEXT,
    static_done REAL,           -- time the static part finished
    testmap_done REAL,          -- time the test map finished
    facts TEXT NOT NULL DEFAULT '{}'
);
-- Every Python file seen, with why it was skipped, if it was.
CREATE TABLE IF NOT EXISTS files (
    source_key TEXT NOT NULL,
    path TEXT NOT NULL,
    module TEXT NOT NULL,
    status TEXT NOT NULL,       -- "ok" or the reason it was skipped
    PRIMARY KEY (source_key, path)
);
-- Functions and methods; `data` is the JSON of a Symbol.
CREATE TABLE IF NOT EXISTS symbols (
    source_key TEXT NOT NULL,
    qualname TEXT NOT NULL,
    path TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (source_key, qualname)
);
-- Each test id of the suite as it ran on the unmodified source.
CREATE TABLE IF NOT EXISTS tests (
    source_key TEXT NOT NULL,
    test_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration REAL NOT NULL,
    PRIMARY KEY (source_key, test_id)
);
-- The test map: which tests execute a line of each symbol's body.
CREATE TABLE IF NOT EXISTS coverage (
    source_key TEXT NOT NULL,
    qualname TEXT NOT NULL,
    test_id TEXT NOT NULL,
    PRIMARY KEY (source_key, qualname, test_id)
);
-- Hollowed tasks with their validation status, per hollow configuration.
CREATE TABLE IF NOT EXISTS tasks (
    source_key TEXT NOT NULL,
    hollow_key TEXT NOT NULL,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL,
    PRIMARY KEY (source_key, hollow_key, task_id)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    source_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    solver TEXT NOT NULL,
    config TEXT NOT NULL,       -- JSON of the run configuration
    finished REAL
);
-- One row per verified candidate: (run, task, sample chain, turn).
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL,       -- the verdict status
    solved INTEGER NOT NULL,
    attempt TEXT NOT NULL,      -- JSON: messages, completion, body, tokens, latency
    verdict TEXT NOT NULL,      -- JSON of the Verdict
    format TEXT NOT NULL DEFAULT 'regrow-attempt/1',  -- the format tag of the `attempt` JSON
    PRIMARY KEY (run_id, task_id, sample, turn)
);
-- Calls into each function recorded while the tests ran on the reference (grok):
-- the equivalence check replays them; the context engine summarises them as runtime facts.
CREATE TABLE IF NOT EXISTS calls (
    source_key TEXT NOT NULL,
    qualname TEXT NOT NULL,
    seq INTEGER NOT NULL,       -- order of recording for this function
    test_id TEXT NOT NULL,
    args TEXT,                  -- canonical serialisation of the arguments; NULL when not serialisable
    result TEXT,                -- canonical serialisation of the return value; NULL when not serialisable or raised
    exception TEXT,             -- the exception type's qualified name when the call raised
    arg_types TEXT NOT NULL,    -- JSON {parameter: type name}
    return_type TEXT,
    summary TEXT,               -- JSON of short reprs, for display only
    PRIMARY KEY (source_key, qualname, seq)
);
-- The symbol graph: calls, references, imports, inheritance (src and dst are qualnames or modules).
CREATE TABLE IF NOT EXISTS edges (
    source_key TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    kind TEXT NOT NULL,         -- "call", "reference", "import", "inherit", "attribute", ...
    line INTEGER,
    PRIMARY KEY (source_key, src, dst, kind, line)
);
-- Git facts per file and per symbol: JSON (last change, churn, authors, co-changed files).
CREATE TABLE IF NOT EXISTS git_facts (
    source_key TEXT NOT NULL,
    subject TEXT NOT NULL,      -- a relpath or a qualname
    data TEXT NOT NULL,
    PRIMARY KEY (source_key, subject)
);
-- The context engine's ranking weights learned on the source itself (regrow.context.learn): JSON.
-- Additive (created on open like every table here), so it needs no schema step.
CREATE TABLE IF NOT EXISTS ranking (
    source_key TEXT PRIMARY KEY,
    format TEXT NOT NULL,       -- the format tag of `data`, e.g. "regrow-ranking/1"
    created REAL NOT NULL,
    data TEXT NOT NULL
);
-- Model responses keyed by the exact request, so a resumed run does not pay twice.
CREATE TABLE IF NOT EXISTS responses (
    request_key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    data TEXT NOT NULL
);
"""

# MIGRATIONS[v]: the statements that take a store of version v to version v + 1.
MIGRATIONS: dict[int, list[str]] = {
    1: ["ALTER TABLE attempts ADD COLUMN format TEXT NOT NULL DEFAULT 'regrow-attempt/1'"],
}


class Store:
    """Owns one SQLite connection per thread to ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()  # serialises writers inside this process
        self._init()

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
            try:
                # WAL: readers never block the writer; NORMAL sync is durable across a process crash.
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                con.close()
                raise StoreError(f"{self.path} is not a regrow store: {exc}") from exc
            con.row_factory = sqlite3.Row
            self._local.con = con
        return con

    def _init(self) -> None:
        con = self._connect()
        try:
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            row = None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a regrow store: {exc}") from exc
        version = int(row[0]) if row is not None else None
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, this regrow reads version {SCHEMA_VERSION} and older; "
                "use a newer regrow, or move the file away"
            )
        with self._lock:
            if version is not None and version < SCHEMA_VERSION:
                self._migrate(con, version)
            # executescript commits on its own; every statement is idempotent (IF NOT EXISTS).
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _migrate(self, con: sqlite3.Connection, version: int) -> None:
        """Upgrade a store of ``version`` to `SCHEMA_VERSION`, every step in one transaction."""
        con.execute("BEGIN IMMEDIATE")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    con.execute(statement)
            con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not upgrade {self.path} from schema version {version}: {exc}") from exc
            raise
        con.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (committed on exit, rolled back on error)."""
        con = self._connect()
        with self._lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self._connect().execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self._connect().execute(sql, params).fetchone()

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- response cache -------------------------------------------------------------------
    def cached_response(self, key: str) -> Any | None:
        row = self.one("SELECT data FROM responses WHERE request_key=?", (key,))
        return json.loads(row[0]) if row else None

    def cache_response(self, key: str, data: Any) -> None:
        with self.write() as w:
            w.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, time.time(), json.dumps(data)))
