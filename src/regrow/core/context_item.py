"""`ContextItem`: one piece of text shown to a model, with its token count, score and breadcrumb."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Channels, in the order a reader meets them.
CHANNELS = ("target", "runtime", "git", "uses", "signature", "class", "module", "docstring", "tests-use",
            "graph", "lexical", "caller", "test")


@dataclass(frozen=True, slots=True)
class ContextItem:
    """A piece of a context pack.

    ``subject`` is what the text is about: a definition's qualname, a test id, or
    ``runtime:QUALNAME`` / ``git:PATH`` for facts. ``covers`` lists the definitions whose
    signature (at least) the text shows. ``tokens`` counts the item exactly as rendered in
    markdown, with the pack's named tokenizer.
    """

    subject: str
    channel: str
    path: str  # the file the text comes from ("" for facts)
    line: int  # its first line there (0 for facts)
    text: str
    tokens: int
    score: float
    breadcrumb: str  # why it is here: the path from the target and the reason
    form: str  # "body" | "signature" | "facts"
    covers: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["covers"] = list(self.covers)
        data["score"] = round(self.score, 6)
        return data
