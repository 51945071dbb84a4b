"""The command line: parses arguments, calls the library, renders. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from regrow.report import runs as reports
from regrow.config import RunConfig, resolve_config
from regrow.errors import RegrowError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn a Python repository with tests into a verifiable-reward environment for code models.")
# emoji=False: ":name:" in qualnames (pkg.mod:clamp: ...) must never turn into pictures.
console = Console(stderr=True, emoji=False) if sys.stderr.isatty() else Console(stderr=True, width=200, emoji=False)
out = Console(emoji=False) if sys.stdout.isatty() else Console(width=200, emoji=False)  # tables stay whole in pipes and files

HomeOpt = typer.Option(None, "--home", help="Folder for caches and the store. Default: ./.regrow.")
PythonOpt = typer.Option(None, "--python", help="Run the target's tests with this interpreter.")
# metavar "": a flag takes no value, so its help shows no "<bool>" for one.
JsonOpt = typer.Option(False, "--json", metavar="", show_default=False, help="Print JSON for scripts.")


def _default(name: str) -> str:
    """The built-in default of a `RunConfig` field, as help text shows it."""
    if name == "workers":
        return f"the number of CPUs, {RunConfig.model_fields[name].default_factory()} here"
    value = RunConfig.model_fields[name].default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "all" if value is None else str(value)


def _help(text: str, name: str) -> str:
    return f"{text} Default: {_default(name)}."


SuiteTimeoutOpt = typer.Option(None, "--suite-timeout",
                               help=_help("Wall seconds for the whole test suite under coverage (grok).",
                                          "suite_timeout"))
MinStatementsOpt = typer.Option(None, "--min-statements",
                                help=_help("Hollow only bodies with at least this many statements.", "min_statements"))
WorkersOpt = typer.Option(None, "--workers", help=_help("Parallel verifications.", "workers"))


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 sample``, ``2 samples``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


@contextmanager
def _guard() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if _during_interrupt(exc):  # cleanup after Ctrl-C failed: the interrupt is what happened
            _interrupted()
        if not isinstance(exc, RegrowError):
            raise
        # soft_wrap: one error is one line in a pipe or a log, however long (the terminal wraps it on screen).
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        _interrupted()


def _during_interrupt(exc: BaseException) -> bool:
    """True when ``exc`` was raised while handling a KeyboardInterrupt."""
    seen = exc.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False


def _interrupted() -> None:
    console.print("[yellow]interrupted[/]: everything verified so far is saved; "
                  "run the same command again to resume.")
    # Worker threads may be inside a model call that cannot be interrupted; every finished
    # attempt is already committed, so leave now instead of waiting for them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


@contextmanager
def _hooks(quiet: bool = False):
    from regrow.api import Hooks
    plain = not console.is_terminal  # piped or CI: a bar renders nothing there, so plain lines instead
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=False, disable=quiet or plain)
    bars: dict[str, int] = {}
    lines = _ProgressLines()

    def log(msg: str) -> None:
        if not quiet:
            progress.console.print(f"[dim]·[/] {escape(msg)}", highlight=False)

    def step(phase: str, done: int, total: int) -> None:
        if quiet:
            return
        if plain:
            lines.step(phase, done, total)
            return
        if phase not in bars:
            bars[phase] = progress.add_task(phase, total=total)
        progress.update(bars[phase], completed=done, total=total)

    with progress:
        yield Hooks(log=log, progress=step)


# What a phase counts, for its plain progress lines.
_UNITS = {"validate": ("task", "tasks"), "solve": ("chain", "chains"), "train": ("step", "steps")}


class _ProgressLines:
    """Progress as plain lines (``solve: 12/40 chains, 1m20s``) for output that is not a terminal:
    a phase's first step, its last, and in between every tenth of the way or every ``every`` seconds."""

    def __init__(self, every: float = 15.0):
        self.every = every
        self.phases: dict[str, dict] = {}

    def step(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        tenth = 10 * done // total if total else 10
        state = self.phases.get(phase)
        if state is None:
            state = self.phases[phase] = {"start": now, "printed": now, "tenth": tenth, "ended": False}
        elif state["ended"] or not (done >= total or tenth > state["tenth"] or now - state["printed"] >= self.every):
            return
        state.update(printed=now, tenth=tenth, ended=done >= total)
        noun, nouns = _UNITS.get(phase, ("", ""))
        what = f"{done}/{total} {noun if total == 1 else nouns}".rstrip()
        console.print(f"{escape(phase)}: {what}, {_elapsed(now - state['start'])}", highlight=False)


def _elapsed(seconds: float) -> str:
    """``5s``, ``1m20s``, ``2h03m``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _config(**flags):
    return resolve_config(flags)


@app.command()
def grok(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
         home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt,
         suite_timeout: Optional[float] = SuiteTimeoutOpt, as_json: bool = JsonOpt) -> None:
    """Parse every module and map tests to functions (cached by content)."""
    from regrow.api import prepare
    with _guard(), _hooks(as_json) as hooks:
        prep = prepare(source, _config(home=home, python=python, suite_timeout=suite_timeout), hooks, validate=False)
    facts = prep.index.facts
    data = {"source": prep.source.name, "version": prep.source.version, "key": prep.source.key,
            "files": len(prep.index.files), "skipped_files": prep.index.skipped_files,
            "functions": sum(1 for s in prep.index.symbols.values() if not s.is_test),
            "tests": len(prep.index.tests), "covered_functions": len(prep.index.coverage),
            "static_seconds": facts.get("static_seconds"), "testmap_seconds": facts.get("testmap_seconds")}
    if as_json:
        out.print_json(json.dumps(data))
        return
    title = " ".join(str(p) for p in ("grok", data["source"], data["version"]) if p)
    table = Table(title=escape(title), show_header=False)
    for k, v in data.items():
        if k != "skipped_files":  # a source without a version shows "-", never "None"
            table.add_row(k, "-" if v is None else f"{v:.2f}" if isinstance(v, float) else escape(str(v)))
    table.add_row("skipped files", ", ".join(f"{p} ({r})" for p, r in data["skipped_files"].items()) or "none")
    out.print(table)


@app.command()
def hollow(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
           home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt,
           min_statements: Optional[int] = MinStatementsOpt, workers: Optional[int] = WorkersOpt,
           suite_timeout: Optional[float] = SuiteTimeoutOpt, as_json: bool = JsonOpt) -> None:
    """Erase bodies into tasks and validate them (reference passes, stub fails)."""
    from regrow.api import prepare
    from regrow.tasks.build import summarize
    with _guard(), _hooks(as_json) as hooks:
        prep = prepare(source, _config(home=home, python=python, min_statements=min_statements, workers=workers,
                                       suite_timeout=suite_timeout), hooks)
        prep.close()
    summary = summarize(prep.tasks, prep.excluded)
    if as_json:
        out.print_json(json.dumps({**summary, "valid_tasks": [t.task_id for t in prep.valid]}))
        return
    _render_tasks(summary)
    _render_rejected(summary.get("rejected", []))


REJECTED_ROWS = 40


def _render_rejected(rejected: list[dict]) -> None:
    """Each hollowed task that is not valid, with its cause and the test (``regrow hollow``)."""
    if not rejected:
        return
    table = Table(title="hollowed but not valid")
    for col in ("task", "status", "why"):
        table.add_column(col)
    for row in rejected[:REJECTED_ROWS]:
        table.add_row(escape(row["task_id"]), escape(row["status"]), escape(row["reason"]))
    out.print(table)
    if len(rejected) > REJECTED_ROWS:
        out.print(f"... and {len(rejected) - REJECTED_ROWS} more (--json lists them all)")


def _render_tasks(summary: dict) -> None:
    table = Table(title="tasks")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("functions (non-test)", str(summary["functions"]))
    table.add_row("hollowed", str(summary["hollowed"]))
    table.add_row("[bold]valid[/]", f"[bold]{summary['valid']}[/]")
    for reason, n in summary["by_reason"].items():
        table.add_row(f"  {escape(reason)}", str(n))
    st = summary.get("strength")
    if st and st.get("known"):
        table.add_row("strength measured", str(st["known"]))
        table.add_row("  median strength", _pct(st["median"]))
        table.add_row(f"  weak (below {_pct(st['threshold'])})", str(st["weak"]))
    out.print(table)


@app.command()
def run(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
        solver: Optional[str] = typer.Option(None, "--solver", "-s", help=_help(
            "oracle, null, history@REV, retrieval, openai:MODEL@URL, local:PATH or local:smollm2 "
            "(the embedded model).", "solver")),
        samples: Optional[int] = typer.Option(None, "--samples", "-k", help=_help("Chains per task.", "samples")),
        turns: Optional[int] = typer.Option(None, "--turns", help=_help("Attempts per chain (with feedback).",
                                                                          "turns")),
        tasks: Optional[int] = typer.Option(None, "--tasks", "-n", help=_help("At most this many tasks.", "tasks")),
        seed: Optional[int] = typer.Option(None, "--seed", help=_help("Seed for the choice of tasks and for "
                                                                        "sampling.", "seed")),
        workers: Optional[int] = WorkersOpt,
        timeout: Optional[float] = typer.Option(None, "--timeout", help=_help("Seconds per verification.",
                                                                                "timeout")),
        suite_timeout: Optional[float] = SuiteTimeoutOpt,
        min_statements: Optional[int] = MinStatementsOpt,
        temperature: Optional[float] = typer.Option(None, help="Sampling temperature. Default: the solver's."),
        max_tokens: Optional[int] = typer.Option(None, help="Completion token limit. Default: the solver's."),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Name the run. Default: derived from what "
                                                                    "it does."),
        stop_on_solve: bool = typer.Option(False, "--stop-on-solve", metavar="", show_default=False,
                                           help="Best-of-n: stop a task's other chains once one solves it."),
        task_tokens: Optional[int] = typer.Option(None, help="Completion-token budget per task. Default: none."),
        task_seconds: Optional[float] = typer.Option(None, help="Wall-time budget per task. Default: none."),
        model_concurrency: Optional[int] = typer.Option(None, help="Model calls in flight at once. "
                                                                   "Default: the solver's."),
        trust: Optional[str] = typer.Option(None, help=_help("Verification: strict, fast (warm engine only) "
                                                             "or subprocess.", "trust")),
        context: Optional[str] = typer.Option(None, help=_help("Prompt context: engine or simple.", "context")),
        fail_fast: bool = typer.Option(False, "--fail-fast", metavar="", show_default=False,
                                       help="Stop a candidate's tests at the first failure (binary reward, cheaper; "
                                            "tests-passed counts only the tests that ran)."),
        no_cache: bool = typer.Option(False, "--no-cache", metavar="", show_default=False,
                                      help="Do not reuse stored model responses."),
        min_strength: Optional[float] = typer.Option(None, "--min-strength",
                                                     help="Leave out tasks whose measured strength (`regrow "
                                                          "strength`) is below this. Default: keep all."),
        executor: Optional[str] = typer.Option(None, "--executor", help=_help(
            "Where chains run: threads, ray (RAY_ADDRESS or a cluster on this machine) or ray://ADDRESS "
            "(docs/scaling.md).", "executor")),
        home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt, as_json: bool = JsonOpt) -> None:
    """Grok, hollow, validate, then let a solver regrow each body; prints the report."""
    from regrow.api import open_store, run as run_
    from regrow.solve.solvers import check_spec
    config = None
    with _guard():
        config = _config(home=home, python=python, solver=solver, samples=samples, turns=turns, tasks=tasks,
                         seed=seed, workers=workers, timeout=timeout, suite_timeout=suite_timeout,
                         min_statements=min_statements, temperature=temperature, max_tokens=max_tokens,
                         run_id=run_id, cache=False if no_cache else None, stop_on_solve=stop_on_solve or None,
                         task_tokens=task_tokens, task_seconds=task_seconds, model_concurrency=model_concurrency,
                         trust=trust, context=context, fail_fast=fail_fast or None,
                         min_strength=min_strength, executor=executor)
        check_spec(config.solver)  # seconds, not the minutes before the solver is built
        with _hooks(as_json) as hooks:
            rid = run_(source, config, hooks)
        rep = reports.build_report(open_store(config), rid)
    _print_report(rep, as_json)


@app.command()
def report(run_id: Optional[str] = typer.Argument(None, help="Run id (default: the latest)."),
           home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt,
           html: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML page here.")
           ) -> None:
    """Show one run's figures."""
    from regrow.api import open_store
    with _guard():
        store = open_store(_config(home=home))
        if run_id is None:
            runs = reports.list_runs(store)
            if not runs:
                raise RegrowError(f"no runs in {store.path} yet; start one with `regrow run SOURCE`")
            run_id = runs[-1]["run_id"]
        rep = reports.build_report(store, run_id)
        if html is not None:
            from regrow.report.html import run_page
            _write_html(html, run_page(store, run_id))
    _print_report(rep, as_json)


@app.command()
def runs(home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt) -> None:
    """List the runs in the store."""
    from regrow.api import open_store
    with _guard():
        rows = reports.list_runs(open_store(_config(home=home)))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="runs")
    for col in ("run_id", "solver", "source", "attempts", "finished"):
        table.add_column(col)
    for r in rows:
        table.add_row(escape(r["run_id"]), escape(r["solver"]), escape(r["spec"]), str(r["attempts"]),
                      "yes" if r["finished"] else "no")
    out.print(table)


