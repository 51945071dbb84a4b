import sqlite3
from pathlib import Path

import pytest

from regrow.errors import StoreError
from regrow.store import SCHEMA_VERSION, Store


def test_a_new_store_is_in_wal_mode_and_records_its_schema_version(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    assert store.one("PRAGMA journal_mode")[0] == "wal"
    assert store.one("SELECT value FROM meta WHERE key='schema_version'")[0] == str(SCHEMA_VERSION)
    Store(tmp_path / "s.sqlite")  # reopening is fine


def test_a_store_of_another_version_is_refused_naming_both_versions(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=f"version 999.*version {SCHEMA_VERSION}"):
        Store(path)


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a regrow store"):
        Store(path)


def test_a_failed_write_rolls_back(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    with pytest.raises(RuntimeError):
        with store.write() as w:
            w.execute("INSERT INTO responses VALUES ('k', 0, '{}')")
            raise RuntimeError("boom")
    assert store.cached_response("k") is None
    store.cache_response("k", {"text": "x"})
    assert store.cached_response("k") == {"text": "x"}


def test_a_store_written_by_the_landed_schema_1_code_is_upgraded_and_its_runs_still_report(tmp_path):
    """tests/data/store-v1.sql: `iterdump` of a store the schema-1 regrow wrote (an oracle and a
    null run on the calc fixture)."""
    from regrow.report.runs import build_report
    from regrow.store.runs import list_runs, save_attempt

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript((Path(__file__).parent / "data" / "store-v1.sql").read_text(encoding="utf-8"))
    con.close()
    store = Store(path)
    assert store.one("SELECT value FROM meta WHERE key='schema_version'")[0] == str(SCHEMA_VERSION) == "2"
    runs = {r["run_id"]: r for r in list_runs(store)}
    assert len(runs) == 2
    for run_id in runs:
        rep = build_report(store, run_id)
        assert rep.attempts == 2 and rep.pass_at[1] == (1.0 if rep.solver == "oracle" else 0.0)
    assert {r["format"] for r in store.query("SELECT format FROM attempts")} == {"regrow-attempt/1"}
    run_id = next(iter(runs))
    save_attempt(store, run_id, "t", 0, 0, status="failed", solved=False, attempt_json="{}", verdict_json="{}")
    Store(path)  # opening it again finds version 2: nothing to do


def test_a_failed_upgrade_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    from regrow.store import db

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript((Path(__file__).parent / "data" / "store-v1.sql").read_text(encoding="utf-8"))
    con.close()
    monkeypatch.setitem(db.MIGRATIONS, 1, [*db.MIGRATIONS[1], "ALTER TABLE no_such_table ADD COLUMN x"])
    with pytest.raises(StoreError, match="could not upgrade .* from schema version 1"):
        Store(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    assert "format" not in [r[1] for r in con.execute("PRAGMA table_info(attempts)")]
