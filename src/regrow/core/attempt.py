"""`Attempt`: one turn of one chain, as the store keeps it (format ``regrow-attempt/1``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

FORMAT = "regrow-attempt/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a solver was asked and answered on one turn; the verdict is stored beside it."""

    solver: str  # the solver's name
    completion: str  # the raw answer
    body: str | None  # the extracted body, None when the answer could not be used
    malformed: str = ""  # why the answer could not be used
    tokens_in: int = 0
    tokens_out: int = 0
    latency: float = 0.0  # seconds the solver took
    cost: float = 0.0
    meta: dict = field(default_factory=dict)  # what the solver added (finish reason, revision, ...)
    cached: bool = False  # answered from the response cache
    context: str | None = None  # the context section the prompt carried
    # The context engine's items behind ``context`` (`ContextItem.to_dict` without the text):
    # subject, channel, path, line, tokens, score, breadcrumb (why it was shown), form, covers.
    context_items: tuple = ()
    history: tuple = ()  # (completion, feedback) of the earlier turns the solver saw
    wall: float = 0.0  # seconds for the whole turn: model call, extraction and verification
    format: str = FORMAT

    def to_json(self) -> str:
        data = asdict(self)
        data["history"] = [list(h) for h in self.history]
        data["context_items"] = [dict(i) for i in self.context_items]
        return json.dumps(data, default=str)

    @classmethod
    def from_json(cls, text: str) -> "Attempt":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["history"] = tuple(tuple(h) for h in data.get("history") or ())
        data["context_items"] = tuple(dict(i) for i in data.get("context_items") or ())
        data.setdefault("solver", "")
        data.setdefault("completion", "")
        data.setdefault("body", None)
        return cls(**data)