@app.command()
def compare(run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
            home: Optional[Path] = HomeOpt, as_json: bool = JsonOpt,
            html: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML page here.")
            ) -> None:
    """Put runs side by side (model, error, similarity, pass@k)."""
    from regrow.api import open_store
    with _guard():
        store = open_store(_config(home=home))
        reps = reports.compare(store, run_ids)
        if html is not None:
            from regrow.report.html import compare_page
            _write_html(html, compare_page(store, run_ids))
    if as_json:
        out.print_json("[" + ",".join(r.to_json() for r in reps) + "]")
        return
    ks = sorted({k for r in reps for k in r.pass_at})
    table = Table(title="compare")
    for col in ["run", "solver", "tasks", *[f"pass@{k}" for k in ks], "tests passed", "func error", "func sim",
                "file error", "file sim", "verify ms (median)"]:
        table.add_column(col, justify="left" if col in ("run", "solver") else "right")
    for r in reps:
        table.add_row(escape(r.run_id), escape(r.solver), str(r.chosen), *[_pct(r.pass_at.get(k)) for k in ks], _pct(r.tests_passed),
                      _pct(r.func_error), _pct(r.func_similarity), _pct(r.file_error), _pct(r.file_similarity),
                      _num(r.verify_ms.get("median")))
    out.print(table)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _write_html(path: Path, text: str) -> None:
    """Write an HTML page and say where (on stderr, so --json output stays clean)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RegrowError(f"cannot write {path}: {exc.strerror or exc}") from None
    console.print(f"wrote {escape(str(path))} ({path.stat().st_size / 1024:.1f} KiB)", highlight=False)


def _num(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def _print_report(rep: reports.RunReport, as_json: bool) -> None:
    if as_json:
        out.print_json(rep.to_json())
        return
    _render_tasks(rep.tasks)
    table = Table(title=f"run {rep.run_id}", show_header=False)
    rows = [
        ("source", rep.source), ("solver", rep.solver),
        ("tasks in run", f"{rep.chosen} ({plural(rep.chains, 'chain')}, {plural(rep.attempts, 'attempt')}, "
                         f"{plural(rep.samples, 'sample')} x {plural(rep.turns, 'turn')})"),
        ("solved tasks", str(rep.solved_tasks)),
        *[(f"pass@{k}", _pct(v)) for k, v in sorted(rep.pass_at.items())],
        ("pass@1, first turn only", _pct(rep.pass_at_first_turn)),
        ("covering tests passed (mean)", _pct(rep.tests_passed)),
        ("function error / similarity", f"{_pct(rep.func_error)} / {_pct(rep.func_similarity)}"),
        ("file error / similarity", f"{_pct(rep.file_error)} / {_pct(rep.file_similarity)} over {plural(rep.files_scored, 'file')}"),
        ("verification ms (median / p90 / max)",
         " / ".join(_num(rep.verify_ms.get(k)) for k in ("median", "p90", "max"))),
        ("verdicts", ", ".join(f"{k} {v}" for k, v in sorted(rep.statuses.items()))),
        ("tokens in / out", f"{rep.tokens_in} / {rep.tokens_out}"),
        ("finished", "yes" if rep.finished else "no (run the same command to resume)"),
    ]
    for k, v in rows:
        table.add_row(k, escape(v))
    out.print(table)


@app.command()
def context(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
            symbol: str = typer.Argument(..., help="pkg.module:function, pkg.module:Class.method, or an unambiguous tail."),
            budget: int = typer.Option(4000, "--budget", "-b", help="Token budget of the pack (never exceeded)."),
            fmt: str = typer.Option("md", "--format", "-f", help="md or json."),
            mode: str = typer.Option("task", "--mode", help="task (never shows the body) or oracle (ablations)."),
            tokenizer: str = typer.Option("smollm2", "--tokenizer", help="smollm2, utf8 or gguf:PATH."),
            home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt) -> None:
    """Rank and pack the context of one function under a token budget, each item with its reason."""
    from regrow.api import load_engine
    from regrow.context.engine import build_context, resolve_symbol
    with _guard(), _hooks(quiet=True) as hooks:
        engine = load_engine(source, _config(home=home, python=python), hooks)
        pack = build_context(engine, resolve_symbol(engine, symbol), budget=budget, tokenizer=tokenizer, mode=mode)
        text = pack.render(fmt)
    out.print(text, markup=False, highlight=False, soft_wrap=True)
    console.print(f"[dim]{plural(len(pack.items), 'item')}, {pack.tokens}/{budget} tokens ({pack.tokenizer}), {mode} mode[/]")


@app.command()
def mcp(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
        tokenizer: str = typer.Option("smollm2", "--tokenizer", help="smollm2, utf8 or gguf:PATH."),
        home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt) -> None:
    """Serve context, callers, callees, tests, runtime facts and search over MCP (stdio)."""
    from regrow.api import load_engine
    from regrow.mcp_server import serve
    with _guard(), _hooks(quiet=True) as hooks:
        engine = load_engine(source, _config(home=home, python=python), hooks)
    with _guard():
        serve(engine, tokenizer=tokenizer)


STRENGTH_ROWS = 60


@app.command()
def strength(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
             threshold: float = typer.Option(0.8, "--threshold", help="Tasks below this strength are weak."),
             tasks: Optional[int] = typer.Option(None, "--tasks", "-n", help="At most this many tasks (chosen by "
                                                                             "seed). Default: all."),
             max_mutants: Optional[int] = typer.Option(None, "--max-mutants", help="Mutants per task. Default: all."),
             again: bool = typer.Option(False, "--again", metavar="", show_default=False,
                                        help="Measure again tasks whose strength is already stored."),
             workers: Optional[int] = WorkersOpt, min_statements: Optional[int] = MinStatementsOpt,
             timeout: Optional[float] = typer.Option(None, "--timeout", help=_help("Most seconds per mutant.",
                                                                                   "timeout")),
             home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt, as_json: bool = JsonOpt) -> None:
    """Mutation-test every valid task: can its covering tests tell right from wrong? Weakest first."""
    from regrow.api import measure_strength
    from regrow.tasks.strength import strength_of, summary
    with _guard(), _hooks(as_json) as hooks:
        measured = measure_strength(source, _config(home=home, python=python, workers=workers, timeout=timeout,
                                                    min_statements=min_statements), hooks,
                                    tasks=tasks, again=again, max_mutants=max_mutants)
    rows = sorted((t for t in measured if t.extra.get("strength")),
                  key=lambda t: (-1.0 if strength_of(t) is None else strength_of(t), t.task_id))
    summ = summary(measured, threshold)
    if as_json:
        out.print_json(json.dumps({"summary": summ,
                                   "tasks": [{"task_id": t.task_id, **t.extra["strength"]} for t in rows]}))
        return
    table = Table(title=f"task strength ({plural(summ['known'], 'task')}, weakest first)")
    for col in ("task", "strength", "killed", "survived", "timeout", "equiv", "first survivor"):
        table.add_column(col, justify="left" if col in ("task", "first survivor") else "right")
    for t in rows[:STRENGTH_ROWS]:
        rec, value = t.extra["strength"], strength_of(t)
        weak = value is not None and value < threshold
        first = next((ln[1:].strip() for d in rec["survivors"][:1] for ln in d.splitlines()
                      if ln.startswith("+") and not ln.startswith("+++")), "")
        table.add_row(("[bold red]" if weak else "") + escape(t.task_id) + ("[/]" if weak else ""),
                      _pct(value), str(rec["killed"]), str(rec["survived"]), str(rec["timeout"]),
                      str(rec["equivalent"]), escape(first[:60]))
    out.print(table)
    if len(rows) > STRENGTH_ROWS:
        out.print(f"... and {len(rows) - STRENGTH_ROWS} more (--json lists them all)")
    out.print(f"median strength {_pct(summ['median'])}; {summ['weak']} of {summ['known']} tasks below "
              f"{_pct(threshold)}", highlight=False)


@app.command()
def export(run_ids: Optional[list[str]] = typer.Argument(None, help="Run ids (sft, dpo, reward-conditioned, "
                                                                      "trajectories, grpo)."),
           fmt: str = typer.Option(..., "--format", "-f", help="sft | dpo | reward-conditioned | trajectories | "
                                                               "grpo | tasks | harbor."),
           output: Path = typer.Option(..., "-o", "--output", help="The file to write (.parquet or .jsonl); "
                                                                   "a directory for harbor."),
           tasks_source: Optional[str] = typer.Option(None, "--tasks", help="Export a SOURCE's task set "
                                                                            "(tasks, grpo, harbor) instead of runs."),
           split: Optional[str] = typer.Option(None, "--split", help="file | module: a train/test split of "
                                                                     "whole files or modules, as a split column."),
           check: bool = typer.Option(True, "--check/--no-check", help="Verify every exported task first: its "
                                                                       "reference must pass, its stub fail."),
           min_statements: Optional[int] = MinStatementsOpt,
           home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt) -> None:
    """Write a dataset from runs or from a source's tasks; see docs/training.md."""
    from regrow.api import export_dataset
    with _guard(), _hooks() as hooks:
        built = export_dataset(fmt, output, _config(home=home, python=python, min_statements=min_statements), hooks,
                               run_ids=list(run_ids or []), tasks_source=tasks_source, split=split, check=check)
    out.print(f"{escape(built.summary())} -> {escape(str(output))}", highlight=False)


