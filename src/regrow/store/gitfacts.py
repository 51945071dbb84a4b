"""Git facts per file and per symbol (`git_facts`)."""

from __future__ import annotations

import json

from regrow.store.db import Store


def save_git_facts(store: Store, source_key: str, facts: dict[str, dict]) -> None:
    with store.write() as w:
        w.execute("DELETE FROM git_facts WHERE source_key=?", (source_key,))
        w.executemany("INSERT INTO git_facts (source_key, subject, data) VALUES (?, ?, ?)",
                      [(source_key, subject, json.dumps(data, sort_keys=True)) for subject, data in facts.items()])


def load_git_facts(store: Store, source_key: str) -> dict[str, dict]:
    return {r["subject"]: json.loads(r["data"])
            for r in store.query("SELECT subject, data FROM git_facts WHERE source_key=? ORDER BY subject", (source_key,))}
