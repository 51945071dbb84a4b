"""The closed loop for one chain: propose → extract → verify → feedback → retry.

Each turn is written to the store as soon as it is verified; a chain that was interrupted
resumes from its last recorded turn.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

from .solvers.base import Completion, Solver, SolveRequest, Turn
from .store import Store
from .task import Task
from .verdict import MALFORMED, Verdict
from .verify import Verifier


@dataclass(frozen=True, slots=True)
class ChainResult:
    task_id: str
    sample: int
    turns: int
    solved: bool
    resumed: int  # turns read back from the store instead of being run


def _verdict_json(verdict: Verdict) -> str:
    data = asdict(verdict)
    data["outcomes"] = [asdict(o) for o in verdict.outcomes]
    return json.dumps(data)


def request_key(solver: Solver, request: SolveRequest) -> str:
    """The exact request, hashed: same task text, chain, turn, seed and history."""
    payload = {
        "solver": getattr(solver, "cache_key", solver.name), "task": request.task.task_id,
        "file": hashlib.sha256(request.task.hollowed_file.encode()).hexdigest(), "sample": request.sample,
        "turn": request.turn, "seed": request.seed, "n": request.n,
        "history": [[t.completion, t.feedback] for t in request.history],
    }
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
    if not completion.text.strip():
        reason = "the function did not exist at that revision" if completion.meta.get("existed") is False else "empty answer"
        return None, reason
    from .extract import extract_body
    found = extract_body(completion.text, task)
    return found.body, found.error


def run_chain(run_id: str, task: Task, sample: int, *, solver: Solver, verifier: Verifier, store: Store,
              turns: int, seed: int, source_root: str = "", cache: bool = True) -> ChainResult:
    rows = {r["turn"]: r for r in store.query(
        "SELECT turn, solved, attempt, verdict FROM attempts WHERE run_id=? AND task_id=? AND sample=? ORDER BY turn",
        (run_id, task.task_id, sample))}
    history: list[Turn] = []
    resumed = 0
    for turn in range(turns):
        row = rows.get(turn)
        if row is not None:
            resumed += 1
            if row["solved"]:
                return ChainResult(task.task_id, sample, turn + 1, True, resumed)
            attempt = json.loads(row["attempt"])
            history.append(Turn(attempt.get("completion", ""), json.loads(row["verdict"]).get("feedback", "")))
            continue
        request = SolveRequest(task=task, n=1, seed=seed, sample=sample, turn=turn, history=tuple(history),
                               source_root=source_root)
        start = time.perf_counter()
        completion, cached = _propose(solver, request, store, cache)
        body, why = extract(completion, task)
        verdict = verifier.verify(task, body, malformed=why)
        attempt = {
            "solver": solver.name, "completion": completion.text, "body": body, "malformed": why if body is None else "",
            "tokens_in": completion.tokens_in, "tokens_out": completion.tokens_out, "latency": completion.latency,
            "cost": completion.cost, "meta": completion.meta, "cached": cached,
            "wall": time.perf_counter() - start,
        }
        with store.write() as w:
            w.execute("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (run_id, task.task_id, sample, turn, time.time(), verdict.status, int(verdict.solved),
                       json.dumps(attempt, default=str), _verdict_json(verdict)))
        if verdict.solved:
            return ChainResult(task.task_id, sample, turn + 1, True, resumed)
        feedback = verdict.feedback if verdict.status != MALFORMED or verdict.feedback else why
        history.append(Turn(completion.text, feedback))
    return ChainResult(task.task_id, sample, turns, False, resumed)