@app.command()
def verify(source: str = typer.Argument(..., help="A directory, or pypi:NAME[==VERSION]."),
           task_id: str = typer.Argument(..., help="The task (`regrow hollow` lists them)."),
           answer: Optional[Path] = typer.Option(None, "--file", help="The answer: a whole edited module, a "
                                                                      "function, a body, or a model's reply "
                                                                      "(default: standard input)."),
           reward_file: Optional[Path] = typer.Option(None, "--reward-file", help="Also write the reward "
                                                                                  "(a number) to this file."),
           as_json: bool = JsonOpt, home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt) -> None:
    """Verify one answer for one task in the sandbox, as a run or a trainer's reward would."""
    from regrow.reward import Reward
    with _guard():
        if answer is None:
            text = sys.stdin.read()
        else:
            try:
                text = answer.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RegrowError(f"cannot read the answer {answer}: {exc}") from None
        with _hooks(quiet=as_json) as hooks:
            reward = Reward(source, _config(home=home, python=python), hooks)
        try:
            verdict = reward.score(task_id, text)
            value = reward.value(verdict)
        finally:
            reward.close()
        if reward_file is not None:
            reward_file.parent.mkdir(parents=True, exist_ok=True)
            reward_file.write_text(f"{value}\n", encoding="utf-8")
    if as_json:
        out.print_json(json.dumps({"format": "regrow-verdict/1", "task_id": task_id, "reward": value,
                                   "status": verdict.status, "solved": verdict.solved,
                                   "tests_passed": verdict.tests_passed, "tests_total": verdict.tests_total,
                                   "flags": list(verdict.flags), "func_similarity": verdict.func_similarity,
                                   "feedback": verdict.feedback}))
        return
    out.print(f"{escape(task_id)}: {verdict.status}, {verdict.tests_passed}/{verdict.tests_total} tests passed, "
              f"reward {value}" + (f", flags {', '.join(verdict.flags)}" if verdict.flags else ""), highlight=False)
    if verdict.feedback and not verdict.solved:
        out.print(escape(verdict.feedback), highlight=False)


