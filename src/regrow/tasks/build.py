"""Build the task set of a source: choose symbols, hollow them, validate, persist.

Every non-test function ends in the store either as a task (valid or not, with its status)
or as an exclusion with its reason, so every report can account for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from regrow.core.task import STUB
from regrow.executor import Executor, ThreadExecutor
from regrow.tasks.hollow import HollowConfig, eligibility, make_task
from regrow.core.index import Index
from regrow.grok.parse import read_source
from regrow.source.resolve import Source
from regrow.store import Store
from regrow.store.tasks import save_task_rows, task_rows
from regrow.core.task import EXCLUDED, FLAKY, PENDING, REFERENCE_FAILS, UNSUPPORTED, UNTESTED, VALID, Task, task_from_json, task_to_json
from regrow.core.verdict import MISSING, PASSED
from regrow.verify.verifier import Verifier

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Exclusion:
    task_id: str
    status: str
    reason: str


def plan_tasks(source: Source, index: Index, cfg: HollowConfig) -> tuple[list[Task], list[Exclusion]]:
    """Hollow every eligible covered symbol; list the others with why they were left out."""
    tasks, excluded = [], []
    texts: dict[str, str | None] = {}
    for sym in index.symbols.values():
        if sym.is_test:
            continue
        reason = eligibility(sym, cfg)
        tests = index.covering(sym.qualname)
        if reason is None and not tests:
            reason = "not covered by any passing test"
        if reason is not None:
            excluded.append(Exclusion(sym.qualname, EXCLUDED, reason))
            continue
        if sym.path not in texts:
            texts[sym.path] = read_source(source.root / sym.path)[0]
        text = texts[sym.path]
        try:
            if text is None:
                raise ValueError("file unreadable")
            tasks.append(make_task(text, sym, tests, index.test_seconds(tests)))
        except Exception as exc:  # libcst can reject code that ast accepts; keep the reason
            excluded.append(Exclusion(sym.qualname, UNSUPPORTED, f"could not hollow: {exc}"[:200]))
    return tasks, excluded


def load_tasks(store: Store, source_key: str, hollow_key: str) -> tuple[list[Task], list[Exclusion]]:
    tasks, excluded = [], []
    for task_id, status, reason, data in task_rows(store, source_key, hollow_key):
        if data == "{}":
            excluded.append(Exclusion(task_id, status, reason))
        else:
            tasks.append(task_from_json(data))
    return tasks, excluded


def _save(store: Store, source_key: str, hollow_key: str, tasks=(), excluded=()) -> None:
    save_task_rows(store, source_key, hollow_key,
                   [(t.task_id, t.status, t.reason, task_to_json(t)) for t in tasks]
                   + [(e.task_id, e.status, e.reason, "{}") for e in excluded])


VALIDATION = 2  # bump when validation changes: stored rejections of an older one are examined again
REFERENCE_TRIES = 3  # a reference that fails is run again before its task is rejected (a slow, loaded machine)


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:200]


def _reference_problem(ref) -> str:
    """Why the reference did not pass, naming the test and its message."""
    if ref.integrity_flags:
        return f"reference rejected by the integrity checks: {', '.join(ref.integrity_flags)}"
    bad = next((o for o in ref.outcomes if o.outcome != PASSED), None)
    if bad is None:
        return f"reference fails alone: {ref.status}" + (f" ({_first_line(ref.feedback)})" if ref.feedback else "")
    if bad.outcome == MISSING:
        return (f"covering test not found in a new session: {bad.test_id} (its id may change between runs, "
                "or it was deselected)")
    message = _first_line(bad.message)
    return f"reference fails alone: {bad.test_id} {bad.outcome}" + (f": {message}" if message else "")


def validate_task(task: Task, verifier: Verifier, unstable: set[str]) -> Task:
    """The reference must pass its covering tests; the stub must fail at least one.

    A reference that fails is tried `REFERENCE_TRIES` times before the task is rejected (a
    timeout on a loaded machine is not a property of the task); a rejection by the integrity
    checks is not retried. Every rejection names its cause and the test."""
    flaky = sorted(set(task.tests) & unstable)
    if flaky:
        return _stamp(task.with_status(FLAKY, f"covering test not stable on the reference: {flaky[0]}"))
    for _ in range(REFERENCE_TRIES):
        ref = verifier.verify(task, task.reference_body)
        if ref.solved or ref.integrity_flags:
            break
    if not ref.solved:
        return _stamp(task.with_status(REFERENCE_FAILS, _reference_problem(ref)))
    stub = verifier.verify(task, STUB)
    if stub.solved:
        return _stamp(task.with_status(UNTESTED, "the covering tests pass with the body erased"))
    return _stamp(task.with_status(VALID))


def _stamp(task: Task) -> Task:
    return replace(task, extra={**task.extra, "validation": VALIDATION})


def _needs_validation(task: Task) -> bool:
    """Pending, or rejected for a reason a later regrow may judge differently (flaky, reference
    failing) by an older validation."""
    if task.status == PENDING:
        return True
    return task.status in (FLAKY, REFERENCE_FAILS) and task.extra.get("validation", 1) < VALIDATION


def build_tasks(source: Source, index: Index, store: Store, verifier: Verifier, cfg: HollowConfig, *,
                repeats: int = 3, workers: int = 2, progress: Progress | None = None,
                log: Callable[[str], None] | None = None,
                executor: Executor | None = None) -> tuple[list[Task], list[Exclusion]]:
    """Plan, then validate what is not validated yet, on ``executor`` (default: ``workers``
    threads). Resumable: each result is saved as it comes."""
    log = log or (lambda _m: None)
    key = cfg.key()
    stored, excluded = load_tasks(store, source.key, key)
    if not stored and not excluded:
        planned, excluded = plan_tasks(source, index, cfg)
        _save(store, source.key, key, planned, excluded)
        stored = planned
    pending = [t for t in stored if _needs_validation(t)]
    if pending:
        unstable = _unstable_tests(source, verifier, pending, repeats - 1, log)
        done = {t.task_id: t for t in stored if not _needs_validation(t)}
        executor = executor or ThreadExecutor(workers)
        for n, (_, task) in enumerate(executor.map(lambda t: validate_task(t, verifier, unstable), pending), 1):
            _save(store, source.key, key, [task])
            done[task.task_id] = task
            if progress:
                progress(n, len(pending))
        stored = [done[t.task_id] for t in stored]
    return stored, excluded


def _unstable_tests(source: Source, verifier: Verifier, tasks: list[Task], runs: int,
                    log: Callable[[str], None]) -> set[str]:
    """Covering tests that did not pass in every one of ``runs`` runs of the unmodified source.

    With the per-task reference run and the test-map run, each covering test runs at least
    ``runs + 2`` times on the reference before a task is called valid.
    """
    union = tuple(sorted({t for task in tasks for t in task.tests}))
    unstable: set[str] = set()
    for i in range(runs):
        log(f"stability run {i + 1}/{runs} of {len(union)} covering tests on the reference")
        outcome = verifier.run_file(tasks[0].path, None, union)
        for test_id in union:
            res = outcome.results.get(test_id)
            # A test with no result did not run (the session timed out first, or its id is not found
            # again): not evidence of instability; each task's own reference runs judge it, by name.
            if res is not None and res.outcome != PASSED:
                unstable.add(test_id)
    return unstable


def summarize(tasks: list[Task], excluded: list[Exclusion]) -> dict:
    """Counts by status and by exclusion reason, and each hollowed task that is not valid with
    its full reason (the cause and the test)."""
    by_status: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for t in tasks:
        by_status[t.status] = by_status.get(t.status, 0) + 1
        if t.status != VALID:
            key = t.reason.split(":")[0] if t.reason else t.status
            by_reason[f"{t.status}: {key}"] = by_reason.get(f"{t.status}: {key}", 0) + 1
    for e in excluded:
        by_status[e.status] = by_status.get(e.status, 0) + 1
        by_reason[f"{e.status}: {e.reason}"] = by_reason.get(f"{e.status}: {e.reason}", 0) + 1
    rejected = [{"task_id": t.task_id, "status": t.status, "reason": t.reason}
                for t in sorted(tasks, key=lambda t: (t.status, t.task_id)) if t.status != VALID]
    return {"functions": len(tasks) + len(excluded), "hollowed": len(tasks),
            "valid": by_status.get(VALID, 0), "by_status": by_status, "by_reason": dict(sorted(by_reason.items())),
            "rejected": rejected}
