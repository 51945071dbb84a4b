"""The context engine's learned ranking weights (`ranking`): one JSON document per source."""

from __future__ import annotations

import json
import time

from regrow.store.db import Store


def save_ranking(store: Store, source_key: str, format: str, data: dict) -> None:
    with store.write() as w:
        w.execute("INSERT OR REPLACE INTO ranking (source_key, format, created, data) VALUES (?, ?, ?, ?)",
                  (source_key, format, time.time(), json.dumps(data, sort_keys=True)))


def load_ranking(store: Store, source_key: str) -> tuple[str, dict] | None:
    """(format, data) of the stored weights of ``source_key``, or None."""
    row = store.one("SELECT format, data FROM ranking WHERE source_key=?", (source_key,))
    return (row["format"], json.loads(row["data"])) if row else None


def drop_ranking(store: Store, source_key: str) -> None:
    with store.write() as w:
        w.execute("DELETE FROM ranking WHERE source_key=?", (source_key,))
