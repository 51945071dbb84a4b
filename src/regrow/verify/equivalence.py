"""The equivalence check outside pytest: replay recorded calls on the candidate, compare in the parent.

While grok ran the suite on the reference, `regrow.grok.recorder` kept the arguments of calls into
each function (pickled at entry, ≤ a few dozen per function). Here, for a candidate that passed
its covering tests:

1. the *expected* values come from replaying those calls on the reference twice, each time in a
   fresh sandboxed child; a call whose two replays disagree (randomness, clocks, identities) is
   dropped as unstable. Computed once per task and cached in the parent; never sent anywhere;
2. the candidate is replayed on the same calls in another fresh child; when a value differs, the
   reference is replayed once more, then: a call whose reference value moved since (a clock, a
   TTL: values taken minutes earlier) is left out, the others are compared;
3. the parent compares canonical serialisations (`_plugin/regrow_canon.py`) with exact types:
   return value (or raised exception type) and the arguments after the call (mutation). Floats
   match within a relative 1e-9; everything else must be identical.

A mismatch raises ``eq-mismatch`` plus what the candidate's value was, when deceptive:
``eq-always-true`` (an object equal to anything), ``nan``, ``mock``, ``proxy``, ``subclass``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from regrow.core.task import Task

DECEPTIVE = ("eq-always-true", "nan", "mock", "proxy", "subclass")


@dataclass(frozen=True, slots=True)
class EqResult:
    cases: int  # stable recorded calls compared
    matched: int
    flags: tuple[str, ...] = ()
    first_mismatch: str = ""


@dataclass(frozen=True, slots=True)
class Expected:
    cases: tuple[str, ...]  # pickled (args, kwargs), base64
    values: tuple[dict, ...]  # the reference's record per case


def same(a, b) -> bool:
    """Canonical forms equal, floats within a relative 1e-9 (NaN equals NaN).

    Equal JSON values are the same canonical form: the canonical format writes every number as
    a string under its type tag, so ``==``'s one leniency (1 == 1.0 == True) cannot merge two
    different values of it. That comparison runs in C and settles the common case at once.
    """
    if type(a) is type(b) and a == b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        if len(a) == 2 and len(b) == 2 and a[0] == b[0] == "float":
            try:
                x, y = float(a[1]), float(b[1])
            except (TypeError, ValueError):
                return a == b
            if math.isnan(x) or math.isnan(y):
                return math.isnan(x) and math.isnan(y)
            return x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


class ExpectedValues:
    """The reference's stable values per task, computed once and kept by a `Verifier`."""

    def __init__(self):
        self._values: dict[str, Expected | None] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(task: Task) -> str:
        return task.task_id + ":" + str(hash(task.original_file))

    def get(self, task: Task) -> tuple[bool, Expected | None]:
        """(known, values): whether ``task``'s values were computed already, and them."""
        with self._lock:
            key = self.key(task)
            return (True, self._values[key]) if key in self._values else (False, None)

    def put(self, task: Task, values: Expected | None) -> None:
        with self._lock:
            self._values[self.key(task)] = values


def _replay_reference(verifier, task: Task, cases: list[str]):
    return verifier.backend.replay(task.path, task.original_file, (task.symbol.name, task.symbol.start, task.symbol.end),
                                   tuple(task.symbol.local_name.split(".")[:-1]), task.task_id, list(cases),
                                   timeout=verifier.config.timeout, memory_mb=verifier.config.memory_mb)


def expected(verifier, task: Task) -> Expected | None:
    """The stable reference values for ``task``'s recorded calls (cached on the verifier)."""
    known, values = verifier.expected.get(task)
    if known:
        return values
    calls = verifier.calls.cases(task.task_id)[: verifier.config.max_cases]
    result = None
    if calls and verifier.replays:
        runs = [_replay_reference(verifier, task, calls) for _ in range(2)]
        keep_cases, keep_values = [], []
        for i, case in enumerate(calls):
            a, b = runs[0].cases.get(i), runs[1].cases.get(i)
            if not a or not b or "error" in a or "error" in b:
                continue
            if same(a.get("got"), b.get("got")) and same(a.get("after"), b.get("after")):
                keep_cases.append(case)
                keep_values.append(a)
        result = Expected(tuple(keep_cases), tuple(keep_values)) if keep_cases else None
    verifier.expected.put(task, result)
    return result


def cached(verifier, task: Task) -> tuple[bool, Expected | None]:
    """(known, expected): whether ``task``'s expected values were already computed, and them."""
    return verifier.expected.get(task)


def check(verifier, task: Task, text: str, symbol, classes, rep=None) -> EqResult:
    """Replay the stable recorded calls on the candidate ``text`` and compare with the reference.

    ``rep``: the candidate's `Replay` of exactly ``expected(verifier, task).cases`` when it was
    already run (alongside the tests, see `Engine.run`); otherwise it is run here.
    """
    exp = expected(verifier, task)
    if exp is None:
        return EqResult(0, 0)
    if rep is None:
        rep = verifier.backend.replay(task.path, text, symbol, classes, task.task_id, list(exp.cases),
                                      timeout=verifier.config.timeout, memory_mb=verifier.config.memory_mb)
    flags = set(rep.flags)
    values = list(exp.values)
    if any(not _agrees(want, rep.cases.get(i)) for i, want in enumerate(values)):
        # The reference itself may have moved since its values were taken (a clock, a TTL):
        # replay it once more now; a call whose value moved is not evidence against anyone.
        now = _replay_reference(verifier, task, list(exp.cases))
        values = [want if _agrees(want, now.cases.get(i)) else None for i, want in enumerate(values)]
    matched = 0
    first = ""
    for i, want in enumerate(values):
        if want is None:
            continue
        got = rep.cases.get(i)
        if _agrees(want, got):
            matched += 1
            continue
        flags.add("eq-mismatch")
        if got:
            flags.update(k for k in got.get("kinds", ()) if k in DECEPTIVE)
        if not first:
            first = f"call {i}: expected {str(want.get('got'))[:200]}, got {str(got.get('got') if got else None)[:200]}"
    return EqResult(sum(v is not None for v in values), matched, tuple(sorted(flags)), first)


def _agrees(want: dict, got: dict | None) -> bool:
    return bool(got) and "error" not in got and same(want.get("got"), got.get("got")) \
        and same(want.get("after"), got.get("after"))
