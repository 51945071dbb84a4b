"""Solver specs → solvers. A spec is a string: ``oracle``, ``null``, ``history@REV``,
``retrieval``, ``openai:MODEL@BASE_URL``, ``local:PATH`` or ``local:smollm2``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Completion, Solver, SolveRequest, Turn

__all__ = ["Completion", "Solver", "SolveRequest", "Turn", "make_solver", "DEFAULT_SOLVER"]

DEFAULT_SOLVER = "local:smollm2"


def make_solver(spec: str, options: Any = None, *, root: Path | None = None, index: Any = None) -> Solver:
    """Build the solver a spec names. ``root`` and ``index`` serve the baselines that read the source."""
    spec = spec.strip()
    if spec == "oracle":
        from .baselines import OracleSolver
        return OracleSolver()
    if spec == "null":
        from .baselines import NullSolver
        return NullSolver()
    if spec.startswith("history@"):
        rev = spec.split("@", 1)[1]
        if not rev:
            raise ConfigError("history@REV needs a git revision, e.g. history@v1.2 or history@HEAD~50")
        from .history import HistorySolver
        return HistorySolver(rev, root=root)
    if spec == "retrieval":
        if index is None or root is None:
            raise ConfigError("the retrieval solver needs a grokked source")
        from .retrieval import RetrievalSolver
        return RetrievalSolver(index, root)
    if spec.startswith("openai:"):
        rest = spec[len("openai:"):]
        model, sep, url = rest.partition("@")
        if not model or not sep or not url:
            raise ConfigError(f"bad solver spec {spec!r}: expected openai:MODEL@BASE_URL, "
                              "e.g. openai:qwen2.5-coder@http://127.0.0.1:8000/v1")
        from .openai_backend import OpenAISolver
        return OpenAISolver(model=model, base_url=url, options=_options(options))
    if spec.startswith("local:"):
        path = spec[len("local:"):]
        if not path:
            raise ConfigError("local:PATH needs a model file or folder, or local:smollm2")
        from .local import LocalSolver
        return LocalSolver(path=path, options=_options(options))
    raise ConfigError(f"unknown solver {spec!r}; known: oracle, null, history@REV, retrieval, "
                      "openai:MODEL@URL, local:PATH, local:smollm2")


def _options(options: Any):
    if options is not None:
        return options
    from .options import SolverOptions
    return SolverOptions()
