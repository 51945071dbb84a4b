"""What a solver is asked and what it answers: plain values shared by the prompt, the solvers
and the loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from regrow.core.task import Task


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a chain, as the next turn sees it."""

    completion: str  # what the model answered
    feedback: str  # what verification said (never the reference or expected values)


@dataclass(frozen=True, slots=True)
class SolveRequest:
    task: Task
    n: int = 1  # how many independent candidates to propose
    seed: int = 0
    sample: int = 0  # index of the chain this request belongs to
    turn: int = 0  # 0 for the first attempt of a chain
    history: tuple[Turn, ...] = ()
    messages: tuple[dict, ...] = ()  # chat messages built by the prompt module (models only)
    source_root: str = ""  # read-only path of the pristine source (baselines that read it)
    context: str | None = None  # the context section for the prompt; None: the solver's own default


@dataclass(frozen=True, slots=True)
class Completion:
    text: str  # raw text as produced
    body: str | None = None  # an extracted function body, when the solver produced one directly
    tokens_in: int = 0
    tokens_out: int = 0
    latency: float = 0.0
    cost: float = 0.0
    meta: dict = field(default_factory=dict)