@app.command("serve")
def serve_command(sources: list[str] = typer.Argument(..., help="Directories or pypi:NAME[==VERSION] specs."),
                  host: str = typer.Option("127.0.0.1", "--host", help="Listen on this address."),
                  port: int = typer.Option(8000, "--port", help="Listen on this port (0: a free one; the URL is "
                                                                "logged)."),
                  workers: Optional[int] = WorkersOpt,
                  api_keys: Optional[Path] = typer.Option(None, "--api-keys", help="A file of API keys, one a line "
                                                                                   "(REGROW_API_KEYS adds more). "
                                                                                   "Default: no key needed."),
                  max_batch: int = typer.Option(512, "--max-batch", help="Items in one POST /v1/score."),
                  max_inflight: int = typer.Option(256, "--max-inflight", help="Candidates in flight at once; "
                                                                               "past it: 429 with Retry-After."),
                  max_body: int = typer.Option(8 << 20, "--max-body", help="Bytes in one request body."),
                  deadline: float = typer.Option(300.0, "--deadline", help="A request's default deadline, seconds."),
                  max_turns: int = typer.Option(3, "--max-turns", help="Answers per episode (/reset, /step)."),
                  grace: float = typer.Option(30.0, "--grace", help="Seconds in-flight work may finish on shutdown."),
                  timeout: Optional[float] = typer.Option(None, "--timeout", help=_help("Most seconds per candidate.",
                                                                                        "timeout")),
                  executor: Optional[str] = typer.Option(None, "--executor", help=_help(
                      "Where candidates are verified: threads, ray or ray://ADDRESS (docs/scaling.md).", "executor")),
                  home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt) -> None:
    """Serve the reward over HTTP: POST /v1/score, the OpenEnv endpoints, /metrics (docs/service.md)."""
    from regrow.service.app import build_service, serve
    from regrow.service.limits import ServeConfig, load_api_keys
    with _guard():
        limits = ServeConfig(api_keys=load_api_keys(api_keys), max_batch=max_batch, max_inflight=max_inflight,
                             max_body_bytes=max_body, deadline_s=deadline, max_turns=max_turns, grace_s=grace)
        with _hooks() as hooks:
            service = build_service(sources, _config(home=home, python=python, workers=workers, timeout=timeout,
                                                     executor=executor), limits, hooks)
        serve(service, host, port, on_listening=lambda url: console.print(
            f"serving {plural(len(sources), 'source')} at {escape(url)} (Ctrl-C stops)", highlight=False))


