"""Reports read the store: one run's figures, and several runs side by side.

Every figure is defined in docs/metrics.md.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from regrow.errors import UnknownRunError
from regrow.tasks.hollow import HollowConfig
from regrow.core.scores import edit_scores, pass_at_k
from regrow.store import Store
from regrow.store.runs import attempt_rows, list_runs, run_row
from regrow.tasks.build import load_tasks, summarize
from regrow.tasks.strength import summary as strength_summary


@dataclass
class RunReport:
    run_id: str
    source: str
    solver: str
    samples: int
    turns: int
    tasks: dict  # the task-set summary: functions, hollowed, valid, by_status, by_reason
    chosen: int  # valid tasks in this run
    chains: int  # (task, sample) chains with at least one attempt
    attempts: int
    solved_tasks: int  # tasks with at least one solved chain
    pass_at: dict  # k -> unbiased pass@k averaged over tasks
    pass_at_first_turn: float  # pass@1 counting only turn 0 (no feedback)
    tests_passed: float  # mean fraction of covering tests passed by each chain's final attempt
    func_similarity: float | None
    func_error: float | None
    file_similarity: float | None
    file_error: float | None
    files_scored: int
    verify_ms: dict  # median, p90, max of verification wall time per attempt
    statuses: dict  # verdict status -> count over all attempts
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    finished: bool = False
    per_task: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def build_report(store: Store, run_id: str) -> RunReport:
    run = run_row(store, run_id)
    if run is None:
        known = ", ".join(r["run_id"] for r in list_runs(store)[-5:]) or "none yet"
        raise UnknownRunError(f"no run {run_id!r} in {store.path}; recent runs: {known}")
    config = json.loads(run["config"])
    chosen_ids = config.get("task_ids", [])
    samples, turns = int(config.get("samples", 1)), int(config.get("turns", 1))
    hollow_key = HollowConfig(min_statements=int(config.get("min_statements", 2))).key()
    tasks, excluded = load_tasks(store, run["source_key"], hollow_key)
    by_id = {t.task_id: t for t in tasks}
    rows = attempt_rows(store, run_id)
    chains: dict[tuple[str, int], list] = {}
    statuses: dict[str, int] = {}
    durations, tokens_in, tokens_out, cost = [], 0, 0, 0.0
    for r in rows:
        verdict, attempt = json.loads(r["verdict"]), json.loads(r["attempt"])
        chains.setdefault((r["task_id"], r["sample"]), []).append((r["turn"], verdict, attempt))
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        if verdict.get("status") != "malformed":
            durations.append(verdict.get("duration") or 0.0)
        tokens_in += int(attempt.get("tokens_in") or 0)
        tokens_out += int(attempt.get("tokens_out") or 0)
        cost += float(attempt.get("cost") or 0.0)
    per_task, pass_at = [], {}
    ks = sorted({1, samples} | {k for k in (5, 10) if k < samples})
    first_turn, fractions, f_sims, f_errs = [], [], [], []
    final_bodies: dict[str, str | None] = {}
    for task_id in chosen_ids:
        task_chains = [sorted(chains[(task_id, s)], key=lambda x: x[0]) for s in range(samples) if (task_id, s) in chains]
        if not task_chains:
            continue
        n = len(task_chains)
        c = sum(any(v["status"] == "solved" for _, v, _ in ch) for ch in task_chains)
        c0 = sum(ch[0][1]["status"] == "solved" for ch in task_chains if ch[0][0] == 0)
        first_turn.append(c0 / n)
        for k in ks:
            if k <= n:
                pass_at.setdefault(k, []).append(pass_at_k(n, c, k))
        finals = [ch[-1] for ch in task_chains]
        for _, v, _ in finals:
            total = v.get("tests_total") or 0
            fractions.append((v.get("tests_passed") or 0) / total if total else 0.0)
            f_sims.append(v.get("func_similarity"))
            f_errs.append(v.get("func_error"))
        final_bodies[task_id] = finals[0][2].get("body")
        per_task.append({"task": task_id, "chains": n, "solved_chains": c,
                         "turns": [len(ch) for ch in task_chains],
                         "func_similarity": finals[0][1].get("func_similarity")})
    file_sims, file_errs = _file_scores(by_id, final_bodies)
    return RunReport(
        run_id=run_id, source=run["spec"], solver=run["solver"], samples=samples, turns=turns,
        tasks={**summarize(tasks, excluded), "strength": strength_summary(tasks)}, chosen=len(chosen_ids), chains=len(chains), attempts=len(rows),
        solved_tasks=sum(1 for p in per_task if p["solved_chains"] > 0),
        pass_at={k: statistics.fmean(v) for k, v in pass_at.items()},
        pass_at_first_turn=statistics.fmean(first_turn) if first_turn else 0.0,
        tests_passed=statistics.fmean(fractions) if fractions else 0.0,
        func_similarity=_mean(f_sims), func_error=_mean(f_errs),
        file_similarity=_mean(file_sims), file_error=_mean(file_errs), files_scored=len(file_sims),
        verify_ms={"median": _ms(statistics.median(durations)) if durations else None,
                   "p90": _ms(_percentile(durations, 0.9)), "max": _ms(max(durations) if durations else None)},
        statuses=statuses, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost,
        finished=run["finished"] is not None, per_task=per_task,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _file_scores(by_id: dict, bodies: dict) -> tuple[list[float], list[float]]:
    """Mockito-style: per file, every scored function regenerated at once, compared whole."""
    from regrow.core.task import STUB
    per_file: dict[str, list] = {}
    for task_id, body in bodies.items():
        task = by_id.get(task_id)
        if task is None or "oneliner" in task.symbol.flags:
            continue
        per_file.setdefault(task.path, []).append((task, body if body is not None else STUB))
    sims, errs = [], []
    for items in per_file.values():
        original = items[0][0].original_file
        lines = original.splitlines(keepends=True)
        for task, body in sorted(items, key=lambda x: -x[0].symbol.end):
            n_ref = len(task.reference_body.rstrip("\n").splitlines())
            start = task.symbol.end - n_ref  # 0-based index of the body's first line
            indented = "".join(task.body_indent + ln if ln.strip() else ln
                               for ln in (body.rstrip() + "\n").splitlines(keepends=True))
            lines[start: task.symbol.end] = [indented]
        _, sim, err = edit_scores(original, "".join(lines))
        sims.append(sim)
        errs.append(err)
    return sims, errs


def compare(store: Store, run_ids: list[str]) -> list[RunReport]:
    return [build_report(store, r) for r in run_ids]
