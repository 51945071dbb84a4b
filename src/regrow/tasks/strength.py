"""Task strength: can a task's covering tests tell a right body from a wrong one?

The commonest way a code reward lies is a test suite too weak to notice a wrong answer. For
every valid task, small wrong versions of the reference body (mutants, made with libcst) are
verified as candidates, exactly as a solver's answer would be. A mutant is

- ``killed`` when the verdict is not solved (a test noticed),
- ``survived`` when every covering test passed (the tests cannot tell it from the reference),
- ``timeout`` when its tests ran out of time (an infinite loop, usually; counted apart),
- ``equivalent`` (suspected) when it parses to the same AST as the reference; not run.

``strength = killed / (killed + survived)``; stored in ``task.extra["strength"]`` (format
``regrow-strength/1``) with up to `SURVIVORS` surviving mutants as unified diffs (``survivors``,
their operators in ``survivor_ops``).

Mutants are verified with fail-fast, their tests ordered fastest first, and the test that
killed the latest mutant of a task moved to the front (it tends to kill the next one too).
A function that also ran at import time is verified on a fresh import by the warm engine
(see ``_import_called`` in the worker), so its import-time effects are mutated too.
"""

from __future__ import annotations

import ast
import copy
import difflib
import statistics
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import libcst as cst

from regrow.core import pyast
from regrow.executor import ThreadExecutor
from regrow.core.task import VALID, Task, task_to_json
from regrow.core.verdict import MALFORMED, MISSING, PASSED, SOLVED, TIMEOUT
from regrow.store import Store
from regrow.store.tasks import save_task_rows

FORMAT = "regrow-strength/1"
GENERATOR = 2  # bump when the mutation operators or the record change: stored strengths are measured again
SURVIVORS = 20  # surviving mutants kept (as diffs) per task
DEFAULT_THRESHOLD = 0.8  # below this a task is called weak

KILLED, SURVIVED, TIMED_OUT, EQUIVALENT, INVALID = "killed", "survived", "timeout", "equivalent", "invalid"


@dataclass(frozen=True, slots=True)
class Mutant:
    op: str  # the operator's name: "arith", "compare", "boundary", "bool", "constant", ...
    body: str  # the mutated body (same shape as ``Task.reference_body``)


# ------------------------------------------------------------------ mutation operators

_BINOP = {cst.Add: cst.Subtract, cst.Subtract: cst.Add, cst.Multiply: cst.Divide, cst.Divide: cst.Multiply,
          cst.FloorDivide: cst.Divide, cst.Modulo: cst.FloorDivide, cst.Power: cst.Multiply,
          cst.BitAnd: cst.BitOr, cst.BitOr: cst.BitAnd, cst.BitXor: cst.BitAnd,
          cst.LeftShift: cst.RightShift, cst.RightShift: cst.LeftShift}
_AUGOP = {cst.AddAssign: cst.SubtractAssign, cst.SubtractAssign: cst.AddAssign,
          cst.MultiplyAssign: cst.DivideAssign, cst.DivideAssign: cst.MultiplyAssign,
          cst.FloorDivideAssign: cst.DivideAssign, cst.ModuloAssign: cst.FloorDivideAssign,
          cst.PowerAssign: cst.MultiplyAssign, cst.BitAndAssign: cst.BitOrAssign,
          cst.BitOrAssign: cst.BitAndAssign, cst.BitXorAssign: cst.BitAndAssign,
          cst.LeftShiftAssign: cst.RightShiftAssign, cst.RightShiftAssign: cst.LeftShiftAssign}
_BOUNDARY = {cst.LessThan: cst.LessThanEqual, cst.LessThanEqual: cst.LessThan,
             cst.GreaterThan: cst.GreaterThanEqual, cst.GreaterThanEqual: cst.GreaterThan}
_COMPARE = {cst.Equal: cst.NotEqual, cst.NotEqual: cst.Equal, cst.Is: cst.IsNot, cst.IsNot: cst.Is,
            cst.In: cst.NotIn, cst.NotIn: cst.In, cst.LessThan: cst.GreaterThanEqual,
            cst.GreaterThan: cst.LessThanEqual}
_CALLS = {"min": "max", "max": "min", "any": "all", "all": "any"}


def _swap_op(op, new_type):
    """``new_type`` with ``op``'s surrounding whitespace (two-word operators get a single space)."""
    kw = {"whitespace_before": op.whitespace_before, "whitespace_after": op.whitespace_after}
    if new_type in (cst.IsNot, cst.NotIn):
        kw["whitespace_between"] = cst.SimpleWhitespace(" ")
    return new_type(**kw)


