import sqlite3

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
