"""Thread-safe `ast.parse`.

CPython 3.11 before 3.11.8 keeps the AST converter's recursion depth in interpreter-wide
state, so two threads parsing at once can fail with ``SystemError: AST constructor recursion
depth mismatch`` (python/cpython gh-106905). regrow verifies candidates from a thread pool, so
every parse inside regrow goes through this lock. Parsing is fast; the lock costs little.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec") -> ast.AST:
    with _LOCK:
        return ast.parse(source, filename=filename, mode=mode)


def literal_eval(text: str):
    """`ast.literal_eval` of a string, parsed under the same lock (it parses first)."""
    return ast.literal_eval(parse(text.lstrip(" \t"), mode="eval"))
