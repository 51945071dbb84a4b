"""Runtime facts: short summaries of the calls recorded into a function while the tests ran.

Reads the ``calls`` table (filled by grok's recording run). For each parameter and for the
return value: the types seen with their counts, the range of numbers, the range of lengths of
strings and containers, whether None was seen, a few examples; and the exceptions raised.
These answer "can this be negative?" questions that code alone leaves open.

Everything here describes the function's *boundary* (what went in, what came out), so it may be
shown for a hollowed target in task mode. The ``summary`` column holds short reprs for display;
values that are Python literals are parsed (``ast.literal_eval``) for ranges and lengths.
"""

from __future__ import annotations

from regrow.core import pyast
import json
import re
from collections import Counter
from dataclasses import dataclass, field

from regrow.store import Store
from regrow.store.calls import call_facts

EXAMPLES = 3
RECEIVERS = ("self", "cls")  # the method's own object says nothing about its inputs
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


@dataclass(slots=True)
class ValueSummary:
    types: Counter = field(default_factory=Counter)
    low: float | None = None
    high: float | None = None
    min_len: int | None = None
    max_len: int | None = None
    examples: list[str] = field(default_factory=list)
    seen: int = 0

    def add(self, type_name: str | None, text: str | None) -> None:
        self.seen += 1
        if type_name:
            self.types[type_name] += 1
        if text is None:
            return
        if len(self.examples) < EXAMPLES and text not in self.examples and len(text) <= 60 \
                and not _ADDRESS.search(text):  # "<X object at 0x7f...>" differs on every run
            self.examples.append(text)
        try:
            value = pyast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.low = value if self.low is None else min(self.low, value)
            self.high = value if self.high is None else max(self.high, value)
        elif isinstance(value, _SIZED):
            n = len(value)
            self.min_len = n if self.min_len is None else min(self.min_len, n)
            self.max_len = n if self.max_len is None else max(self.max_len, n)

    def describe(self) -> str:
        if not self.types:
            return "never serialisable" if not self.examples else "e.g. " + ", ".join(self.examples)
        (top, n), = self.types.most_common(1)
        if len(self.types) == 1:
            what = f"always {_article(top)}"
        else:
            what = " or ".join(f"{t} ({c})" for t, c in sorted(self.types.items(), key=lambda kv: (-kv[1], kv[0])))
        if self.low is not None:
            what += f" in {_num(self.low)}..{_num(self.high)}"
        if self.min_len is not None:
            what += f", length {self.min_len}..{self.max_len}" if self.min_len != self.max_len else f", length {self.min_len}"
        if self.examples:
            what += "; e.g. " + ", ".join(self.examples)
        return what


def _article(type_name: str) -> str:
    if type_name == "NoneType":
        return "None"
    return ("an " if type_name[:1].lower() in "aeiou" else "a ") + type_name


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"


@dataclass(slots=True)
class RuntimeSummary:
    qualname: str
    calls: int
    tests: int
    params: dict[str, ValueSummary]
    result: ValueSummary
    exceptions: Counter

    def sentences(self) -> list[str]:
        """One line per parameter, the return value and the exceptions (for breadcrumbs and packs)."""
        out = [f"argument `{p}` was {v.describe()} in {v.seen} calls" for p, v in self.params.items()]
        returned = self.calls - sum(self.exceptions.values())
        if returned and self.result.types:
            out.append(f"returned {self.result.describe()} in {returned} calls")
        for exc, n in sorted(self.exceptions.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"raised {exc} in {n} of {self.calls} calls")
        return out

    def text(self) -> str:
        head = (f"{self.qualname}: {self.calls} call{'s' if self.calls != 1 else ''} recorded in "
                f"{self.tests} test{'s' if self.tests != 1 else ''}")
        return "\n".join([head, *(f"- {s}" for s in self.sentences())])


def _reprs(summary: str | None) -> tuple[dict[str, str], str | None]:
    """(argument reprs, result repr) from the ``summary`` column, whichever shape it has."""
    if not summary:
        return {}, None
    try:
        data = json.loads(summary)
    except ValueError:
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    result = data.get("result", data.get("return"))
    args = data.get("args")
    if not isinstance(args, dict):
        args = {k: v for k, v in data.items() if k not in ("result", "return", "exception", "args")}
    return ({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in args.items()},
            result if isinstance(result, str) or result is None else json.dumps(result))


def summarize(store: Store, source_key: str, qualname: str) -> RuntimeSummary | None:
    rows = call_facts(store, source_key, qualname)
    if not rows:
        return None
    params: dict[str, ValueSummary] = {}
    result = ValueSummary()
    exceptions: Counter = Counter()
    tests = set()
    for r in rows:
        tests.add(r["test_id"])
        try:
            types = json.loads(r["arg_types"] or "{}")
        except ValueError:
            types = {}
        arg_reprs, result_repr = _reprs(r["summary"])
        for name in list(types) + [a for a in arg_reprs if a not in types]:
            if name in RECEIVERS:
                continue
            params.setdefault(name, ValueSummary()).add(types.get(name), arg_reprs.get(name))
        if r["exception"]:
            exceptions[r["exception"]] += 1
        elif r["return_type"] or result_repr is not None:
            result.add(r["return_type"], result_repr)
    return RuntimeSummary(qualname, len(rows), len(tests), params, result, exceptions)