def _negated(test: cst.BaseExpression) -> cst.BaseExpression:
    return cst.UnaryOperation(operator=cst.Not(), expression=test.with_changes(
        lpar=[cst.LeftParen(), *test.lpar], rpar=[*test.rpar, cst.RightParen()]))


def _is_none(node) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def _is_string(node) -> bool:
    return isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))


class _Mutator(cst.CSTTransformer):
    """Numbers every possible mutation in traversal order; applies the one numbered ``target``
    (-1: none, only count). The count never depends on which one was applied."""

    def __init__(self, target: int = -1):
        super().__init__()
        self.target, self.count, self.applied = target, 0, ""

    def _offer(self, updated, alternatives):
        for op, make in alternatives:
            if self.count == self.target:
                self.applied = op
                self.count += 1
                return make()
            self.count += 1
        return updated

    # docstrings (a string alone as a statement) are never mutated: nothing can observe them
    def visit_Expr(self, node: cst.Expr) -> bool:
        return not _is_string(node.value)

    def leave_BinaryOperation(self, original, updated):
        new = _BINOP.get(type(updated.operator))
        return self._offer(updated, [("arith", lambda: updated.with_changes(operator=_swap_op(updated.operator, new)))]
                           if new else [])

    def leave_AugAssign(self, original, updated):
        new = _AUGOP.get(type(updated.operator))
        return self._offer(updated, [("arith", lambda: updated.with_changes(operator=_swap_op(updated.operator, new)))]
                           if new else [])

    def leave_ComparisonTarget(self, original, updated):
        alts = []
        for name, table in (("boundary", _BOUNDARY), ("compare", _COMPARE)):
            new = table.get(type(updated.operator))
            if new:
                alts.append((name, lambda new=new: updated.with_changes(operator=_swap_op(updated.operator, new))))
        return self._offer(updated, alts)

    def leave_BooleanOperation(self, original, updated):
        new = cst.Or if isinstance(updated.operator, cst.And) else cst.And
        return self._offer(updated, [("bool", lambda: updated.with_changes(operator=_swap_op(updated.operator, new)))])

    def leave_UnaryOperation(self, original, updated):
        if isinstance(updated.operator, (cst.Not, cst.Minus, cst.BitInvert)):
            return self._offer(updated, [("unary", lambda: updated.expression.with_changes(
                lpar=[*updated.lpar, *updated.expression.lpar], rpar=[*updated.expression.rpar, *updated.rpar]))])
        return updated

    def leave_Integer(self, original, updated):
        try:
            value = pyast.literal_eval(updated.value)
        except (ValueError, SyntaxError):
            return updated
        alts = [("constant", lambda: updated.with_changes(value=str(value + 1)))]
        if value > 0:
            alts.append(("constant", lambda: updated.with_changes(value=str(value - 1))))
        return self._offer(updated, alts)

    def leave_Float(self, original, updated):
        try:
            value = float(pyast.literal_eval(updated.value))
        except (ValueError, SyntaxError, TypeError):
            return updated
        return self._offer(updated, [("constant", lambda: updated.with_changes(value=repr(value + 1.0)))])

    def leave_Name(self, original, updated):
        if updated.value in ("True", "False"):
            other = "False" if updated.value == "True" else "True"
            return self._offer(updated, [("constant", lambda: updated.with_changes(value=other))])
        return updated

    def leave_SimpleString(self, original, updated):
        prefix, quote = updated.prefix, updated.quote
        inner = updated.value[len(prefix) + len(quote): len(updated.value) - len(quote)]
        new = prefix + quote + ("" if inner else "XX") + quote
        return self._offer(updated, [("string", lambda: updated.with_changes(value=new))])

    def leave_FormattedString(self, original, updated):
        if not updated.parts:
            return updated
        return self._offer(updated, [("string", lambda: updated.with_changes(parts=[]))])

    def leave_Call(self, original, updated):
        if isinstance(updated.func, cst.Name) and updated.func.value in _CALLS:
            other = _CALLS[updated.func.value]
            func = updated.func.with_changes(value=other)
            return self._offer(updated, [("call", lambda: updated.with_changes(func=func))])
        return updated

    def leave_Return(self, original, updated):
        if updated.value is None or _is_none(updated.value):
            return updated
        return self._offer(updated, [("return", lambda: updated.with_changes(value=cst.Name("None")))])

    def leave_Assign(self, original, updated):
        if _is_none(updated.value):
            return updated
        return self._offer(updated, [("assign", lambda: updated.with_changes(value=cst.Name("None")))])

    def leave_Break(self, original, updated):
        return self._offer(updated, [("loop", lambda: cst.Continue(semicolon=updated.semicolon))])

    def leave_Continue(self, original, updated):
        return self._offer(updated, [("loop", lambda: cst.Break(semicolon=updated.semicolon))])

    def leave_If(self, original, updated):
        return self._offer(updated, [("negate", lambda: updated.with_changes(test=_negated(updated.test)))])

    def leave_While(self, original, updated):
        return self._offer(updated, [("negate", lambda: updated.with_changes(test=_negated(updated.test)))])

    def leave_IfExp(self, original, updated):
        return self._offer(updated, [("negate", lambda: updated.with_changes(test=_negated(updated.test)))])

    def leave_SimpleStatementLine(self, original, updated):
        kept = [s for s in updated.body if not isinstance(s, (cst.Pass, cst.Return))
                and not (isinstance(s, cst.Expr) and (_is_string(s.value) or isinstance(s.value, cst.Ellipsis)))]
        if not kept or len(kept) != len(updated.body):
            return updated
        return self._offer(updated, [("delete", lambda: updated.with_changes(body=[cst.Pass()]))])


