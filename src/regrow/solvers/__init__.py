"""Solver specs → solvers. A spec is a string: ``oracle``, ``null``, ``history@REV``,
``retrieval``, ``openai:MODEL@BASE_URL``, ``local:PATH`` or ``local:smollm2``.

`check_spec` tells a bad spec in a moment, before a run spends minutes on the environment,
grok and validation; `make_solver` builds the solver once the source is ready."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Completion, Solver, SolveRequest, Turn

__all__ = ["Completion", "Solver", "SolveRequest", "Turn", "check_spec", "make_solver", "DEFAULT_SOLVER"]

DEFAULT_SOLVER = "local:smollm2"
KNOWN = "oracle, null, history@REV, retrieval, openai:MODEL@URL, local:PATH, local:smollm2"


def _parse(spec: str) -> tuple[str, str]:
    """(kind, argument) of a spec, or ConfigError with one line saying what is wrong."""
    spec = spec.strip()
    if spec in ("oracle", "null", "retrieval"):
        return spec, ""
    if spec.startswith("history@"):
        rev = spec.split("@", 1)[1]
        if not rev:
            raise ConfigError("history@REV needs a git revision, e.g. history@v1.2 or history@HEAD~50")
        return "history", rev
    if spec.startswith("openai:"):
        model, sep, url = spec[len("openai:"):].partition("@")
        if not model or not sep or not url:
            raise ConfigError(f"bad solver spec {spec!r}: expected openai:MODEL@BASE_URL, "
                              "e.g. openai:qwen2.5-coder@http://127.0.0.1:8000/v1")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"bad solver spec {spec!r}: the base URL must start with http:// or https://, "
                              "e.g. openai:qwen2.5-coder@http://127.0.0.1:8000/v1")
        return "openai", spec[len("openai:"):]
    if spec.startswith("local:"):
        path = spec[len("local:"):]
        if not path:
            raise ConfigError("local:PATH needs a model file or folder, or local:smollm2")
        return "local", path
    raise ConfigError(f"unknown solver {spec!r}; known: {KNOWN}")


def check_spec(spec: str) -> None:
    """Raise a `RegrowError` (one line) when ``spec`` cannot name a working solver: an unknown
    kind, ``openai:`` without ``@URL``, a ``local:`` model that is not there or whose runtime is
    not installed. Cheap: reads no model, contacts no server, needs no source."""
    kind, arg = _parse(spec)
    if kind != "local":
        return
    from .local import HF_INSTALL, LLAMA_INSTALL, resolve_model
    model_kind, where = resolve_model(arg)  # the model file or folder is there (SolverError if not)
    if model_kind == "gguf" and importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(f"{spec} runs with llama-cpp-python, which is not installed; "
                          f"install it with: {LLAMA_INSTALL}")
    if model_kind == "hf" and (importlib.util.find_spec("transformers") is None
                               or importlib.util.find_spec("torch") is None):
        raise ConfigError(f"{where} is a Hugging Face model folder, which needs transformers and torch; "
                          f"install them with: {HF_INSTALL}")


def make_solver(spec: str, options: Any = None, *, root: Path | None = None, index: Any = None) -> Solver:
    """Build the solver a spec names. ``root`` and ``index`` serve the baselines that read the source."""
    kind, arg = _parse(spec)
    if kind == "oracle":
        from .baselines import OracleSolver
        return OracleSolver()
    if kind == "null":
        from .baselines import NullSolver
        return NullSolver()
    if kind == "history":
        from .history import HistorySolver
        return HistorySolver(arg, root=root)
    if kind == "retrieval":
        if index is None or root is None:
            raise ConfigError("the retrieval solver needs a grokked source")
        from .retrieval import RetrievalSolver
        return RetrievalSolver(index, root)
    if kind == "openai":
        model, _, url = arg.partition("@")
        from .openai_backend import OpenAISolver
        return OpenAISolver(model=model, base_url=url, options=_options(options))
    from .local import LocalSolver
    return LocalSolver(path=arg, options=_options(options))


def _options(options: Any):
    if options is not None:
        return options
    from .options import SolverOptions
    return SolverOptions()
