"""The closed loop for one chain: propose → extract → verify → feedback → retry.

Each turn is written to the store as soon as it is verified; a chain that was interrupted
resumes from its last recorded turn.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

from regrow.solve.solvers.base import Completion, Solver, SolveRequest, Turn
from regrow.core.attempt import Attempt
from regrow.store import Store
from regrow.store.runs import chain_rows, save_attempt
from regrow.core.task import Task
from regrow.core.verdict import MALFORMED, Verdict
from regrow.verify.verifier import Verifier


@dataclass
class TaskBudget:
    """Shared by the chains of one task: token and wall-time limits, and stop-on-solve."""

    tokens: int | None = None  # completion tokens over all chains and turns of the task
    seconds: float | None = None  # wall seconds from the task's first model call
    stop_on_solve: bool = False
    spent_tokens: int = 0
    started: float | None = None
    solved: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def why_stop(self) -> str | None:
        with self._lock:
            if self.stop_on_solve and self.solved:
                return "another chain solved the task"
            if self.tokens is not None and self.spent_tokens >= self.tokens:
                return f"token budget of {self.tokens} spent"
            if self.seconds is not None and self.started is not None and \
                    time.monotonic() - self.started >= self.seconds:
                return f"time budget of {self.seconds:g} s spent"
        return None

    def start(self) -> None:
        with self._lock:
            if self.started is None:
                self.started = time.monotonic()

    def spend(self, tokens: int, solved: bool) -> None:
        with self._lock:
            self.spent_tokens += tokens
            self.solved = self.solved or solved


@dataclass(frozen=True, slots=True)
class ChainResult:
    task_id: str
    sample: int
    turns: int
    solved: bool
    resumed: int  # turns read back from the store instead of being run
    stopped: str = ""  # why the chain ended before its last turn without solving, if it did
    model_seconds: float = 0.0  # time in solver calls (this process's share of the wall time)
    verify_seconds: float = 0.0  # time in verification


def _verdict_json(verdict: Verdict) -> str:
    data = asdict(verdict)
    data["outcomes"] = [asdict(o) for o in verdict.outcomes]
    return json.dumps(data)


def request_key(solver: Solver, request: SolveRequest) -> str:
    """The exact request, hashed: same task text, context, chain, turn, seed and history."""
    payload = {
        "solver": solver.identity, "task": request.task.task_id,
        "file": hashlib.sha256(request.task.hollowed_file.encode()).hexdigest(), "sample": request.sample,
        "turn": request.turn, "seed": request.seed, "n": request.n,
        "history": [[t.completion, t.feedback] for t in request.history],
    }
    if request.context is not None:  # the context engine's pack (None: the solver's own simple context)
        payload["context"] = hashlib.sha256(request.context.encode()).hexdigest()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _propose(solver: Solver, request: SolveRequest, store: Store, cache: bool) -> tuple[Completion, bool]:
    key = request_key(solver, request)
    if cache:
        hit = store.cached_response(key)
        if hit is not None:
            return Completion(**hit), True
    completion = solver.propose(request)[0]
    if cache:
        store.cache_response(key, asdict(completion))
    return completion, False


def extract(completion: Completion, task: Task) -> tuple[str | None, str]:
    """(body, why malformed) for a completion."""
    if completion.body is not None:
        return completion.body, ""
    if completion.meta.get("malformed"):  # the solver already judged its own answer unusable
        return None, str(completion.meta["malformed"])
    if not completion.text.strip():
        reason = "the function did not exist at that revision" if completion.meta.get("existed") is False else "empty answer"
        return None, reason
    from regrow.solve.extract import extract_body
    found = extract_body(completion.text, task)
    return found.body, found.error


def run_chain(run_id: str, task: Task, sample: int, *, solver: Solver, verifier: Verifier, store: Store,
              turns: int, seed: int, source_root: str = "", cache: bool = True,
              context: Callable[[Task], str | None] | None = None,
              context_items: Callable[[Task], tuple] | None = None, budget: TaskBudget | None = None,
              model_slots: threading.Semaphore | None = None,
              verify_slots: threading.Semaphore | None = None) -> ChainResult:
    """Run (or resume) one chain. Model calls and verifications take a slot from their own
    semaphores, so a run's model time and verification time overlap across chains."""
    rows = {r["turn"]: r for r in chain_rows(store, run_id, task.task_id, sample)}
    history: list[Turn] = []
    resumed = 0
    model_s = verify_s = 0.0
    budget = budget or TaskBudget()

    def result(turns_done: int, solved: bool, stopped: str = "") -> ChainResult:
        return ChainResult(task.task_id, sample, turns_done, solved, resumed, stopped, model_s, verify_s)

    for turn in range(turns):
        row = rows.get(turn)
        if row is not None:
            resumed += 1
            if row["solved"]:
                budget.spend(0, True)
                return result(turn + 1, True)
            attempt = Attempt.from_json(row["attempt"])
            history.append(Turn(attempt.completion, json.loads(row["verdict"]).get("feedback", "")))
            continue
        why = budget.why_stop()
        if why:
            return result(turn, False, why)
        budget.start()
        ctx = context(task) if context is not None else None
        request = SolveRequest(task=task, n=1, seed=seed, sample=sample, turn=turn, history=tuple(history),
                               source_root=source_root, context=ctx)
        start = time.perf_counter()
        with model_slots or nullcontext():
            t_model = time.perf_counter()
            completion, cached = _propose(solver, request, store, cache)
            model_s += time.perf_counter() - t_model
        body, why = extract(completion, task)
        with verify_slots or nullcontext():
            t_verify = time.perf_counter()
            verdict = verifier.verify(task, body, malformed=why)
            verify_s += time.perf_counter() - t_verify
        attempt = Attempt(
            solver=solver.name, completion=completion.text, body=body, malformed=why if body is None else "",
            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out, latency=completion.latency,
            cost=completion.cost, meta=completion.meta, cached=cached, context=ctx,
            context_items=context_items(task) if context_items is not None and ctx is not None else (),
            history=tuple((t.completion, t.feedback) for t in history), wall=time.perf_counter() - start)
        save_attempt(store, run_id, task.task_id, sample, turn, status=verdict.status, solved=verdict.solved,
                     attempt_json=attempt.to_json(), verdict_json=_verdict_json(verdict))
        budget.spend(0 if cached else completion.tokens_out, verdict.solved)
        if verdict.solved:
            return result(turn + 1, True)
        feedback = verdict.feedback if verdict.status != MALFORMED or verdict.feedback else why
        history.append(Turn(completion.text, feedback))
    return result(turns, False)
