"""The `Solver` seam: one method, `propose`, returning candidate completions."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from regrow.solve.types import Completion, SolveRequest, Turn

__all__ = ["Completion", "Solver", "SolveRequest", "Turn"]


@runtime_checkable
class Solver(Protocol):
    """Anything that proposes bodies for a task.

    ``name`` is for people; ``identity`` names what the solver does exactly (a model's resolved
    sampling options included), so a run and the response cache tell two settings apart;
    ``options`` are a model's `SolverOptions`, None for a solver without a model.
    """

    name: str
    identity: str
    options: object | None

    def propose(self, request: SolveRequest) -> list[Completion]:
        """Return ``request.n`` completions (fewer only if the backend cannot produce more)."""
        ...
