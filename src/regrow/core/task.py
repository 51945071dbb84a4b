"""`Task`: one hollowed symbol, with what a solver may see and what it may not."""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field, replace

from regrow.core import pyast
from regrow.core.indent import dedent_code, reindent
from regrow.core.index import symbol_from_json, symbol_to_json
from regrow.core.symbol import Symbol

# Task statuses. Only VALID tasks are ever scored; the rest are counted in every report.
PENDING = "pending"
VALID = "valid"
FLAKY = "flaky"  # the reference did not pass its covering tests every time
UNTESTED = "untested"  # the stub passes its covering tests: they do not notice a missing body
REFERENCE_FAILS = "reference_fails"  # the unmodified source fails its covering tests
UNSUPPORTED = "unsupported"  # could not be hollowed
EXCLUDED = "excluded"  # never hollowed: not covered, trivial, abstract, test code, ... (see reason)


@dataclass(frozen=True, slots=True)
class Task:
    """A function whose body was erased.

    The hidden parts (``reference_body``, ``original_file``) never reach a solver that is not
    the oracle; prompts are built from ``hollowed_file`` and the symbol's public facts.
    """

    task_id: str  # the symbol's qualname
    symbol: Symbol
    path: str  # file path relative to the source root
    hollowed_file: str
    stub_start: int  # 1-based first line of the stub statement(s) in hollowed_file
    stub_end: int  # 1-based last line (inclusive)
    body_indent: str
    tests: tuple[str, ...]  # covering test ids (pytest node ids)
    reference_body: str  # dedented original body after the docstring (hidden)
    original_file: str  # the unmodified file (hidden)
    status: str = PENDING
    reason: str = ""
    test_seconds: float = 0.0  # sum of the covering tests' own durations on the reference
    extra: dict = field(default_factory=dict)

    def with_status(self, status: str, reason: str = "") -> "Task":
        return replace(self, status=status, reason=reason)

    @property
    def is_valid(self) -> bool:
        return self.status == VALID


def task_to_json(task: Task) -> str:
    data = asdict(task)
    data["symbol"] = json.loads(symbol_to_json(task.symbol))
    return json.dumps(data, sort_keys=True)


def task_from_json(text: str) -> Task:
    data = json.loads(text)
    data["symbol"] = symbol_from_json(json.dumps(data["symbol"]))
    data["tests"] = tuple(data["tests"])
    return Task(**data)


# ------------------------------------------------------------------ the text of a task's file

STUB = "raise NotImplementedError"  # the erased body: what a hollowed function raises


def find_def(tree: ast.AST, def_line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno == def_line:
            return node
    return None


def splice(task: Task, body: str) -> str:
    """The hollowed file with ``body`` in place of the stub, re-indented to the body's level.

    Leading blank lines are kept (a reference body may start with one); the inside of
    multi-line strings is never re-indented, so string values stay as written.
    """
    if "\t" in body and "\t" not in task.body_indent:
        body = body.expandtabs(4)
    text = dedent_code(body).rstrip()
    if not text.strip():
        text = "pass"
    lines = task.hollowed_file.splitlines(keepends=True)
    before, after = lines[: task.stub_start - 1], lines[task.stub_end:]
    return "".join(before) + reindent(text, task.body_indent) + "\n" + "".join(after)


def function_text(file_text: str, symbol: Symbol) -> str:
    """The source of ``symbol`` (decorators to last line) in ``file_text``, found by its def line."""
    try:
        node = find_def(pyast.parse(file_text), symbol.def_line)
    except SyntaxError:
        node = None
    lines = file_text.splitlines()
    if node is None:
        return "\n".join(lines[symbol.start - 1:])
    return "\n".join(lines[symbol.start - 1: node.end_lineno])
