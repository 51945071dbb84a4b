"""`regrow run`: grok → hollow → validate → solve → verify, every attempt stored as it completes.

The same command resumes an interrupted run: the run id is derived from what the run does,
and chains continue from their last stored turn.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from regrow.config import RunConfig
from regrow.errors import ConfigError
from regrow.executor import Executor, file_lock, make_executor, node_local
from regrow.source.envs import Environment, ensure_environment
from regrow.grok.build import grok
from regrow.tasks.hollow import HollowConfig
from regrow.core.index import Index
from regrow.solve.loop import TaskBudget, run_chain
from regrow.grok.recorder import CallLog
from regrow.verify.sandbox import kill_active
from regrow.solve.solvers import check_spec, is_model, make_solver
from regrow.source.resolve import Source, resolve_source
from regrow.store import Store
from regrow.store.runs import chain_rows, create_run, finish_run, has_run, save_attempt
from regrow.source.suite import SuiteOptions, session_options
from regrow.core.task import Task
from regrow.tasks.build import Exclusion, build_tasks
from regrow.tasks.strength import strength_of
from regrow.verify.verifier import Verifier, VerifyConfig


def _nothing(*_args) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """How a long job reports back (the CLI renders these; the library prints nothing)."""

    log: Callable[[str], None] = _nothing
    progress: Callable[[str, int, int], None] = _nothing  # (phase, done, total)


@dataclass(frozen=True)
class Prepared:
    source: Source
    env: Environment
    index: Index
    tasks: list[Task]
    excluded: list[Exclusion]
    verifier: Verifier
    store: Store
    timings: dict = field(default_factory=dict)

    @property
    def valid(self) -> list[Task]:
        return [t for t in self.tasks if t.is_valid]

    def close(self) -> None:
        """Stop the verifier's warm workers (they are also stopped at exit)."""
        self.verifier.close()


def open_store(config: RunConfig) -> Store:
    return Store(config.home / "regrow.sqlite")


