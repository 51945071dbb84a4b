"""Baselines that need no model: the oracle (the original body) and null (the stub)."""

from __future__ import annotations

from regrow.core.task import STUB
from regrow.solve.solvers.base import Completion, SolveRequest


class OracleSolver:
    """Returns the original body: must solve every valid task."""

    name = identity = "oracle"
    options = None

    def propose(self, request: SolveRequest) -> list[Completion]:
        body = request.task.reference_body
        return [Completion(text=body, body=body) for _ in range(request.n)]


class NullSolver:
    """Returns the stub itself: must solve no valid task."""

    name = identity = "null"
    options = None

    def propose(self, request: SolveRequest) -> list[Completion]:
        return [Completion(text=STUB, body=STUB) for _ in range(request.n)]


def from_spec(arg: str, options=None, *, root=None, index=None, kind: str = "oracle"):
    return OracleSolver() if kind == "oracle" else NullSolver()
