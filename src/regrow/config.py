"""Configuration, resolved once in a written order and passed down as one frozen object.

Order (later wins): defaults → ``[tool.regrow]`` in ./pyproject.toml → ``REGROW_*``
environment variables → command-line flags.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from regrow.errors import ConfigError


class RunConfig(BaseModel):
    """Everything that decides what a run does. Part of it names the run (see `run_key`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path = Field(Path(".regrow"), description="Folder for caches, environments and the store.")
    solver: str = Field("local:smollm2", description="Solver spec (see regrow.solve.solvers).")
    samples: int = Field(1, ge=1, description="Independent chains per task (pass@k uses them).")
    turns: int = Field(1, ge=1, description="Attempts per chain; each retry sees the previous feedback.")
    tasks: int | None = Field(None, ge=1, description="Use at most this many valid tasks (chosen by seed).")
    seed: int = Field(0, description="Seed for task choice and sampling.")
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1,
                         description="Parallel verifications.")
    timeout: float = Field(60.0, gt=0, description="Wall seconds for one candidate's test session.")
    suite_timeout: float = Field(1800.0, gt=0, description="Wall seconds for the whole suite (test map).")
    min_statements: int = Field(2, ge=1, description="Hollow only bodies with at least this many statements.")
    repeats: int = Field(3, ge=1, description="Times each covering test must pass on the reference.")
    python: Path | None = Field(None, description="Use this interpreter (an existing environment).")
    run_id: str | None = Field(None, description="Name of the run; default derived from what it does.")
    cache: bool = Field(True, description="Reuse stored model responses for identical requests.")
    stop_on_solve: bool = Field(False, description="Best-of-n: stop a task's other chains once one solves it "
                                                   "(cheaper; pass@k then counts only the chains that ran).")
    task_tokens: int | None = Field(None, ge=1, description="Completion-token budget per task, over all chains.")
    task_seconds: float | None = Field(None, gt=0, description="Wall-time budget per task, from its first model call.")
    model_concurrency: int | None = Field(None, ge=1, description="Model calls in flight at once "
                                                                  "(default: the solver's own setting).")
    context: str = Field("engine", pattern="^(engine|simple)$",
                         description="Prompt context for model solvers: the ranked repository context engine, "
                                     "or the simple same-file context.")
    temperature: float | None = Field(None, description="Sampling temperature (model solvers).")
    max_tokens: int | None = Field(None, description="Completion token limit (model solvers).")
    trust: str = Field("strict", pattern="^(strict|fast|subprocess)$",
                       description="Verification checks: strict (warm engine, static scan, equivalence), "
                                   "fast (warm engine only), subprocess (a fresh pytest per candidate).")
    fail_fast: bool = Field(False, description="Stop a candidate's tests at the first one that does not pass "
                                               "(a binary reward at less cost; the tests-passed fraction then "
                                               "counts only the tests that ran).")
    min_strength: float | None = Field(None, ge=0, le=1,
                                       description="Leave out tasks whose measured strength (`regrow strength`: "
                                                   "the share of mutants their tests kill) is below this; "
                                                   "tasks not measured are kept.")
    executor: str = Field("threads", pattern=r"^(threads|ray|ray://\S+)$",
                          description="Where chains run: threads of this process, ray (the Ray cluster "
                                      "RAY_ADDRESS names or one on this machine) or ray://ADDRESS "
                                      "(docs/scaling.md).")


    @field_validator("home", "python", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """Relative paths are taken from the folder the command runs in, once, here: later steps
        start subprocesses in other folders, where a relative path would point elsewhere."""
        if value is None:
            return None
        if value.name != str(value) or value.exists():  # a path, not a bare interpreter name on PATH
            return Path(os.path.abspath(value.expanduser()))
        return value


_ENV_PREFIX = "REGROW_"


def _file_settings(cwd: Path) -> dict:
    path = cwd / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return dict(data.get("tool", {}).get("regrow", {}))


def _env_settings(environ: dict) -> dict:
    out = {}
    for name in RunConfig.model_fields:
        value = environ.get(_ENV_PREFIX + name.upper())
        if value is not None and value != "":
            out[name] = value
    return out


def resolve_config(flags: dict | None = None, *, cwd: Path | None = None, environ: dict | None = None) -> RunConfig:
    """defaults → [tool.regrow] → REGROW_* → flags (None-valued flags are not given)."""
    merged: dict = {}
    merged.update(_file_settings(cwd or Path.cwd()))
    merged.update(_env_settings(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return RunConfig(**merged)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {msgs}") from exc