def prepare(spec: str, config: RunConfig, hooks: Hooks = Hooks(), *, store: Store | None = None,
            validate: bool = True) -> Prepared:
    """Resolve the source, its environment, grok it and build (and validate) its tasks."""
    store = store or open_store(config)
    timings = {}
    t0 = time.perf_counter()
    source = resolve_source(spec, home=config.home)
    hooks.log(f"source {source.name} {source.version or ''} at {source.root} (key {source.key})")
    env = ensure_environment(source, home=config.home, python=config.python, log=hooks.log)
    timings["environment"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    index = grok(source, env, store, timeout=config.suite_timeout, test_timeout=config.timeout, log=hooks.log)
    timings["grok"] = time.perf_counter() - t1
    options = SuiteOptions.from_json(index.facts.get("pytest_options")) or session_options(source.root)
    verifier = Verifier(source.root, env.python, source.import_roots, calls=CallLog(store, source.key),
                        config=VerifyConfig(timeout=config.timeout, trust=config.trust, hide=(str(config.home),),
                                            fail_fast=config.fail_fast, pytest_args=options.args))
    tasks, excluded = [], []
    if validate:
        t2 = time.perf_counter()
        tasks, excluded = build_tasks(source, index, store, verifier, HollowConfig(min_statements=config.min_statements),
                                      repeats=config.repeats, workers=config.workers,
                                      progress=lambda d, n: hooks.progress("validate", d, n), log=hooks.log)
        timings["validate"] = time.perf_counter() - t2
    return Prepared(source, env, index, tasks, excluded, verifier, store, timings)


def choose_tasks(valid: list[Task], limit: int | None, seed: int) -> list[Task]:
    ordered = sorted(valid, key=lambda t: t.task_id)
    random.Random(seed).shuffle(ordered)
    return ordered[:limit] if limit else ordered


def strong_enough(valid: list[Task], min_strength: float | None, hooks: Hooks = Hooks()) -> list[Task]:
    """The tasks whose known strength is at least ``min_strength`` (unmeasured tasks are kept)."""
    if min_strength is None:
        return valid
    from regrow.errors import NoTestsError
    kept = [t for t in valid if (s := strength_of(t)) is None or s >= min_strength]
    if len(kept) < len(valid):
        hooks.log(f"--min-strength {min_strength}: left out {len(valid) - len(kept)} of {len(valid)} valid tasks "
                  "whose tests kill too few mutants")
    if not kept:
        raise NoTestsError(f"no valid task has strength >= {min_strength} (of {len(valid)} valid)")
    return kept


def measure_strength(spec: str, config: RunConfig, hooks: Hooks = Hooks(), *, tasks: int | None = None,
                     again: bool = False, max_mutants: int | None = None) -> list[Task]:
    """`regrow strength`: mutate each valid task's reference and verify every mutant (fail-fast,
    fast trust); each task's record is stored in ``task.extra["strength"]``. Returns the tasks measured."""
    from regrow.tasks.strength import measure_tasks

    prep = prepare(spec, config, hooks)
    try:
        prep.verifier.close()  # validation's workers: the strength verifier starts its own
        chosen = choose_tasks(prep.valid, tasks, config.seed)
        options = SuiteOptions.from_json(prep.index.facts.get("pytest_options")) or session_options(prep.source.root)
        # config.timeout bounds every mutant; each task's own limit follows its reference's time
        verifier = Verifier(prep.source.root, prep.env.python, prep.source.import_roots,
                            config=VerifyConfig(timeout=config.timeout, trust="fast", fail_fast=True,
                                                workers=config.workers, hide=(str(config.home),),
                                                pytest_args=options.args))
        with verifier:
            return measure_tasks(chosen, verifier, store=prep.store, source_key=prep.source.key,
                                 hollow_key=HollowConfig(min_statements=config.min_statements).key(),
                                 durations=prep.index.tests, workers=config.workers, again=again,
                                 max_mutants=max_mutants, progress=lambda d, n: hooks.progress("strength", d, n),
                                 log=hooks.log)
    finally:
        prep.close()


def run_key(source: Source, config: RunConfig, solver_identity: str | None = None) -> str:
    what = {"source": source.key, "solver": solver_identity or config.solver, "samples": config.samples, "turns": config.turns,
            "tasks": config.tasks, "seed": config.seed, "min_statements": config.min_statements,
            "temperature": config.temperature, "max_tokens": config.max_tokens}
    # Settings that change results name a different run; defaults keep earlier run ids.
    for name in ("stop_on_solve", "task_tokens", "task_seconds", "trust", "context", "fail_fast", "min_strength"):
        value = getattr(config, name)
        if value != RunConfig.model_fields[name].default:
            what[name] = value
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", config.solver).strip("-")[:40]
    return f"{source.name}-{slug}-{digest}"


def run(spec: str, config: RunConfig, hooks: Hooks = Hooks()) -> str:
    """Run (or resume) a solver over a source's valid tasks. Returns the run id."""
    check_spec(config.solver)  # a bad spec fails now, not after minutes of environment, grok and validation
    prep = prepare(spec, config, hooks)
    try:
        return _run_prepared(prep, spec, config, hooks)
    finally:
        prep.close()


def _run_prepared(prep: Prepared, spec: str, config: RunConfig, hooks: Hooks) -> str:
    if not prep.valid:
        from regrow.errors import NoTestsError
        raise NoTestsError(f"{prep.source.name}: no valid tasks (of {len(prep.tasks)} hollowed functions); "
                           "see `regrow hollow` for the reasons")
    chosen = choose_tasks(strong_enough(prep.valid, config.min_strength, hooks), config.tasks, config.seed)
    solver = make_solver(config.solver, _solver_options(config), root=prep.source.root, index=prep.index)
    # A model solver's identity includes its resolved options (sampling, budgets): other options, other run.
    run_id = config.run_id or run_key(prep.source, config, solver.identity)
    store = prep.store
    if not has_run(store, run_id):
        create_run(store, run_id, source_key=prep.source.key, spec=spec, solver=config.solver,
                   config_json=json.dumps({**config.model_dump(mode="json"), "task_ids": [t.task_id for t in chosen],
                                           "timings": prep.timings}))
    else:
        hooks.log(f"resuming run {run_id}")
    stats = solve(prep, chosen, solver, run_id, config, hooks)
    finish_run(store, run_id)
    hooks.log(f"wall {stats['wall']:.1f}s: model {stats['model']:.1f}s, verification {stats['verify']:.1f}s "
              f"(summed over chains)")
    return run_id


def solve(prep: Prepared, chosen: list[Task], solver, run_id: str, config: RunConfig, hooks: Hooks,
          executor: Executor | None = None) -> dict:
    """Run every (task, sample) chain. Model calls and verifications each have their own limit
    (semaphores), and enough threads to fill both, so the two overlap instead of adding up.

    ``executor`` (default: ``config.executor``, threads) runs the chains; a remote one (Ray)
    runs each in a node's host process on that node's own prepared source (`RemoteChain`), and
    the attempts it returns are stored here."""
    model_limit = config.model_concurrency or _solver_concurrency(solver) or config.workers
    model_slots, verify_slots = threading.BoundedSemaphore(model_limit), threading.BoundedSemaphore(config.workers)
    budgets = {t.task_id: TaskBudget(tokens=config.task_tokens, seconds=config.task_seconds,
                                     stop_on_solve=config.stop_on_solve) for t in chosen}
    contexts = ContextCache(prep, config, solver)
    # Chains in sample-major order: with stop-on-solve the first sample of every task runs first.
    chains = [(t, s) for s in range(config.samples) for t in chosen]
    done, totals = 0, {"model": 0.0, "verify": 0.0}
    hooks.progress("solve", 0, len(chains))
    start = time.perf_counter()
    own = executor is None
    executor = executor or make_executor(config.executor, model_limit + config.workers)
    if getattr(executor, "remote", False):
        try:
            return _solve_remote(prep, chains, run_id, config, hooks, executor, budgets, model_limit, start)
        finally:
            if own:
                executor.close()

    def chain(item):
        task, sample = item
        return run_chain(run_id, task, sample, solver=solver, verifier=prep.verifier, store=prep.store,
                         turns=config.turns, seed=config.seed, source_root=str(prep.source.root),
                         cache=config.cache, context=contexts.get, context_items=contexts.items,
                         budget=budgets[task.task_id],
                         model_slots=model_slots, verify_slots=verify_slots)

    try:
        for _item, res in executor.map(chain, chains):
            totals["model"] += res.model_seconds
            totals["verify"] += res.verify_seconds
            done += 1
            hooks.progress("solve", done, len(chains))
    except BaseException:
        kill_active()
        raise
    return {**totals, "wall": time.perf_counter() - start}


def _solve_remote(prep: Prepared, chains: list[tuple[Task, int]], run_id: str, config: RunConfig, hooks: Hooks,
                  executor: Executor, budgets: dict, model_limit: int, start: float) -> dict:
    """The chains on a remote executor. Each order carries the chain's stored turns (it resumes
    from them) and its task's budget as it stands when the order leaves (orders leave as slots
    free up, so stop-on-solve still skips the later samples of a solved task)."""
    spec = str(prep.source.root) if prep.source.kind == "local" else prep.source.spec
    fn = RemoteChain(spec, prep.source.key, config, run_id, model_limit)
    done, totals = 0, {"model": 0.0, "verify": 0.0}

    def orders():
        for task, sample in chains:
            budget = budgets[task.task_id]
            rows = [dict(r) for r in chain_rows(prep.store, run_id, task.task_id, sample)]
            yield task.task_id, sample, rows, budget.spent_tokens, budget.solved

    for (task_id, sample, *_), (res, rows) in executor.map(fn, orders()):
        for row in rows:  # the turns the node ran, stored here as if run here
            save_attempt(prep.store, run_id, task_id, sample, row["turn"], status=row["status"],
                         solved=bool(row["solved"]), attempt_json=row["attempt"], verdict_json=row["verdict"])
        tokens = sum(a["tokens_out"] for a in map(json.loads, (r["attempt"] for r in rows)) if not a.get("cached"))
        budgets[task_id].spend(tokens, res.solved)
        totals["model"] += res.model_seconds
        totals["verify"] += res.verify_seconds
        done += 1
        hooks.progress("solve", done, len(chains))
    return {**totals, "wall": time.perf_counter() - start}


# Settings that change what a run does with a prepared source, not the source or its engine:
# runs that differ only in these share a node's warm engine.
_RUN_ONLY = frozenset({"samples", "turns", "tasks", "run_id", "cache", "stop_on_solve", "task_tokens", "task_seconds",
                       "model_concurrency", "min_strength", "executor"})


def warm_key(config: RunConfig) -> str:
    """What names a warm engine on a node: the settings its preparation and solver depend on."""
    return json.dumps(config.model_dump(mode="json", exclude=set(_RUN_ONLY)), sort_keys=True)


@dataclass(frozen=True)
class RemoteChain:
    """One chain, run where a remote executor puts it. The node prepares the source once
    (`node_local`; nodes sharing a home take turns) and keeps its solver, context and a scratch
    store of the run; the chain's new turns come back as rows for the driver's store."""

    spec: str
    key: str  # the driver's source snapshot: a node that resolves another one refuses
    config: RunConfig
    run_id: str
    model_limit: int

    def __call__(self, order: tuple) -> tuple:
        task_id, sample, rows, spent, solved = order
        node = node_local(("chains", self.spec, warm_key(self.config)), self._node)
        if node.prep.source.key != self.key:
            from regrow.errors import SourceError
            raise SourceError(f"{self.spec}: this node resolved snapshot {node.prep.source.key}, "
                              f"the run uses {self.key}")
        scratch = node_local(("scratch", self.run_id), lambda: _ScratchStore(self.config.home))
        for row in rows:
            save_attempt(scratch.store, self.run_id, task_id, sample, row["turn"],
                         status=json.loads(row["verdict"]).get("status", ""), solved=bool(row["solved"]),
                         attempt_json=row["attempt"], verdict_json=row["verdict"])
        config = self.config
        budget = TaskBudget(tokens=config.task_tokens, seconds=config.task_seconds,
                            stop_on_solve=config.stop_on_solve, spent_tokens=spent, solved=solved)
        res = run_chain(self.run_id, node.tasks[task_id], sample, solver=node.solver, verifier=node.prep.verifier,
                        store=scratch.store, turns=config.turns, seed=config.seed,
                        source_root=str(node.prep.source.root), cache=config.cache, context=node.contexts.get,
                        context_items=node.contexts.items, budget=budget, model_slots=node.model_slots,
                        verify_slots=node.verify_slots)
        new = [{**dict(r), "status": json.loads(r["verdict"]).get("status", "")}
               for r in chain_rows(scratch.store, self.run_id, task_id, sample) if r["turn"] >= len(rows)]
        return res, new

    def _node(self) -> "_ChainNode":
        with file_lock(self.config.home, f"prepare {self.spec}"):
            prep = prepare(self.spec, self.config)
        return _ChainNode(prep, self.config, self.model_limit)


class _ChainNode:
    """What a node keeps for the chains of one source: the prepared source, the solver, the
    context cache and the node's own model and verification limits."""

    def __init__(self, prep: Prepared, config: RunConfig, model_limit: int):
        self.prep = prep
        self.tasks = {t.task_id: t for t in prep.valid}
        self.solver = make_solver(config.solver, _solver_options(config), root=prep.source.root, index=prep.index)
        self.contexts = ContextCache(prep, config, self.solver)
        self.model_slots = threading.BoundedSemaphore(model_limit)
        self.verify_slots = threading.BoundedSemaphore(config.workers)

    def close(self) -> None:
        self.prep.close()


class _ScratchStore:
    """A node's store for the turns of one run while they are made (the driver's store is the
    record; this one lets `run_chain` resume and cache as it does locally). Under the node's home,
    removed when the node's host closes."""

    def __init__(self, home: Path):
        import tempfile
        (Path(home) / "scratch").mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="chains-", dir=Path(home) / "scratch"))
        self.store = Store(self.folder / "chains.sqlite")

    def close(self) -> None:
        import shutil
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _solver_concurrency(solver) -> int | None:
    """A model solver's own limit on calls in flight (its resolved options), if it has one."""
    return solver.options.concurrency if solver.options is not None else None


