"""`regrow drift`: how fast a codebase moves, and how fast a frozen snapshot of it falls behind.

Churn (`churn`), read from ``git log --numstat -M`` (rename detection on):

* the package's code is every ``.py`` file that is not a test, a conftest, a docs or examples
  file, ``setup.py`` or a ``noxfile``/``fabfile`` (`is_package_code`);
* a month's churn is the lines added plus deleted in the package's code by that month's commits
  (UTC calendar months), over the package's size in lines at the start of the month (after the
  previous month's last commit). The root commit is the import of the code, not a change: it sets
  the first size and counts for nothing. Months with no commit count, as zero;
* the summary: mean and median monthly churn, the share of months with no change, and the
  largest commits ("bursts"), each with its share of the size before it and a kind:
  ``reformat`` when at least 80 % of its changed lines are in files whose syntax tree did not
  change (``ast.dump`` before and after: layout, quotes, comments), ``rename`` when most of the
  files it touched were renamed or moved, ``move`` when at least half of its changed lines left
  one file for another in the same commit (code moved between modules), else ``change``;
* per module (file): its changed lines over the history, the months it changed in, and its mean
  monthly churn (changed lines per month over its size at the end).

Decay (`decay`): today's valid tasks (HEAD) solved by ``history@REV`` for a ladder of snapshot
ages (months before HEAD's commit date; the snapshot is the newest commit at or before that
moment), each rung an ordinary stored run (`regrow.api.solve`), so pass@1 and the function and
file similarities are the report's own (docs/metrics.md). A rung also says how many of today's
tasks did not exist in the snapshot (same file, same qualified name). With ``model=BASE``, each
distinct snapshot is also fine-tuned from BASE (`regrow.specialize.finetune`, codebase mode, on
the snapshot's files) and the fine-tuned model solves the same tasks: the decay of
specialization.
"""

from __future__ import annotations

import ast
import calendar
import json
import statistics
import subprocess
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from regrow.core import pyast
from regrow.errors import ConfigError
from regrow.specialize.corpus import is_package_code

FORMAT = "regrow-drift/1"
DEFAULT_AGES = (1, 3, 6, 12, 24)
REFORMAT_SHARE = 0.8
BURSTS = 5
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
def _git(root: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          errors="replace")
    if done.returncode != 0 and check:
        raise ConfigError(f"git {args[0]} failed in {root}: {done.stderr.strip()[:200]}")
    return done.stdout if done.returncode == 0 else ""


def require_git(root: Path) -> Path:
    root = Path(root)
    if not _git(root, "rev-parse", "--git-dir", check=False):
        raise ConfigError(f"{root} is not a git repository: drift reads its history")
    if not _git(root, "rev-parse", "--verify", "-q", "HEAD", check=False):
        raise ConfigError(f"{root} has no commits")
    return root


# --- churn -----------------------------------------------------------------------------------


@dataclass
class Commit:
    rev: str
    time: int
    subject: str
    files: dict[str, tuple[int, int]]  # new path -> (added, deleted), package code only
    renamed: int = 0  # files of the package's code it renamed or moved
    touched: int = 0  # files of the package's code it touched

    @property
    def changed(self) -> int:
        return sum(a + d for a, d in self.files.values())


def _rename_target(path: str) -> tuple[str, bool]:
    """numstat's ``a/{old => new}/b`` or ``old => new``: (new path, renamed)."""
    if " => " not in path:
        return path, False
    if "{" in path and "}" in path:
        head, rest = path.split("{", 1)
        inner, tail = rest.split("}", 1)
        new = inner.split(" => ", 1)[1]
        return (head + new + tail).replace("//", "/"), True
    return path.split(" => ", 1)[1], True


def read_commits(root: Path) -> list[Commit]:
    """Every commit reachable from HEAD, oldest first, with numstat of the package's code."""
    log = _git(root, "log", "--reverse", "--numstat", "-M", "--no-merges", "--format=%x1e%H%x1f%ct%x1f%s", "HEAD")
    commits = []
    for block in log.split("\x1e")[1:]:
        head, _, body = block.partition("\n")
        rev, when, subject = (head.split("\x1f") + ["", "", ""])[:3]
        files: dict[str, tuple[int, int]] = {}
        renamed = 0
        for line in body.splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            added, deleted, path = parts
            path, was_renamed = _rename_target(path)
            if not is_package_code(path) or added == "-":
                continue
            files[path] = (int(added), int(deleted))
            renamed += was_renamed
        commits.append(Commit(rev, int(when or 0), subject, files, renamed, len(files)))
    return commits