def _train_steps(hooks):
    """Training steps into the hooks: the bar (``train: step/total``), and every tenth of the way a
    line with the loss, tokens/s and ETA."""
    printed = {"tenth": -1}

    def step(p) -> None:
        hooks.progress("train", p.step, p.total)
        tenth = 10 * p.step // max(p.total, 1)
        if tenth > printed["tenth"] or p.step == p.total:
            printed["tenth"] = tenth
            loss = f"loss {p.loss:.3f}, " if p.loss is not None else ""
            hooks.log(f"train: step {p.step}/{p.total}, {loss}{p.tokens_per_second:.0f} tokens/s, "
                      f"ETA {_elapsed(p.eta_seconds or 0)}")

    return step


@app.command()
def finetune(source: str = typer.Argument(..., help="A directory (a git checkout for --revision), or pypi:NAME."),
             base: str = typer.Option("smollm2", "--base", help="smollm2 (the embedded model), a .gguf file or a "
                                                                "Hugging Face model folder."),
             output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder for the merged model. "
                                                   "Default: HOME/finetuned/NAME-MODE-REV."),
             revision: Optional[str] = typer.Option(None, "--revision", help="Train on the files at this git "
                                                                             "revision. Default: the working tree."),
             epochs: float = typer.Option(1.0, "--epochs", help="Passes over the training text."),
             mode: str = typer.Option("codebase", "--mode", help="codebase (everything) or held-out (the valid "
                                                                 "tasks' bodies erased from the text)."),
             data: Optional[Path] = typer.Option(None, "--data", help="An sft export (.jsonl, .parquet) to train "
                                                                      "on too."),
             no_source: bool = typer.Option(False, "--no-source", metavar="", show_default=False,
                                            help="Train on --data only, not on the repository's files."),
             max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many steps."),
             learning_rate: float = typer.Option(2e-4, "--lr", help="Learning rate."),
             lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
             max_length: int = typer.Option(512, "--max-length", help="Tokens per training window."),
             save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every this many steps."),
             seed: int = typer.Option(0, "--seed", help="Seed."),
             threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch. Default: "
                                                                           "one per core."),
             min_statements: Optional[int] = MinStatementsOpt,
             home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt, as_json: bool = JsonOpt) -> None:
    """LoRA fine-tuning of a model on a repository's code; the merged folder runs as --solver local:FOLDER."""
    from regrow.specialize import finetune as ft
    with _guard():
        if mode not in ft.MODES:
            raise RegrowError(f"--mode {mode!r}: give codebase or held-out")
        options = ft.FinetuneOptions(mode=mode, epochs=epochs, max_steps=max_steps, learning_rate=learning_rate,
                                     lora_r=lora_r, lora_alpha=2 * lora_r, max_length=max_length,
                                     save_steps=save_steps, seed=seed, source_text=not no_source,
                                     sft=str(data) if data else None, threads=threads)
        config = _config(home=home, python=python, min_statements=min_statements)
        with _hooks(as_json) as hooks:
            manifest = ft.finetune(source, config, base, output, revision=revision, options=options, hooks=hooks,
                                   on_step=_train_steps(hooks))
    if as_json:
        out.print_json(json.dumps(manifest))
        return
    losses = manifest["loss_curve"]
    first, last = (losses[0]["loss"], losses[-1]["loss"]) if losses else (None, None)
    out.print(f"{manifest['mode']}: {manifest['data']['windows']} windows, {manifest['data']['tokens']} tokens, "
              f"{manifest['steps']} steps in {_elapsed(manifest['wall_seconds'])} "
              f"({manifest['tokens_per_second']} tokens/s, {manifest['device']}{' bf16' if manifest['bf16'] else ''}); "
              f"loss {first} -> {last}", highlight=False)
    out.print(f"run it: regrow run {escape(source)} --solver local:{escape(manifest['output'])}", highlight=False)