def _dump(code: str) -> str | None:
    try:
        return ast.dump(pyast.parse(code))
    except (SyntaxError, ValueError):
        return None


def mutants(body: str, limit: int | None = None) -> tuple[list[Mutant], int]:
    """(the distinct mutants of ``body``, how many more parsed to the reference's own AST).

    Identical texts, and texts with the same AST as an earlier mutant, are kept once."""
    try:
        module = cst.parse_module(body)
    except cst.ParserSyntaxError:
        return [], 0
    counter = _Mutator()
    module.visit(counter)
    reference = _dump(body)
    seen_text, seen_ast, out, equivalent = {body}, set(), [], 0
    for i in range(counter.count):
        mutator = _Mutator(i)
        try:
            text = module.visit(mutator).code
        except Exception:  # a node libcst will not build here: skip that one mutation
            continue
        if text in seen_text:
            continue
        seen_text.add(text)
        dump = _dump(text)
        if dump is None:
            continue
        if dump == reference:
            equivalent += 1
            continue
        if dump in seen_ast:
            continue
        seen_ast.add(dump)
        out.append(Mutant(mutator.applied, text))
        if limit is not None and len(out) >= limit:
            break
    return out, equivalent


def diff(reference: str, body: str) -> str:
    return "".join(difflib.unified_diff(reference.splitlines(keepends=True), body.splitlines(keepends=True),
                                        "reference", "mutant", n=1))


# ------------------------------------------------------------------ measuring


def outcome_of(verdict) -> str:
    if verdict.status == SOLVED:
        return SURVIVED
    if verdict.status == TIMEOUT:
        return TIMED_OUT
    if verdict.status == MALFORMED:
        return INVALID
    return KILLED


class _Order:
    """A task's covering tests, fastest first; the latest killer moves to the front."""

    def __init__(self, tests: Iterable[str], durations: dict):
        self.tests = sorted(tests, key=lambda t: (durations.get(t, (None, 0.0))[1] or 0.0, t))
        self._lock = threading.Lock()

    def now(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self.tests)

    def killed_by(self, verdict) -> None:
        bad = next((o.test_id for o in verdict.outcomes if o.outcome not in (PASSED, MISSING)), None)
        if bad is None:
            return
        with self._lock:
            if bad in self.tests:
                self.tests.remove(bad)
                self.tests.insert(0, bad)


def _with_timeout(verifier, seconds: float):
    """``verifier`` (same warm engine) with another per-candidate timeout."""
    if not hasattr(verifier, "config") or seconds >= verifier.config.timeout:
        return verifier
    clone = copy.copy(verifier)
    clone.config = replace(verifier.config, timeout=seconds)
    return clone


def _record(task: Task, found: list[tuple[Mutant, str]], equivalent: int, invalid: int, seconds: float) -> dict:
    counts = {k: sum(1 for _, o in found if o == k) for k in (KILLED, SURVIVED, TIMED_OUT)}
    judged = counts[KILLED] + counts[SURVIVED]
    survivors = [m for m, o in found if o == SURVIVED][:SURVIVORS]
    return {"format": FORMAT, "generator": GENERATOR,
            "strength": round(counts[KILLED] / judged, 4) if judged else None,
            "killed": counts[KILLED], "survived": counts[SURVIVED], "timeout": counts[TIMED_OUT],
            "equivalent": equivalent, "invalid": invalid, "mutants": len(found) + invalid,
            "survivors": [diff(task.reference_body, m.body) for m in survivors],
            "survivor_ops": [m.op for m in survivors], "seconds": round(seconds, 3)}


