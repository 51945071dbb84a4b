"""Solver specs → solvers. A spec is a string: ``oracle``, ``null``, ``history@REV``,
``retrieval``, ``openai:MODEL@BASE_URL``, ``local:PATH``, ``local:smollm2`` or ``scripted:FILE``
(see `REGISTRY`: one line per kind).

`check_spec` tells a bad spec in a moment, before a run spends minutes on the environment,
grok and validation; `make_solver` builds the solver once the source is ready."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regrow.errors import ConfigError
from regrow.solve.solvers.base import Completion, Solver, SolveRequest, Turn

__all__ = ["Completion", "Solver", "SolveRequest", "Turn", "check_spec", "is_model", "make_solver", "REGISTRY",
           "DEFAULT_SOLVER"]

DEFAULT_SOLVER = "local:smollm2"


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of solver: how its spec is written, and the module whose ``from_spec(arg, options,
    root=, index=, kind=)`` builds it."""

    module: str
    sep: str = ""  # "" (the bare name), ":" (name:ARG) or "@" (name@ARG)
    usage: str = ""  # how the spec is written, for messages
    model: bool = False  # a model: it gets SolverOptions (sampling, budgets, context)


# One line per kind of solver: a new solver is one file in this package and one line here.
REGISTRY: dict[str, Kind] = {
    "oracle": Kind("baselines", usage="oracle"),
    "null": Kind("baselines", usage="null"),
    "history": Kind("history", "@", "history@REV"),
    "retrieval": Kind("retrieval", usage="retrieval"),
    "openai": Kind("openai_backend", ":", "openai:MODEL@URL", model=True),
    "local": Kind("local", ":", "local:PATH, local:smollm2", model=True),
    "scripted": Kind("scripted", ":", "scripted:SCRIPT.json"),
}
KNOWN = ", ".join(k.usage for k in REGISTRY.values())


def _parse(spec: str) -> tuple[str, str]:
    """(kind, argument) of a spec, or ConfigError with one line saying what is wrong."""
    spec = spec.strip()
    if spec in REGISTRY and not REGISTRY[spec].sep:
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
    kind, sep, arg = spec.partition(":")
    if sep and kind in REGISTRY and REGISTRY[kind].sep == ":":
        if not arg:
            raise ConfigError(f"{kind}: needs an argument: {REGISTRY[kind].usage}")
        return kind, arg
    raise ConfigError(f"unknown solver {spec!r}; known: {KNOWN}")


def is_model(spec: str) -> bool:
    """Whether the spec names a model (it takes sampling options and a context budget)."""
    return REGISTRY[_parse(spec)[0]].model


def check_spec(spec: str) -> None:
    """Raise a `RegrowError` (one line) when ``spec`` cannot name a working solver: an unknown
    kind, ``openai:`` without ``@URL``, a ``local:`` model that is not there or whose runtime is
    not installed. Cheap: reads no model, contacts no server, needs no source."""
    kind, arg = _parse(spec)
    if kind != "local":
        return
    from regrow.solve.solvers.local import HF_INSTALL, LLAMA_INSTALL, resolve_model
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
    module = importlib.import_module(f"{__name__}.{REGISTRY[kind].module}")
    if REGISTRY[kind].model:
        options = _options(options)
    return module.from_spec(arg, options, root=root, index=index, kind=kind)


def _options(options: Any):
    if options is not None:
        return options
    from regrow.solve.solvers.options import SolverOptions
    return SolverOptions()