class ContextCache:
    """The prompt's context section, built once per task.

    With ``config.context == "engine"`` and a model solver, the repository context engine packs
    it (task mode: nothing derived from the hidden body); otherwise None, and the solver uses
    its own simple same-file context.
    """

    def __init__(self, prep: Prepared, config: RunConfig, solver):
        self.prep = prep
        self.enabled = config.context == "engine" and solver.options is not None
        options = solver.options
        self.budget = getattr(options, "context_budget", None) or 2000
        self._cache: dict[str, tuple[str, tuple[dict, ...]]] = {}
        self._lock = threading.Lock()

    def _pack(self, task: Task) -> tuple[str, tuple[dict, ...]]:
        with self._lock:
            if task.task_id not in self._cache:
                from regrow.context.engine import build_context, engine_for
                engine = engine_for(self.prep.store, self.prep.source.key, Path(self.prep.source.root))
                pack = build_context(engine, task.task_id, budget=self.budget, tokenizer="smollm2", mode="task")
                items = tuple({k: v for k, v in i.to_dict().items() if k != "text"} for i in pack.items)
                self._cache[task.task_id] = (pack.render("md"), items)
            return self._cache[task.task_id]

    def get(self, task: Task) -> str | None:
        """The context section of ``task``'s prompt (None: the solver's own)."""
        return self._pack(task)[0] if self.enabled else None

    def items(self, task: Task) -> tuple[dict, ...]:
        """The items behind `get`, each with its breadcrumb, as attempts store them."""
        return self._pack(task)[1] if self.enabled else ()