def package_size(root: Path, rev: str) -> dict[str, int]:
    """Lines per package-code file at ``rev``."""
    out = _git(root, "diff", "--numstat", _EMPTY_TREE, rev)
    sizes = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] != "-" and is_package_code(parts[2]):
            sizes[parts[2]] = int(parts[0])
    return sizes


def _month(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m")


def _next_month(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y + (m == 12)}-{m % 12 + 1:02d}"


def _reformat_lines(root: Path, commit: Commit) -> int:
    """Changed lines of ``commit`` in files whose syntax tree it left as it was."""
    same = 0
    for path, (added, deleted) in commit.files.items():
        before = _git(root, "show", f"{commit.rev}^:{path}", check=False)
        after = _git(root, "show", f"{commit.rev}:{path}", check=False)
        if not before or not after:
            continue
        try:
            if ast.dump(pyast.parse(before)) == ast.dump(pyast.parse(after)):
                same += added + deleted
        except (SyntaxError, ValueError):
            continue
    return same


def _moved_lines(root: Path, commit: Commit) -> int:
    """Changed lines of ``commit`` that moved between files: each added line whose text (stripped)
    a deletion in another file of the same commit had, counted twice (its deletion and its addition)."""
    if len(commit.files) < 2:
        return 0
    diff = _git(root, "show", "--format=", "-U0", "--no-color", "-M", commit.rev, "--", *commit.files, check=False)
    added: dict[str, Counter] = defaultdict(Counter)
    deleted: dict[str, Counter] = defaultdict(Counter)
    current = ""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line[6:] if line.startswith("+++ b/") else current
        elif line.startswith("--- ") or line.startswith("@@"):
            continue
        elif line.startswith("+") and line[1:].strip():
            added[current][line[1:].strip()] += 1
        elif line.startswith("-") and line[1:].strip():
            deleted[current][line[1:].strip()] += 1
    moved = 0
    for path, lines in added.items():
        elsewhere = Counter()
        for other, gone in deleted.items():
            if other != path:
                elsewhere.update(gone)
        moved += sum((lines & elsewhere).values())
    return 2 * moved


def burst_kind(root: Path, commit: Commit) -> str:
    """``reformat``, ``rename``, ``move`` (at least half of its changed lines moved between files)
    or ``change``."""
    if commit.changed and _reformat_lines(root, commit) >= REFORMAT_SHARE * commit.changed:
        return "reformat"
    if commit.touched and commit.renamed * 2 > commit.touched:
        return "rename"
    if commit.changed and _moved_lines(root, commit) * 2 >= commit.changed:
        return "move"
    return "change"


@dataclass
class Month:
    month: str
    added: int
    deleted: int
    size: int  # package lines at the start of the month
    commits: int

    @property
    def churn(self) -> float:
        return (self.added + self.deleted) / self.size if self.size else 0.0


@dataclass
class ChurnReport:
    root: str
    head: str
    months: list[dict]
    mean: float | None
    median: float | None
    quiet_share: float | None  # months with no change / months
    bursts: list[dict]
    modules: list[dict]
    size_now: int
    format: str = FORMAT

    def to_dict(self) -> dict:
        return asdict(self)


def churn(root: Path, *, months: int | None = None, bursts: int = BURSTS) -> ChurnReport:
    """Monthly churn of the package's code over the history (the last ``months`` months of it)."""
    root = require_git(Path(root))
    commits = read_commits(root)
    if not commits:
        raise ConfigError(f"{root} has no commits")
    first, rest = commits[0], commits[1:]
    size_after: dict[str, int] = {}  # rev -> package lines after it
    last_of_month: dict[str, Commit] = {}
    for c in commits:
        last_of_month[_month(c.time)] = c
    head_month = _month(commits[-1].time)
    month = _month(first.time)
    all_months = [month]
    while month != head_month:
        month = _next_month(month)
        all_months.append(month)
    by_month: dict[str, list[Commit]] = defaultdict(list)
    for c in rest:
        by_month[_month(c.time)].append(c)

    def total(rev: str) -> int:
        if rev not in size_after:
            size_after[rev] = sum(package_size(root, rev).values())
        return size_after[rev]

    rows, start_size, prev_last = [], total(first.rev), first
    for m in all_months:
        cs = by_month.get(m, [])
        rows.append(Month(m, sum(sum(a for a, _ in c.files.values()) for c in cs),
                          sum(sum(d for _, d in c.files.values()) for c in cs), start_size, len(cs)))
        if m in last_of_month:
            prev_last = last_of_month[m]
            start_size = total(prev_last.rev)
    if months is not None:
        rows = rows[-months:]
    kept = {r.month for r in rows}
    values = [r.churn for r in rows]
    sizes_before = {}
    prev = first
    for c in rest:
        sizes_before[c.rev] = total(prev.rev)
        prev = c
    window = [c for c in rest if _month(c.time) in kept and c.changed]
    top = sorted(window, key=lambda c: -c.changed)[:bursts]
    burst_rows = [{"rev": c.rev[:12], "date": datetime.fromtimestamp(c.time, timezone.utc).strftime("%Y-%m-%d"),
                   "subject": c.subject[:100], "added": sum(a for a, _ in c.files.values()),
                   "deleted": sum(d for _, d in c.files.values()), "files": c.touched,
                   "share": round(c.changed / sizes_before[c.rev], 4) if sizes_before[c.rev] else None,
                   "kind": burst_kind(root, c)} for c in top]
    sizes_now = package_size(root, commits[-1].rev)
    per_module: dict[str, dict] = {}
    for c in window:
        for path, (a, d) in c.files.items():
            entry = per_module.setdefault(path, {"module": path, "changed": 0, "months": set()})
            entry["changed"] += a + d
            entry["months"].add(_month(c.time))
    modules = []
    for path, entry in per_module.items():
        size = sizes_now.get(path, 0)
        modules.append({"module": path, "changed": entry["changed"], "months_changed": len(entry["months"]),
                        "size": size,
                        "mean_churn": round(entry["changed"] / len(rows) / size, 4) if size and rows else None})
    modules.sort(key=lambda m: (-(m["mean_churn"] or 0), m["module"]))
    return ChurnReport(
        root=str(root), head=commits[-1].rev[:12],
        months=[{**asdict(r), "churn": round(r.churn, 4)} for r in rows],
        mean=round(statistics.fmean(values), 4) if values else None,
        median=round(statistics.median(values), 4) if values else None,
        quiet_share=round(sum(1 for r in rows if r.added + r.deleted == 0) / len(rows), 4) if rows else None,
        bursts=burst_rows, modules=modules, size_now=sum(sizes_now.values()))


# --- the frozen-snapshot ladder ----------------------------------------------------------------


def months_before(ts: int, months: int) -> int:
    """``ts`` moved back ``months`` calendar months (the day clamped to the month's length)."""
    d = datetime.fromtimestamp(ts, timezone.utc)
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    day = min(d.day, calendar.monthrange(y, m + 1)[1])
    return int(d.replace(year=y, month=m + 1, day=day).timestamp())


def snapshot(root: Path, months: int) -> tuple[str, int] | None:
    """(commit, commit time) of the newest commit at or before HEAD's date minus ``months``."""
    head_time = int(_git(root, "log", "-1", "--format=%ct", "HEAD").strip())
    cutoff = months_before(head_time, months)
    out = _git(root, "log", "-1", "--format=%H %ct", f"--before={cutoff}", "HEAD").strip()
    if not out:
        return None
    rev, when = out.split()
    return rev, int(when)


@dataclass
class Rung:
    months: int
    solver: str
    revision: str | None
    snapshot_date: str | None
    age_days: float | None
    tasks: int
    missing: int | None  # today's tasks that did not exist in the snapshot
    pass_at_1: float | None
    func_similarity: float | None
    func_error: float | None
    file_similarity: float | None
    file_error: float | None
    run_id: str | None
    note: str = ""


@dataclass
class DecayReport:
    source: str
    head: str
    tasks: int
    rungs: list[Rung] = field(default_factory=list)
    format: str = FORMAT

    def to_dict(self) -> dict:
        return {"format": self.format, "source": self.source, "head": self.head, "tasks": self.tasks,
                "rungs": [asdict(r) for r in self.rungs]}


def solve_run(prep, spec: str, config, solver_spec: str, hooks, *, solver=None) -> str:
    """One stored run of ``solver_spec`` over the prepared tasks (as `regrow run` chooses them);
    resumes a run with the same id. Returns the run id."""
    from regrow.api import choose_tasks, run_key, solve, strong_enough
    from regrow.solve.solvers import make_solver
    from regrow.store.runs import create_run, finish_run, has_run

    config = config.model_copy(update={"solver": solver_spec})
    chosen = choose_tasks(strong_enough(prep.valid, config.min_strength, hooks), config.tasks, config.seed)
    if solver is None:
        options = None
        from regrow.solve.solvers import is_model
        if is_model(solver_spec):
            from regrow.solve.solvers.options import SolverOptions
            options = SolverOptions(**{k: v for k, v in {"temperature": config.temperature,
                                                         "max_tokens": config.max_tokens,
                                                         "seed": config.seed}.items() if v is not None})
        solver = make_solver(solver_spec, options, root=prep.source.root, index=prep.index)
    run_id = run_key(prep.source, config, solver.identity)
    if not has_run(prep.store, run_id):
        create_run(prep.store, run_id, source_key=prep.source.key, spec=spec, solver=solver_spec,
                   config_json=json.dumps({**config.model_dump(mode="json"), "task_ids": [t.task_id for t in chosen],
                                           "timings": prep.timings}))
    solve(prep, chosen, solver, run_id, config, hooks)
    finish_run(prep.store, run_id)
    return run_id


def _rung(months: int, solver: str, rev: str | None, when: int | None, head_time: int, tasks: int,
          missing: int | None, report, run_id: str | None, note: str = "") -> Rung:
    return Rung(months=months, solver=solver, revision=rev[:12] if rev else None,
                snapshot_date=datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d") if when else None,
                age_days=round((head_time - when) / 86400, 1) if when else None, tasks=tasks, missing=missing,
                pass_at_1=report.pass_at.get(1, report.pass_at.get("1")) if report else None,
                func_similarity=report.func_similarity if report else None,
                func_error=report.func_error if report else None,
                file_similarity=report.file_similarity if report else None,
                file_error=report.file_error if report else None, run_id=run_id, note=note)


def decay(spec: str, config, *, ages: tuple[int, ...] = DEFAULT_AGES, model: str | None = None,
          finetune_options=None, out_dir: Path | None = None, hooks=None,
          on_step: Callable | None = None) -> DecayReport:
    """The frozen-snapshot ladder (and, with ``model``, the fine-tuned ladder) for a git source."""
    from regrow.api import Hooks, choose_tasks, prepare, strong_enough
    from regrow.report.runs import build_report
    from regrow.solve.solvers.history import HistorySolver

    hooks = hooks or Hooks()
    prep = prepare(spec, config, hooks)
    try:
        root = require_git(prep.source.root)
        if not prep.valid:
            from regrow.errors import NoTestsError
            raise NoTestsError(f"{prep.source.name}: no valid tasks to measure decay on")
        chosen = choose_tasks(strong_enough(prep.valid, config.min_strength, hooks), config.tasks, config.seed)
        head_rev = _git(root, "rev-parse", "HEAD").strip()
        head_time = int(_git(root, "log", "-1", "--format=%ct", "HEAD").strip())
        report = DecayReport(source=prep.source.name, head=head_rev[:12], tasks=len(chosen))
        tuned: dict[str, str] = {}
        for months in sorted(set(ages)):
            snap = snapshot(root, months)
            if snap is None:
                report.rungs.append(_rung(months, "history", None, None, head_time, len(chosen), None, None, None,
                                          "the history is younger than this"))
                continue
            rev, when = snap
            solver = HistorySolver(rev, root=root)
            missing = sum(1 for t in chosen
                          if solver.old_body(t.symbol.path, t.symbol.module, t.symbol.qualname.split(":", 1)[1]) is None)
            hooks.log(f"{months} months back: {rev[:12]}, {missing} of {len(chosen)} tasks did not exist")
            run_id = solve_run(prep, spec, config, f"history@{rev}", hooks, solver=solver)
            report.rungs.append(_rung(months, "history", rev, when, head_time, len(chosen), missing,
                                      build_report(prep.store, run_id), run_id))
            if model is not None:
                from regrow.specialize.finetune import FinetuneOptions, finetune_checkout
                if rev not in tuned:
                    folder = Path(out_dir or config.home / "finetuned") / rev[:12]
                    opts = (finetune_options or FinetuneOptions()).model_copy(update={"mode": "codebase"})
                    finetune_checkout(model, root, folder, revision=rev, options=opts, hooks=hooks, on_step=on_step)
                    tuned[rev] = str(folder)
                run_id = solve_run(prep, spec, config, f"local:{tuned[rev]}", hooks)
                report.rungs.append(_rung(months, f"finetuned:{model}", rev, when, head_time, len(chosen), missing,
                                          build_report(prep.store, run_id), run_id))
        return report
    finally:
        prep.close()