def _dec(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _bar(x: float | None, scale: float, width: int = 20) -> str:
    if not x or scale <= 0:
        return ""
    return "█" * max(1, round(min(x / scale, 1.0) * width))


@app.command()
def drift(source: str = typer.Argument(..., help="A git checkout."),
          months: Optional[int] = typer.Option(None, "--months", help="Churn of the last N months. Default: all."),
          ages: str = typer.Option("1,3,6,12,24", "--ages", help="Snapshot ages in months for the decay ladder."),
          churn_only: bool = typer.Option(False, "--churn-only", metavar="", show_default=False,
                                          help="Only the churn, no ladder (no tests run)."),
          model: Optional[str] = typer.Option(None, "--model", help="Also fine-tune this base at each snapshot "
                                                                    "(smollm2, .gguf, HF folder) and run it."),
          epochs: float = typer.Option(1.0, "--epochs", help="Epochs for --model."),
          tasks: Optional[int] = typer.Option(None, "--tasks", "-n", help=_help("At most this many tasks.", "tasks")),
          seed: Optional[int] = typer.Option(None, "--seed", help=_help("Seed for the choice of tasks.", "seed")),
          workers: Optional[int] = WorkersOpt,
          timeout: Optional[float] = typer.Option(None, "--timeout", help=_help("Seconds per verification.",
                                                                                  "timeout")),
          output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the regrow-drift/1 JSON here."),
          home: Optional[Path] = HomeOpt, python: Optional[Path] = PythonOpt, as_json: bool = JsonOpt) -> None:
    """Churn per month from git history, and how a frozen snapshot (history@REV) decays with age."""
    from regrow.specialize import drift as dr
    with _guard():
        try:
            ladder = tuple(int(a) for a in ages.split(",") if a.strip())
        except ValueError:
            raise RegrowError(f"--ages {ages!r}: give whole months, comma-separated (1,3,6,12)") from None
        rep = dr.churn(Path(source), months=months)
        decay = None
        if not churn_only:
            from regrow.specialize.finetune import FinetuneOptions
            config = _config(home=home, python=python, tasks=tasks, seed=seed, workers=workers, timeout=timeout)
            with _hooks(as_json) as hooks:
                decay = dr.decay(source, config, ages=ladder, model=model, hooks=hooks, on_step=_train_steps(hooks),
                                 finetune_options=FinetuneOptions(epochs=epochs))
    data = {"format": dr.FORMAT, "churn": rep.to_dict(), "decay": decay.to_dict() if decay else None}
    if output is not None:
        output.write_text(json.dumps(data, indent=2), encoding="utf-8")
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(title=f"churn of {escape(source)} (package code, {rep.size_now} lines now)")
    for col in ("month", "commits", "+", "-", "size", "churn", ""):
        table.add_column(col, justify="left" if col in ("month", "") else "right")
    top = max((m["churn"] for m in rep.months), default=0.0)
    for m in rep.months:
        table.add_row(m["month"], str(m["commits"]), str(m["added"]), str(m["deleted"]), str(m["size"]),
                      _pct(m["churn"]), _bar(m["churn"], top))
    out.print(table)
    out.print(f"mean {_pct(rep.mean)}/month, median month {_pct(rep.median)}, {_pct(rep.quiet_share)} of months "
              "without change (the experiment's claim: 2-3 %/month)", highlight=False)
    if rep.bursts:
        bursts = Table(title="largest commits")
        for col in ("date", "rev", "kind", "+", "-", "files", "of size", "subject"):
            bursts.add_column(col)
        for b in rep.bursts:
            bursts.add_row(b["date"], b["rev"], b["kind"], str(b["added"]), str(b["deleted"]), str(b["files"]),
                           _pct(b["share"]), escape(b["subject"]))
        out.print(bursts)
    if decay is not None:
        lad = Table(title=f"frozen snapshots of {escape(decay.source)}: {decay.tasks} of today's tasks")
        for col in ("months back", "solver", "snapshot", "age (days)", "missing", "pass@1", "func sim", "func err",
                    "file sim", "file err", ""):
            lad.add_column(col, justify="right")
        for r in decay.rungs:
            lad.add_row(str(r.months), r.solver, f"{r.revision or '-'} {r.snapshot_date or ''}",
                        _num(r.age_days), _num(r.missing), _pct(r.pass_at_1), _dec(r.func_similarity),
                        _dec(r.func_error), _dec(r.file_similarity), _dec(r.file_error),
                        _bar(r.func_similarity, 1.0) if r.revision else escape(r.note))
        out.print(lad)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
