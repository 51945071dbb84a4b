"""``retrieval``: the body of the most similar other function, by BM25 over signature and docstring."""

from __future__ import annotations

import re
from pathlib import Path

import bm25s

from regrow.tasks.hollow import erase
from regrow.grok.parse import read_source
from regrow.errors import ConfigError
from regrow.solve.solvers.base import Completion, SolveRequest

_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+")


def tokens(text: str) -> list[str]:
    """Identifier-aware tokens: snake_case and CamelCase split, lower-cased."""
    return [w.lower() for w in _WORD.findall(text)]


def describe(symbol) -> str:
    return f"{symbol.name} {symbol.signature} {symbol.docstring or ''}"


class RetrievalSolver:
    name = identity = "retrieval"
    options = None

    def __init__(self, index, root: Path):
        self.root = Path(root)
        self.symbols = [s for s in index.symbols.values()
                        if not s.is_test and "stub" not in s.flags and s.n_statements > 0]
        corpus = [tokens(describe(s)) or ["_"] for s in self.symbols]
        self.retriever = bm25s.BM25()
        self.retriever.index(corpus, show_progress=False)

    def _body(self, symbol) -> str | None:
        text = read_source(self.root / symbol.path)[0]
        if text is None:
            return None
        try:
            return erase(text, symbol)[1]
        except ValueError:
            return None

    def propose(self, request: SolveRequest) -> list[Completion]:
        target = request.task.symbol
        query = tokens(describe(target)) or ["_"]
        k = min(len(self.symbols), 10)
        docs, scores = self.retriever.retrieve([query], k=k, show_progress=False)
        body, meta = None, {}
        for i, score in zip(docs[0], scores[0]):
            sym = self.symbols[int(i)]
            if sym.qualname == target.qualname:
                continue
            body = self._body(sym)
            if body is not None:
                meta = {"retrieved": sym.qualname, "score": float(score)}
                break
        return [Completion(text=body or "", body=body, meta=meta) for _ in range(request.n)]


def from_spec(arg: str, options=None, *, root=None, index=None, kind: str = "retrieval") -> RetrievalSolver:
    if index is None or root is None:
        raise ConfigError("the retrieval solver needs a grokked source")
    return RetrievalSolver(index, root)
