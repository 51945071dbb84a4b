"""Dataset records built from stored runs and task sets, one plain dict per row.

* `sft` — ``regrow-sft/1``: one chat example per distinct solved body of a task (prompt
  messages, then the solution as the assistant's fenced answer).
* `dpo` — ``regrow-dpo/1``: preference pairs, a solved and a failed answer to the same prompt.
* `grpo` — ``regrow-grpo/1``: one row per valid task, the prompt (standard and conversational)
  with verl's columns (``data_source``, ``prompt``, ``ability``, ``reward_model``, ``extra_info``).
* `reward-conditioned` — ``regrow-rc/1``: every distinct answer with its measured score written
  into the prompt (``score: 0.80``), so a model trained on it can be asked for a quality.
* `trajectories` — ``regrow-trajectory/1``: one row per chain, every turn with its prompt, the
  context items and their breadcrumbs (why each was shown), the answer, the verdict, the reward.
* `tasks` — ``regrow-tasks/1``: a SWE-smith-like table of the task set (``patch`` erases the body).
* `harbor` — ``regrow-harbor/1``: Harbor task directories (`regrow.export.harbor`).

The prompt. An attempt stores its context section (``Attempt.context``, None when the solver
built its own) and the earlier turns it saw (``Attempt.history``), not the rendered prompt: a
model solver renders it with its own tokenizer and options, and the oracle, null and scripted
solvers render none. So `prompt_messages` rebuilds it deterministically with the function the
model solvers use, `regrow.solve.prompt.build_messages`, from the stored context (or
`default_context` of the source tree, as the solvers do when none was stored), the stored
history, the default system prompt and the vocabulary-free `ApproxTokenizer` budgets. A run
made with a real tokenizer, a custom system prompt or other file/context budgets saw a prompt
that can differ in the file window and the context packing; the task text is the same.

Guards (each counted in `Built.dropped`): a row whose prompt or problem statement carries the
reference body (`leaks_reference`, for bodies of at least two non-trivial lines) is dropped; a
solved attempt whose verdict raised an integrity flag is never used as a solution; a split
(`assign_splits`) puts whole files or modules on one side, never single tasks.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import textwrap
from dataclasses import dataclass, field

from regrow.core import pyast
from regrow.core.attempt import Attempt
from regrow.core.task import STUB, Task
from regrow.core.verdict import INFO_FLAGS
from regrow.errors import ConfigError, UnknownRunError
from regrow.executor import ThreadExecutor
from regrow.solve.prompt import (build_messages, default_context, default_context_items, file_view,
                                 render_completion_prompt)
from regrow.solve.types import Turn
from regrow.source.resolve import Source
from regrow.store import Store
from regrow.store.runs import attempt_rows, run_row
from regrow.store.sources import source_row
from regrow.tasks.build import load_tasks
from regrow.tasks.hollow import HollowConfig

SFT, DPO, GRPO, TASKS = "sft", "dpo", "grpo", "tasks"
RC, TRAJECTORIES, HARBOR = "reward-conditioned", "trajectories", "harbor"
FORMATS = {SFT: "regrow-sft/1", DPO: "regrow-dpo/1", GRPO: "regrow-grpo/1", TASKS: "regrow-tasks/1",
           RC: "regrow-rc/1", TRAJECTORIES: "regrow-trajectory/1", HARBOR: "regrow-harbor/1"}
RUN_FORMATS = (SFT, DPO, RC, TRAJECTORIES, GRPO)  # what `regrow export RUN...` writes
SOURCE_FORMATS = (TASKS, GRPO, HARBOR)  # what `regrow export --tasks SOURCE` writes
SPLITS = ("file", "module")
TEST_FRACTION = 0.2


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class TaskSet:
    """The valid tasks of one source, with what names the source in every record."""

    name: str
    version: str | None
    key: str  # the source's content key
    root: str  # where the source tree lies (read for context signatures only)
    tasks: tuple[Task, ...]
    spec: str = ""  # the spec the source was given as (what a reward needs to prepare it again)

    @classmethod
    def of(cls, source: Source, tasks) -> "TaskSet":
        return cls(source.name, source.version, source.key, str(source.root),
                   tuple(t for t in tasks if t.is_valid), source.spec)

    def only(self, task_ids) -> "TaskSet":
        """The same set, with only the tasks in ``task_ids``."""
        keep = set(task_ids)
        return TaskSet(self.name, self.version, self.key, self.root,
                       tuple(t for t in self.tasks if t.task_id in keep), self.spec)


@dataclass(frozen=True)
class StoredAttempt:
    run_id: str
    solver: str
    task_id: str
    sample: int
    turn: int
    solved: bool
    attempt: Attempt
    verdict: dict


@dataclass(frozen=True)
class RunSet:
    """Stored runs of one source and their attempts."""

    tasks: TaskSet
    attempts: tuple[StoredAttempt, ...]


def load_runs(store: Store, run_ids: list[str]) -> list[RunSet]:
    """The task sets and attempts of ``run_ids``, grouped by source (runs of one source share rows)."""
    if not run_ids:
        raise ConfigError("name at least one run (`regrow runs` lists them)")
    by_source: dict[tuple[str, str], dict] = {}
    for run_id in dict.fromkeys(run_ids):
        run = run_row(store, run_id)
        if run is None:
            raise UnknownRunError(f"no run {run_id!r} in {store.path}")
        config = json.loads(run["config"])
        hollow_key = HollowConfig(min_statements=int(config.get("min_statements", 2))).key()
        group = by_source.setdefault((run["source_key"], hollow_key), {"attempts": [], "spec": run["spec"]})
        for r in attempt_rows(store, run_id):
            group["attempts"].append(StoredAttempt(run_id, run["solver"], r["task_id"], r["sample"], r["turn"],
                                                   bool(r["solved"]), Attempt.from_json(r["attempt"]),
                                                   json.loads(r["verdict"])))
    out = []
    for (source_key, hollow_key), group in by_source.items():
        src = source_row(store, source_key) or {}
        tasks, _ = load_tasks(store, source_key, hollow_key)
        task_set = TaskSet(src.get("name") or source_key, src.get("version"), source_key, src.get("root") or "",
                           tuple(t for t in tasks if t.is_valid), group["spec"])
        out.append(RunSet(task_set, tuple(group["attempts"])))
    return out


# ------------------------------------------------------------------------------ outputs


@dataclass
class Built:
    """Records of one format and what the guards and de-duplication left out."""

    format: str
    records: list[dict] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # guard -> rows dropped
    duplicates: int = 0  # solutions left out because the same body (as parsed) was already kept
    checks: "Checks | None" = None  # the oracle and null checks of the exported tasks, when run

    def drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1

    def summary(self) -> str:
        guards = sum(self.dropped.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
        checks = f"; {self.checks.summary()}" if self.checks is not None else "; oracle/null checks not run"
        return (f"{self.format}: {len(self.records)} records; guards dropped {guards}"
                + (f" ({detail})" if detail else "") + f"; duplicates {self.duplicates}" + checks)


@dataclass
class Checks:
    """Each exported task verified twice now: its reference must score 1, its stub 0."""

    checked: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # task id -> what went wrong

    def summary(self) -> str:
        if not self.failed:
            return f"oracle 1 and null 0 on {self.checked}/{self.checked} tasks"
        oracle = sum(1 for why in self.failed.values() if why.startswith("oracle"))
        null = len(self.failed) - oracle
        return (f"oracle/null checks failed on {len(self.failed)} of {self.checked} tasks "
                f"(oracle not 1: {oracle}, null not 0: {null}; left out)")


# ------------------------------------------------------------------------------ guards


def _nontrivial_lines(text: str) -> list[str]:
    """Stripped lines that say something: not blank, not a comment, not a lone keyword or bracket."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.rstrip(":") in {"pass", "return", "else", "try", "finally", "break", "continue", "...", "None"}:
            continue
        if all(ch in "()[]{},:;" for ch in s):
            continue
        out.append(s)
    return out


