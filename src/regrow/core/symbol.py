"""`Symbol`: one function or method found in a module."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Symbol:
    """A function or method.

    Line numbers are 1-based and inclusive. ``start`` is the first decorator line (or the
    ``def`` line); ``body_start`` is the first statement after the docstring (or the first
    statement when there is none); ``end`` is the last line of the function.
    """

    qualname: str  # "pkg.mod:Class.meth"
    module: str  # "pkg.mod"
    path: str  # file path relative to the source root, with "/" separators
    name: str
    kind: str  # "function" | "method"
    is_async: bool
    start: int
    def_line: int
    body_start: int
    end: int
    signature: str  # the def header as written, decorators excluded
    docstring: str | None
    decorators: tuple[str, ...] = ()
    class_name: str | None = None
    parent: str | None = None  # qualname of the enclosing function or class, if any
    depth: int = 0  # 0 for module level, 1 for a method or nested function, ...
    n_statements: int = 0  # statements in the body after the docstring, recursively
    is_test: bool = False
    flags: tuple[str, ...] = field(default=())  # "abstract", "overload", "generated", "stub", "oneliner"

    @property
    def local_name(self) -> str:
        """``Class.meth`` part of the qualname (without the ``@line`` of a shadowed duplicate)."""
        return self.qualname.split(":", 1)[1].split("@", 1)[0]
