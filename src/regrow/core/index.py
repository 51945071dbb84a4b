"""`Index`: what grok knows about one source content, loaded from or saved to the store."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from regrow.core.symbol import Symbol


def symbol_to_json(symbol: Symbol) -> str:
    return json.dumps(asdict(symbol), sort_keys=True)


def symbol_from_json(text: str) -> Symbol:
    data = json.loads(text)
    data["decorators"] = tuple(data.get("decorators") or ())
    data["flags"] = tuple(data.get("flags") or ())
    return Symbol(**data)


@dataclass(frozen=True, slots=True)
class Index:
    source_key: str
    symbols: dict  # qualname -> Symbol
    files: dict  # relpath -> "ok" or the reason it was skipped
    tests: dict = field(default_factory=dict)  # test id -> (outcome, duration)
    coverage: dict = field(default_factory=dict)  # qualname -> tuple of covering test ids (passed on the reference)
    facts: dict = field(default_factory=dict)

    def covering(self, qualname: str) -> tuple[str, ...]:
        return self.coverage.get(qualname, ())

    def test_seconds(self, test_ids) -> float:
        return sum(self.tests.get(t, ("", 0.0))[1] for t in test_ids)

    @property
    def skipped_files(self) -> dict:
        return {p: s for p, s in self.files.items() if s != "ok"}
