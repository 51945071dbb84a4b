"""Indentation that leaves the inside of multi-line strings alone, so string values never change
when a body is moved between indentation levels."""

from __future__ import annotations

import io
import tokenize


def string_inner_lines(code: str) -> set[int]:
    """1-based numbers of the lines that begin inside a multi-line string literal."""
    inner: set[int] = set()
    kinds = {tokenize.STRING} | ({tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set())
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in kinds and tok.end[0] > tok.start[0]:
                inner.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return inner


def reindent(code: str, indent: str) -> str:
    """Prefix every code line of ``code`` with ``indent``; blank lines and the inside of
    multi-line strings are left as they are, so string values do not change."""
    inner = string_inner_lines(code)
    return "\n".join(
        indent + line if line.strip() and n not in inner else line
        for n, line in enumerate(code.split("\n"), 1)
    )


def dedent_code(code: str, width: int | None = None) -> str:
    """Remove ``width`` columns (default: the first code line's indentation) from each code
    line, leaving the inside of multi-line strings alone."""
    lines = code.split("\n")
    if width is None:
        width = next((indent_width(ln) for ln in lines if ln.strip()), 0)
    inner = string_inner_lines(code)
    return "\n".join(
        line if n in inner else cut(line, width)
        for n, line in enumerate(lines, 1)
    )


def cut(line: str, width: int) -> str:
    """``line`` without ``width`` columns of indentation (or all it has, when less)."""
    return line[width:] if line.startswith(" " * width) else line.lstrip(" ")


def indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