def known(task: Task) -> dict | None:
    """The task's stored strength record, when one of this format and generator exists."""
    rec = task.extra.get("strength")
    if isinstance(rec, dict) and rec.get("format") == FORMAT and rec.get("generator") == GENERATOR:
        return rec
    return None


def measure_tasks(tasks: list[Task], verifier, *, store: Store | None = None, source_key: str = "",
                  hollow_key: str = "", durations: dict | None = None, workers: int = 2,
                  max_mutants: int | None = None, again: bool = False,
                  progress: Callable[[int, int], None] | None = None,
                  log: Callable[[str], None] | None = None) -> list[Task]:
    """Measure every valid task's strength (unless known and not ``again``), saving each task
    with its record as soon as its last mutant is judged. Returns the tasks with their records.

    ``verifier`` should stop at the first failing test (``VerifyConfig(fail_fast=True, trust="fast")``);
    ``durations`` is the test map's ``{test id: (outcome, seconds)}`` (fastest tests run first)."""
    log = log or (lambda _m: None)
    durations = durations or {}
    result = {t.task_id: t for t in tasks}
    todo = [t for t in tasks if t.status == VALID and (again or known(t) is None)]
    plans = {}
    for t in todo:
        ms, eq = mutants(t.reference_body, max_mutants)
        plans[t.task_id] = {"task": t, "mutants": ms, "equivalent": eq, "found": [None] * len(ms), "invalid": 0,
                            "left": len(ms), "order": _Order(t.tests, durations), "start": None,
                            "verifier": verifier}
    total = sum(len(p["mutants"]) for p in plans.values())
    log(f"strength: {total} mutants of {len(plans)} tasks ({len(tasks) - len(todo)} known or not valid)")
    done = 0

    def finish(plan) -> None:
        found = [(m, o) for m, o in zip(plan["mutants"], plan["found"]) if o not in (None, INVALID)]
        rec = _record(plan["task"], found, plan["equivalent"], plan["invalid"],
                      time.monotonic() - (plan["start"] or time.monotonic()))
        if plan.get("error"):
            rec["error"] = plan["error"]
        task = replace(plan["task"], extra={**plan["task"].extra, "strength": rec})
        result[task.task_id] = task
        if store is not None:
            save_task_rows(store, source_key, hollow_key,
                           [(task.task_id, task.status, task.reason, task_to_json(task))])

    def reference(plan) -> None:
        """The reference must pass as the mutants will run (fail-fast, reordered): else no mutant
        can be judged. Its time sets the task's timeout (an infinite loop costs ~10x, not 60 s)."""
        task = plan["task"]
        plan["start"] = time.monotonic()
        verdict = verifier.verify(replace(task, tests=plan["order"].now()), task.reference_body)
        plan["reference"] = verdict.status
        plan["verifier"] = _with_timeout(verifier, max(3.0, 10 * verdict.duration + 2.0))

    def one(plan, i: int) -> str:
        task = plan["task"]
        verdict = plan["verifier"].verify(replace(task, tests=plan["order"].now()), plan["mutants"][i].body)
        outcome = outcome_of(verdict)
        if outcome == KILLED:
            plan["order"].killed_by(verdict)
        return outcome

    executor = ThreadExecutor(workers)
    for _ in executor.map(reference, [p for p in plans.values() if p["mutants"]]):
        pass
    for plan in plans.values():
        if plan.get("reference", SOLVED) != SOLVED:
            log(f"strength: {plan['task'].task_id}: the reference itself is {plan['reference']}; not measured")
            total -= len(plan["mutants"])
            plan["mutants"], plan["found"], plan["left"] = [], [], 0
            plan["error"] = f"reference {plan['reference']}"
        if not plan["mutants"]:
            finish(plan)
    work = [(p, i) for p in plans.values() for i in range(len(p["mutants"]))]
    for (plan, i), outcome in executor.map(lambda item: one(*item), work):
        plan["found"][i] = outcome
        if outcome == INVALID:
            plan["invalid"] += 1
        plan["left"] -= 1
        if plan["left"] == 0:
            finish(plan)
        done += 1
        if progress:
            progress(done, total)
    return [result[t.task_id] for t in tasks]


def summary(tasks: Iterable[Task], threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Over the valid tasks: how many have a known strength, its median, how many are weak."""
    values = [rec["strength"] for t in tasks if t.status == VALID and (rec := t.extra.get("strength"))
              and isinstance(rec, dict) and rec.get("strength") is not None]
    return {"known": len(values), "median": statistics.median(values) if values else None,
            "weak": sum(1 for v in values if v < threshold), "threshold": threshold}


def strength_of(task: Task) -> float | None:
    rec = task.extra.get("strength")
    return rec.get("strength") if isinstance(rec, dict) else None