def _solver_options(config: RunConfig):
    if not is_model(config.solver):
        return None
    from regrow.solve.solvers.options import SolverOptions
    given = {k: v for k, v in {"temperature": config.temperature, "max_tokens": config.max_tokens,
                               "seed": config.seed}.items() if v is not None}
    return SolverOptions(**given)


def load_engine(spec: str, config: RunConfig, hooks: Hooks = Hooks()):
    """Resolve and grok a source (cached) and load its context engine: what `regrow context` does."""
    from regrow.context.engine import ContextEngine

    prep = prepare(spec, config, hooks, validate=False)
    return ContextEngine.load(prep.store, prep.source.key, prep.source.root, prep.index)


def export_dataset(fmt: str, output: Path, config: RunConfig, hooks: Hooks = Hooks(), *,
                   run_ids: list[str] | tuple[str, ...] = (), tasks_source: str | None = None,
                   split: str | None = None, check: bool = True):
    """Build and write one dataset: from stored runs (`records.RUN_FORMATS`) or from a source's
    valid tasks (`records.SOURCE_FORMATS`, ``harbor`` a directory). With ``check`` every exported
    task is verified again first (reference must score 1, stub 0); those that do not are left
    out and counted in the result's summary. Returns the `records.Built`."""
    from regrow.export import harbor, records, write

    if fmt not in records.FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(records.FORMATS)}, not {fmt!r}")
    if fmt != records.HARBOR:
        write.kind_of(output)
    if tasks_source is not None:
        if run_ids:
            raise ConfigError("give run ids or --tasks SOURCE, not both")
        if fmt not in records.SOURCE_FORMATS:
            raise ConfigError(f"--tasks exports {', '.join(records.SOURCE_FORMATS)}, not {fmt!r}")
        prep = prepare(tasks_source, config, hooks)
        try:
            task_set = records.TaskSet.of(prep.source, prep.tasks)
            checks = None
            if check:
                hooks.log(f"checking {len(task_set.tasks)} tasks: the reference must pass, the stub must fail")
                task_set, checks = records.check_tasks(task_set, prep.verifier, config.workers)
        finally:
            prep.close()
        built = (harbor.write_tasks(task_set, output, split) if fmt == records.HARBOR
                 else records.build_from_tasks(fmt, [task_set], split))
    else:
        if fmt not in records.RUN_FORMATS:
            raise ConfigError(f"runs export {', '.join(records.RUN_FORMATS)}; {fmt} needs --tasks SOURCE")
        store = open_store(config)
        runs = records.load_runs(store, list(run_ids))
        checks = None
        if check:
            checks = records.Checks()
            checked = []
            for rs in runs:
                spec = rs.tasks.spec
                # grpo rows are the whole task set; the other formats only the tasks the runs attempted
                wanted = rs.tasks if fmt == records.GRPO else rs.tasks.only({a.task_id for a in rs.attempts})
                prep = prepare(spec, config, hooks, store=store)
                try:
                    hooks.log(f"checking {len(wanted.tasks)} tasks of {spec}")
                    task_set, part = records.check_tasks(wanted, prep.verifier, config.workers)
                finally:
                    prep.close()
                checks.checked += part.checked
                checks.failed.update(part.failed)
                checked.append(records.RunSet(task_set, rs.attempts))
            runs = checked
        built = records.build(fmt, runs, split)
    built.checks = checks
    if fmt != records.HARBOR:
        write.write(built.records, fmt, output)
    return built
