"""Erase function bodies into tasks, keeping decorators, signature and docstring.

libcst rewrites only the target's body, so every other byte of the file stays as it was. The
stub raises ``NotImplementedError``; a candidate body is later spliced in its place.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from regrow.core import pyast
from regrow.core.symbol import Symbol
from regrow.core.task import STUB, Task, find_def



@dataclass(frozen=True, slots=True)
class HollowConfig:
    """Which symbols become tasks."""

    min_statements: int = 2  # body statements after the docstring, counted recursively
    include_nested: bool = False  # functions defined inside other functions
    include_private: bool = True  # names starting with "_"
    include_dunder: bool = True

    def key(self) -> str:
        return f"s{self.min_statements}-n{int(self.include_nested)}-p{int(self.include_private)}-d{int(self.include_dunder)}"


def eligibility(symbol: Symbol, cfg: HollowConfig) -> str | None:
    """Why a symbol cannot become a task, or None when it can (coverage is checked elsewhere)."""
    if symbol.is_test:
        return "test code"
    for flag in ("abstract", "overload", "stub", "generated"):
        if flag in symbol.flags:
            return flag
    if not cfg.include_nested and symbol.depth > 0 and symbol.class_name is None:
        return "nested function"
    if symbol.n_statements < cfg.min_statements:
        return "trivial"
    dunder = symbol.name.startswith("__") and symbol.name.endswith("__")
    if not cfg.include_dunder and dunder:
        return "dunder"
    if not cfg.include_private and symbol.name.startswith("_") and not dunder:
        return "private"
    return None


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        expr = stmt.body[0]
        return isinstance(expr, cst.Expr) and isinstance(expr.value, (cst.SimpleString, cst.ConcatenatedString))
    return False


class _Eraser(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, local_name: str, def_line: int, default_indent: str):
        self.target = local_name.split(".")
        self.def_line = def_line
        self.stack: list[str] = []
        self.reference: str | None = None
        self.default_indent = default_indent

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.stack.append(node.name.value)
        return True

    def leave_ClassDef(self, original, updated):
        self.stack.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.stack.append(node.name.value)
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef):
        path = list(self.stack)
        self.stack.pop()
        if path != self.target or self.reference is not None:
            return updated
        if self.get_metadata(PositionProvider, original.name).start.line != self.def_line:
            return updated
        body = original.body
        stmts = list(body.body) if isinstance(body, cst.IndentedBlock) else [cst.SimpleStatementLine(body=list(body.body))]
        doc = stmts[0] if stmts and _is_docstring(stmts[0]) else None
        rest = stmts[1:] if doc is not None else stmts
        # Comments and blank lines before the first statement belong to the (hidden) body.
        self.reference = cst.Module(body=rest, default_indent=self.default_indent).code
        stub = cst.parse_statement(STUB + "\n")
        new_body = [doc, stub] if doc is not None else [stub]
        if isinstance(body, cst.IndentedBlock):
            block = body.with_changes(body=new_body)
        else:
            block = cst.IndentedBlock(body=new_body)
        return updated.with_changes(body=block)


def erase(source: str, symbol: Symbol) -> tuple[str, str]:
    """(hollowed file, dedented reference body) for ``symbol`` in ``source``."""
    module = cst.parse_module(source)
    eraser = _Eraser(symbol.local_name, symbol.def_line, module.default_indent)
    hollowed = MetadataWrapper(module).visit(eraser)
    if eraser.reference is None:
        raise ValueError(f"{symbol.qualname} not found at line {symbol.def_line}")
    return hollowed.code, eraser.reference


def make_task(source: str, symbol: Symbol, tests: tuple[str, ...], test_seconds: float = 0.0) -> Task:
    hollowed, reference = erase(source, symbol)
    node = find_def(pyast.parse(hollowed), symbol.def_line)
    if node is None:  # pragma: no cover - erase keeps every line before the body in place
        raise ValueError(f"lost {symbol.qualname} after erasing")
    stub = node.body[-1]
    line = hollowed.splitlines()[stub.lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    return Task(task_id=symbol.qualname, symbol=symbol, path=symbol.path, hollowed_file=hollowed,
                stub_start=stub.lineno, stub_end=stub.end_lineno or stub.lineno, body_indent=indent,
                tests=tests, reference_body=reference, original_file=source, test_seconds=test_seconds)
