"""`SolverOptions`: how a model backend is asked for completions, resolved once and frozen.

Fields left at ``None`` mean "the backend's default"; each backend fills them in with
`SolverOptions.resolved`, so one options object can be handed to any solver spec.
The API key itself is never a field: only the *name* of the environment variable holding it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Prices(BaseModel):
    """What a model costs, in currency units per one million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    input: float = Field(0.0, ge=0)
    """Price of one million prompt (input) tokens."""

    output: float = Field(0.0, ge=0)
    """Price of one million generated (output) tokens."""

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """Cost of one call that read ``tokens_in`` and wrote ``tokens_out`` tokens."""
        return (tokens_in * self.input + tokens_out * self.output) / 1_000_000


class SolverOptions(BaseModel):
    """Sampling and transport settings shared by the model backends (`openai`, `local`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    temperature: float | None = Field(None, ge=0)
    """Sampling temperature; 0 is greedy. None: the backend's default (0.2)."""

    top_p: float | None = Field(None, gt=0, le=1)
    """Nucleus sampling mass. None: not sent (the server's own default)."""

    max_tokens: int | None = Field(None, gt=0)
    """Most tokens one completion may generate. None: 1024 (openai) or 192 (local)."""

    stop: tuple[str, ...] = ()
    """Stop sequences, passed to the model as given (in completion mode regrow adds its own)."""

    seed: int | None = None
    """Fixed sampling seed; None: the run's seed (``SolveRequest.seed``). Sample i uses seed + i."""

    system_prompt: str | None = None
    """System message replacing regrow's default instructions; None keeps the default."""

    mode: Literal["chat", "completion"] | None = None
    """"chat": chat messages (/v1/chat/completions); "completion": a rendered text prompt
    (/v1/completions) that the model continues from the function's signature and docstring,
    stopped where the function ends. None: "chat" (openai, instruction-tuned served models) or
    "completion" (local: a small model asked for chat restates other code and breaks off)."""

    stream: bool = False
    """Ask the server to stream tokens (server-sent events); the result is the same text."""

    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (read when the client is made,
    never stored in options, logs or results). Unset: the placeholder key "EMPTY" is sent."""

    timeout: float | None = Field(None, gt=0)
    """Seconds to wait for one HTTP response before retrying. None: 120 s (openai)."""

    max_retries: int | None = Field(None, ge=0)
    """Retries after a rate limit (429), server error (5xx), timeout or dropped connection.
    None: 4 (openai), 0 (local)."""

    backoff: float = Field(0.5, ge=0)
    """First retry delay in seconds; it doubles on each retry, with random jitter."""

    backoff_max: float = Field(20.0, ge=0)
    """Longest single retry delay in seconds (also caps a server's Retry-After)."""

    concurrency: int | None = Field(None, ge=1)
    """Requests one solver may have in flight at once. None: 4 (openai), 1 (local)."""

    n_ctx: int | None = Field(None, ge=256)
    """Context window of a local model, in tokens. None: 4096 (local); unused by openai."""

    context_budget: int | None = Field(None, ge=0)
    """Tokens allowed for the context section of the prompt. None: 1536 (openai), 192 (local)."""

    file_budget: int | None = Field(None, ge=64)
    """Tokens allowed for the hollowed file; a longer file is shown as a window around the
    target. None: 6000 (openai), 512 (local)."""

    repeat_penalty: float | None = Field(None, ge=1.0)
    """Penalty on repeating recent tokens (local models; small ones loop without it).
    None: 1.1 (local); not sent to openai servers."""

    syntax_retries: int | None = Field(None, ge=0)
    """Completion mode on llama.cpp: when a continuation does not parse, draw it again (another
    seed; the prompt is already in the model's cache, so only the answer is generated again)
    up to this many times; the last draw is returned as it is, parsing or not. Every draw is
    counted in the tokens and time. None: 2 (local); unused by openai."""

    prices: Prices | None = None
    """Cost per one million input and output tokens; None: cost is reported as 0."""

    def resolved(self, **defaults: object) -> "SolverOptions":
        """A copy whose ``None`` fields are replaced by the backend's ``defaults``."""
        updates = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return self.model_copy(update=updates) if updates else self


OPENAI_DEFAULTS: dict[str, object] = {
    "mode": "chat",
    "temperature": 0.2,
    "max_tokens": 1024,
    "timeout": 120.0,
    "max_retries": 4,
    "concurrency": 4,
    "context_budget": 1536,
    "file_budget": 6000,
}
"""Defaults for `OpenAISolver`: a hosted or served model with a large context window."""

LOCAL_DEFAULTS: dict[str, object] = {
    "mode": "completion",
    "temperature": 0.2,
    "max_tokens": 192,
    "max_retries": 0,
    "concurrency": 1,
    "n_ctx": 4096,
    "context_budget": 192,
    "file_budget": 512,
    "repeat_penalty": 1.1,
    "syntax_retries": 2,
}
"""Defaults for `LocalSolver`: a small model on CPU, so short prompts and answers. Reading the
prompt is most of a call's time on CPU (about 50 prompt tokens a second on a busy 2-core
machine), so the file is shown as a window of 512 tokens around the target with 192 tokens of
context; 192 tokens hold a typical body, and the dedent stops usually end it sooner."""