def leaks_reference(task: Task, text: str) -> bool:
    """Whether ``text`` carries the reference body: its non-trivial lines, consecutive, in order.
    Bodies of fewer than two non-trivial lines are not checked (``return x`` is everywhere)."""
    body = _nontrivial_lines(task.reference_body)
    if len(body) < 2:
        return False
    return "\n".join(body) in "\n".join(_nontrivial_lines(text))


def assign_splits(tasks, by: str | None, test_fraction: float = TEST_FRACTION) -> dict[str, str]:
    """task_id -> "train" | "test". With ``by`` ("file" or "module") whole groups go to one side:
    the groups are ordered by a hash of their name and the first ``test_fraction`` of them (at
    least one when there are two or more) is the test side. Without ``by``, everything is train."""
    tasks = list(tasks)
    if by is None:
        return {t.task_id: "train" for t in tasks}
    if by not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {by!r}")
    group = {t.task_id: (t.path if by == "file" else t.symbol.module) for t in tasks}
    names = sorted(set(group.values()), key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    n_test = 0 if len(names) < 2 else max(1, round(test_fraction * len(names)))
    test = set(names[:n_test])
    return {tid: ("test" if g in test else "train") for tid, g in group.items()}


def _strength(task: Task) -> float | None:
    rec = task.extra.get("strength", {})
    value = rec.get("strength") if isinstance(rec, dict) else None
    return float(value) if value is not None else None


def _integrity_flags(verdict: dict) -> list[str]:
    return [f for f in verdict.get("flags") or () if f not in INFO_FLAGS]


# ------------------------------------------------------------------------------ prompts


def prompt_messages(task: Task, root: str, *, context: str | None = None, history: tuple = ()) -> list[dict]:
    """The chat prompt of a turn, rebuilt as the model solvers build it (see the module docstring)."""
    if context is None:
        context = default_context(task, root or None, shown=file_view(task).shown) if root else ""
    turns = tuple(Turn(str(c), str(f)) for c, f in history)
    return build_messages(task, context=context, history=turns)


def prompt_text(task: Task, root: str) -> str:
    """The standard (text) variant: what a base model continues, `render_completion_prompt`."""
    context = default_context(task, root, shown=file_view(task).shown) if root else ""
    return render_completion_prompt(task, context=context)


def _prompt_leaks(task: Task, messages: list[dict]) -> bool:
    return any(m["role"] != "assistant" and leaks_reference(task, m["content"]) for m in messages)


def normalised_body(body: str) -> str:
    """The body as parsed (`ast.dump`), so formatting and comments do not make two answers differ."""
    try:
        return ast.dump(pyast.parse(textwrap.dedent(body)))
    except (SyntaxError, ValueError):
        return body.strip()


def _answer(body: str) -> dict:
    return {"role": "assistant", "content": f"```python\n{body.strip(chr(10))}\n```"}


def _base(fmt: str, ts: TaskSet, task: Task, split: str) -> dict:
    return {"format": FORMATS[fmt], "source": ts.name, "source_version": ts.version or "",
            "source_key": ts.key, "task_id": task.task_id, "path": task.path, "split": split,
            "strength": _strength(task)}


# ------------------------------------------------------------------------------ builders


def _usable(runs: list[RunSet]):
    """(task set, task, attempt) for every attempt of a valid task; solved attempts whose verdict
    raised an integrity flag are counted as not solved."""
    for rs in runs:
        by_id = {t.task_id: t for t in rs.tasks.tasks}
        for a in rs.attempts:
            task = by_id.get(a.task_id)
            if task is not None:
                yield rs.tasks, task, a


def sft_records(runs: list[RunSet], split: str | None = None) -> Built:
    built = Built(SFT)
    splits = _splits(runs, split)
    seen: set[tuple[str, str, str]] = set()
    for ts, task, a in _usable(runs):
        if not a.solved or a.attempt.body is None:
            continue
        flags = _integrity_flags(a.verdict)
        if flags:
            built.drop("integrity flag")
            continue
        key = (ts.key, task.task_id, normalised_body(a.attempt.body))
        if key in seen:
            built.duplicates += 1
            continue
        prompt = prompt_messages(task, ts.root, context=a.attempt.context, history=a.attempt.history)
        if _prompt_leaks(task, prompt):
            built.drop("reference in prompt")
            continue
        seen.add(key)
        built.records.append({**_base(SFT, ts, task, splits[task.task_id]),
                              "run_id": a.run_id, "solver": a.solver, "turn": a.turn,
                              "messages": prompt + [_answer(a.attempt.body)],
                              "body": a.attempt.body, "flags": list(a.verdict.get("flags") or ())})
    return built


def dpo_records(runs: list[RunSet], split: str | None = None) -> Built:
    """Pairs per (task, prompt): each distinct failed answer against a distinct solved one (cycled)."""
    built = Built(DPO)
    splits = _splits(runs, split)
    groups: dict[tuple[str, str, str], dict] = {}
    for ts, task, a in _usable(runs):
        prompt = prompt_messages(task, ts.root, context=a.attempt.context, history=a.attempt.history)
        pkey = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()
        g = groups.setdefault((ts.key, task.task_id, pkey), {"ts": ts, "task": task, "prompt": prompt,
                                                             "chosen": {}, "rejected": {}})
        if a.solved and a.attempt.body is not None:
            if _integrity_flags(a.verdict):
                built.drop("integrity flag")
                continue
            g["chosen"].setdefault(normalised_body(a.attempt.body), a)
        elif not a.solved:
            text = a.attempt.body if a.attempt.body is not None else a.attempt.completion
            g["rejected"].setdefault(normalised_body(text), a)
    for g in groups.values():
        chosen, rejected = list(g["chosen"].values()), list(g["rejected"].values())
        if not chosen or not rejected:
            continue
        task, ts = g["task"], g["ts"]
        if _prompt_leaks(task, g["prompt"]):
            built.drop("reference in prompt")
            continue
        for i, bad in enumerate(rejected):
            good = chosen[i % len(chosen)]
            bad_text = bad.attempt.body if bad.attempt.body is not None else bad.attempt.completion
            built.records.append({**_base(DPO, ts, task, splits[task.task_id]),
                                  "prompt": g["prompt"], "chosen": [_answer(good.attempt.body)],
                                  "rejected": [_answer(bad_text)],
                                  "chosen_run": good.run_id, "rejected_run": bad.run_id,
                                  "rejected_status": str(bad.verdict.get("status") or ""),
                                  "flags": list(good.verdict.get("flags") or ())})
    return built


def grpo_records(task_sets: list[TaskSet], split: str | None = None) -> Built:
    built = Built(GRPO)
    for ts in task_sets:
        splits = assign_splits(ts.tasks, split)
        for index, task in enumerate(sorted(ts.tasks, key=lambda t: t.task_id)):
            messages = prompt_messages(task, ts.root)
            text = prompt_text(task, ts.root)
            if _prompt_leaks(task, messages) or leaks_reference(task, text):
                built.drop("reference in prompt")
                continue
            built.records.append({
                **_base(GRPO, ts, task, splits[task.task_id]),
                "prompt": messages, "prompt_text": text, "flags": list(task.extra.get("flags") or ()),
                "data_source": f"regrow/{ts.name}", "ability": "code",
                "reward_model": {"style": "rule", "ground_truth": task.task_id},
                "extra_info": {"task_id": task.task_id, "source": ts.spec, "source_key": ts.key,
                               "path": task.path, "split": splits[task.task_id], "index": index},
            })
    return built


def measured_score(verdict: dict) -> float:
    """The score a `reward-conditioned` row is labelled with: the share of covering tests the
    answer passed (1.0 when solved), 0.0 when an integrity check fired or nothing ran."""
    if _integrity_flags(verdict):
        return 0.0
    if verdict.get("status") == "solved":
        return 1.0
    total = int(verdict.get("tests_total") or 0)
    return int(verdict.get("tests_passed") or 0) / total if total else 0.0


def score_line(score: float) -> str:
    return f"score: {score:.2f}"


def _with_score(messages: list[dict], score: float) -> list[dict]:
    """The prompt with ``score: S`` as the first line of its first user message."""
    out, done = [], False
    for m in messages:
        if m["role"] == "user" and not done:
            m = {**m, "content": f"{score_line(score)}\n\n{m['content']}"}
            done = True
        out.append(m)
    return out


def rc_records(runs: list[RunSet], split: str | None = None) -> Built:
    """One row per distinct answer (by parsed body) to each prompt, labelled with its measured score."""
    built = Built(RC)
    splits = _splits(runs, split)
    seen: set[tuple[str, str, str, str]] = set()
    for ts, task, a in _usable(runs):
        text = a.attempt.body if a.attempt.body is not None else a.attempt.completion
        if not text.strip():
            continue
        prompt = prompt_messages(task, ts.root, context=a.attempt.context, history=a.attempt.history)
        pkey = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()
        key = (ts.key, task.task_id, pkey, normalised_body(text))
        if key in seen:
            built.duplicates += 1
            continue
        if _prompt_leaks(task, prompt):
            built.drop("reference in prompt")
            continue
        seen.add(key)
        score = measured_score(a.verdict)
        built.records.append({**_base(RC, ts, task, splits[task.task_id]),
                              "run_id": a.run_id, "solver": a.solver, "turn": a.turn, "score": score,
                              "solved": bool(a.solved and not _integrity_flags(a.verdict)),
                              "status": str(a.verdict.get("status") or ""),
                              "messages": _with_score(prompt, score) + [_answer(text)],
                              "flags": list(a.verdict.get("flags") or ())})
    return built


def _verdict_summary(verdict: dict) -> dict:
    return {"status": str(verdict.get("status") or ""), "tests_total": int(verdict.get("tests_total") or 0),
            "tests_passed": int(verdict.get("tests_passed") or 0), "flags": list(verdict.get("flags") or ()),
            "feedback": str(verdict.get("feedback") or ""),
            "func_similarity": verdict.get("func_similarity"), "file_similarity": verdict.get("file_similarity")}


def _turn_context_items(task: Task, root: str, attempt: Attempt) -> list[dict]:
    """The context items the turn's prompt carried: the engine's, as stored with the attempt; or
    the simple same-file context rebuilt as `prompt_messages` rebuilds it."""
    keys = ("subject", "channel", "path", "line", "tokens", "score", "breadcrumb", "form")
    if attempt.context is not None:
        items = attempt.context_items
    else:
        items = default_context_items(task, root or None, shown=file_view(task).shown) if root else []
    return [{**{k: i.get(k) for k in keys}, "covers": list(i.get("covers") or ())} for i in items]


def trajectory_records(runs: list[RunSet], split: str | None = None) -> Built:
    """One row per chain (run, task, sample): every turn in order."""
    built = Built(TRAJECTORIES)
    splits = _splits(runs, split)
    chains: dict[tuple[str, str, int], list] = {}
    for ts, task, a in _usable(runs):
        chains.setdefault((a.run_id, task.task_id, a.sample), []).append((ts, task, a))
    for (run_id, _task_id, sample), turns in chains.items():
        turns.sort(key=lambda t: t[2].turn)
        ts, task, first = turns[0]
        rows, leaked = [], False
        for _, _, a in turns:
            prompt = a.attempt.meta.get("prompt") if isinstance(a.attempt.meta.get("prompt"), list) else None
            prompt = prompt or prompt_messages(task, ts.root, context=a.attempt.context, history=a.attempt.history)
            prompt = [{"role": str(m.get("role")), "content": str(m.get("content"))} for m in prompt]
            if _prompt_leaks(task, prompt):
                leaked = True
                break
            flags = _integrity_flags(a.verdict)
            rows.append({"turn": a.turn, "messages": prompt,
                         "context_items": _turn_context_items(task, ts.root, a.attempt),
                         "completion": a.attempt.completion, "body": a.attempt.body,
                         "malformed": a.attempt.malformed, "verdict": _verdict_summary(a.verdict),
                         "reward": 1.0 if a.solved and not flags else 0.0})
        if leaked:
            built.drop("reference in prompt")
            continue
        built.records.append({**_base(TRAJECTORIES, ts, task, splits[task.task_id]),
                              "run_id": run_id, "solver": first.solver, "sample": sample,
                              "solved": any(r["reward"] > 0 for r in rows), "turns": rows})
    return built


def check_tasks(task_set: TaskSet, verifier, workers: int = 1) -> tuple[TaskSet, Checks]:
    """Verify every task of ``task_set`` with its reference (must be solved) and its stub (must
    not be); the set without the tasks that failed, and what failed."""
    checks = Checks(checked=len(task_set.tasks))

    def both(task: Task) -> str:
        oracle = verifier.verify(task, task.reference_body)  # what the oracle solver answers
        if not oracle.solved:
            return f"oracle {oracle.status} ({oracle.tests_passed}/{oracle.tests_total} tests)"
        null = verifier.verify(task, STUB)
        if null.solved or null.reward:
            return f"null {null.status}"
        return ""

    for task, why in ThreadExecutor(workers).map(both, list(task_set.tasks)):
        if why:
            checks.failed[task.task_id] = why
    ok = [t.task_id for t in task_set.tasks if t.task_id not in checks.failed]
    return task_set.only(ok), checks


def problem_statement(task: Task) -> str:
    """What a SWE-smith-style solver is told: where the function is, its signature and docstring."""
    sym = task.symbol
    doc = (sym.docstring or "").strip()
    parts = [f"The body of `{sym.local_name}` in `{task.path}` (module `{sym.module}`) was erased; "
             "write it again so that the repository's tests pass.",
             f"```python\n{sym.signature.strip()}\n```"]
    if doc:
        parts.append(doc)
    return "\n\n".join(parts)


def erase_patch(task: Task) -> str:
    """The unified diff that turns the original file into the hollowed one."""
    return "".join(difflib.unified_diff(task.original_file.splitlines(keepends=True),
                                        task.hollowed_file.splitlines(keepends=True),
                                        fromfile=f"a/{task.path}", tofile=f"b/{task.path}"))


def shown_tasks(ts: TaskSet, split: str | None, built: Built, text_of, what: str):
    """(task, its split, the text shown for it) for every task of ``ts`` in id order, leaving out
    (and counting in ``built``) those whose text carries the reference body."""
    splits = assign_splits(ts.tasks, split)
    for task in sorted(ts.tasks, key=lambda t: t.task_id):
        text = text_of(task)
        if leaks_reference(task, text):
            built.drop(f"reference in {what}")
            continue
        yield task, splits[task.task_id], text


def task_records(task_sets: list[TaskSet], split: str | None = None) -> Built:
    built = Built(TASKS)
    for ts in task_sets:
        for task, side, statement in shown_tasks(ts, split, built, problem_statement, "problem statement"):
            built.records.append({
                **_base(TASKS, ts, task, side),
                "instance_id": f"{ts.name}__{task.task_id}", "repo": ts.name, "base_commit": ts.key,
                "patch": erase_patch(task), "FAIL_TO_PASS": list(task.tests),
                "problem_statement": statement, "flags": list(task.extra.get("flags") or ()),
            })
    return built


def _splits(runs: list[RunSet], by: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for rs in runs:
        out.update(assign_splits(rs.tasks.tasks, by))
    return out


def build(fmt: str, runs: list[RunSet], split: str | None = None) -> Built:
    """Records of ``fmt`` (one of `RUN_FORMATS`) from stored runs."""
    if fmt == SFT:
        return sft_records(runs, split)
    if fmt == DPO:
        return dpo_records(runs, split)
    if fmt == RC:
        return rc_records(runs, split)
    if fmt == TRAJECTORIES:
        return trajectory_records(runs, split)
    if fmt == GRPO:
        unique = {rs.tasks.key: rs.tasks for rs in runs}
        return grpo_records(list(unique.values()), split)
    raise ConfigError(f"--format for runs must be one of {', '.join(RUN_FORMATS)}, not {fmt!r}")


def build_from_tasks(fmt: str, task_sets: list[TaskSet], split: str | None = None) -> Built:
    """Records of ``fmt`` (one of `SOURCE_FORMATS`) from task sets, no run needed."""
    if fmt == TASKS:
        return task_records(task_sets, split)
    if fmt == GRPO:
        return grpo_records(task_sets, split)
    raise ConfigError(f"--format for --tasks must be one of {', '.join(SOURCE_FORMATS)}, not {fmt!r}")
