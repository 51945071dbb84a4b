"""Find the function body in a model's answer: `extract_body(text, task) -> Extraction`.

Models answer in many shapes: a fenced block or bare code, a whole ``def`` (decorated, or
inside its ``class``) or only the body, with chatter around it, tabs, odd indentation, several
blocks. This module accepts all of those and rejects, with a message a model can act on, the
answers that cannot be used as they are: no code, a changed signature, other code defined
besides the target, a body that does not compile in place.

What is dropped or moved is listed in ``Extraction.notes`` (never silently):

* a repeated docstring is removed from the body;
* statements copied unchanged from the hollowed file (imports, sibling methods, the whole
  file repeated) are dropped;
* top-level imports the file lacks become function-local imports at the top of the body;
* example usage (top-level calls, ``assert``, ``if __name__ == "__main__":``) is dropped.

The body returned is dedented; `splice_body` re-indents it to ``task.body_indent`` and puts
it in place of the stub. An accepted body always compiles there.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from regrow.core import pyast
from regrow.core.task import splice
from regrow.core.indent import cut as _cut, dedent_code as _dedent_code, indent_width as _indent, string_inner_lines as _string_inner_lines
from regrow.core.task import Task

# Extraction.kind values.
OK = ""
NO_CODE = "no_code"
CHANGED_SIGNATURE = "changed_signature"
OTHER_CODE = "other_code"
SYNTAX = "syntax"
EMPTY = "empty"

_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "ipython", "python3.x"}
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^\s`]*)")
_MAX_PARSE_ATTEMPTS = 400  # bound on the span search in bare text


@dataclass(frozen=True, slots=True)
class Extraction:
    """The body found in an answer, or why there is none."""

    body: str | None  # dedented body without the docstring; None when the answer is rejected
    error: str = ""  # why the answer was rejected, phrased for the model
    kind: str = OK  # one of: "", no_code, changed_signature, other_code, syntax, empty
    notes: tuple[str, ...] = ()  # what was dropped or moved to make the body

    @property
    def ok(self) -> bool:
        return self.body is not None


@dataclass(frozen=True, slots=True)
class _Target:
    name: str
    is_async: bool
    node: ast.FunctionDef | ast.AsyncFunctionDef | None  # the def in the hollowed file
    file_stmts: frozenset[str]  # ast.dump of every statement at module level in the file
    class_stmts: frozenset[str]  # ast.dump of the members of the target's class, if any


@dataclass(frozen=True, slots=True)
class _Candidate:
    extraction: Extraction
    defines_target: bool
    parses: bool


def extract_body(text: str, task: Task) -> Extraction:
    """Return the body of ``task``'s function found in ``text``, or the reason it is unusable.

    With several code blocks, the last one that defines the target wins; failing that, the
    last one that parses; failing that, the error of the last one.
    """
    target = _target(task)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    blocks = _fenced_blocks(text)
    if blocks:
        python = [code for lang, code in blocks if lang.lower() in _PYTHON_TAGS]
        sources = python or [code for _, code in blocks]
        bare = False
    else:
        span = _bare_code(text)
        if span is None and any(_is_indented(line) for line in text.split("\n")):
            span = text  # indented code that does not parse: say so, rather than "no code"
        sources = [span] if span is not None else []
        bare = True
    candidates = [_analyze(src, target, task, bare=bare) for src in sources if src.strip()]
    if not candidates:
        return Extraction(None, "the answer contains no Python code: answer with one "
                          "```python code block holding the body", NO_CODE)
    for pick in (lambda c: c.defines_target, lambda c: c.parses, lambda c: True):
        chosen = [c for c in candidates if pick(c)]
        if chosen:
            return chosen[-1].extraction
    raise AssertionError("unreachable")


splice_body = splice  # the hollowed file with a body in place of the stub (see hollow.splice)


def parses_whole(code: str) -> bool:
    """Whether ``code`` parses as a whole (after the indentation clean-up of `extract_body`)."""
    return _load(code) is not None


def syntax_error(code: str) -> Extraction:
    """The rejection of code that does not parse, naming the line."""
    return _syntax_error(_prepare(code))


def complete_prefix(code: str) -> str:
    """``code`` (a body cut off mid-way, e.g. at a token limit) back to its last complete
    statement: the unfinished last line goes (unless ``code`` ends with a newline), then lines
    from the end until the rest parses as a whole. "" when no statement is complete: an answer
    with nothing finished stays unusable (no ``pass`` is made up)."""
    lines = code.replace("\r\n", "\n").split("\n")
    if lines and lines[-1].strip():
        lines.pop()
    while lines:
        last = lines[-1].strip()
        if last and not last.startswith("#") and _load("\n".join(lines)) is not None:
            return "\n".join(lines)
        lines.pop()
    return ""


# --- finding code in the text -------------------------------------------------------------


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, code) of each fenced block; an unterminated last fence runs to the end."""
    blocks: list[tuple[str, str]] = []
    fence: str | None = None
    lang = ""
    body: list[str] = []
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None:
            if m:
                fence, lang, body = m.group(1), m.group(2), []
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            blocks.append((lang, "\n".join(body)))
            fence = None
        else:
            body.append(line)
    if fence is not None:
        blocks.append((lang, "\n".join(body)))
    return blocks


def _bare_code(text: str) -> str | None:
    """The longest run of lines that parses as Python, chatter before and after cut off.

    Lines that read as prose (unindented, and not even the start of a statement) split the
    text into segments; each segment is trimmed from both ends until it parses. The number
    of parse attempts is bounded, so a long essay costs milliseconds.
    """
    if _load(text) is not None:
        return text
    lines = text.split("\n")
    segments: list[tuple[int, int]] = []
    start = None
    for n, line in enumerate(lines + ["<end>"]):
        if n == len(lines) or _is_prose(line):
            if start is not None:
                segments.append((start, n))
            start = None
        elif start is None and line.strip():
            start = n
    budget = [_MAX_PARSE_ATTEMPTS]
    best: tuple[int, int, int] | None = None  # (non-blank lines, start, end)
    for lo, hi in sorted(segments, key=lambda s: s[0] - s[1]):  # longest first
        if best and best[0] >= hi - lo:
            break
        span = _longest_parsing_span(lines, lo, hi, budget)
        if span:
            size = sum(1 for ln in lines[span[0] : span[1]] if ln.strip())
            if best is None or size > best[0]:
                best = (size, *span)
    return None if best is None else "\n".join(lines[best[1] : best[2]])


def _is_prose(line: str) -> bool:
    """An unindented line that cannot begin a Python statement (``Here is the code:``)."""
    stripped = line.strip()
    if not stripped or line[:1] in (" ", "\t") or stripped[0] in "@)]}#" or stripped.endswith(("(", "[", "{", "\\")):
        return False
    return _parse(stripped) is None and _parse(stripped + "\n    pass") is None


def _longest_parsing_span(lines: list[str], lo: int, hi: int, budget: list[int]) -> tuple[int, int] | None:
    """The longest span of ``lines[lo:hi]`` that parses. Only unindented lines (chatter, which is
    never indented) may be cut off its ends: an indented line is code, and code that does not
    parse is not made to by dropping it (the answer is then reported as not parsing)."""
    for i in range(lo, hi):
        if not lines[i].strip():
            continue
        for j in range(hi, i, -1):
            if budget[0] <= 0:
                return None
            if not lines[j - 1].strip():
                continue
            budget[0] -= 1
            if _load("\n".join(lines[i:j])) is not None:
                return i, j
            if _is_indented(lines[j - 1]):
                break
        if _is_indented(lines[i]):
            return None
    return None


def _is_indented(line: str) -> bool:
    return bool(line.strip()) and line[:1] in (" ", "\t")


def _prepare(code: str) -> str:
    """Tabs in indentation become 4 spaces; common indentation and blank edges go.

    The indentation removed is the first code line's when plain dedenting does not parse (a
    multi-line string whose lines start further left)."""
    out = []
    for line in code.split("\n"):
        stripped = line.lstrip(" \t")
        width = 0
        for ch in line[: len(line) - len(stripped)]:
            width = (width // 4 + 1) * 4 if ch == "\t" else width + 1
        out.append(" " * width + stripped if stripped else "")
    code = "\n".join(out).strip("\n")
    plain = textwrap.dedent(code)
    if _parse(plain) is not None:
        return plain
    first = _dedent_code(code)
    return first if _parse(first) is not None else plain


def _parse(src: str) -> ast.Module | None:
    try:
        return pyast.parse(src)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None


def _load(code: str) -> tuple[str, ast.Module] | None:
    """``code`` cleaned up by `_prepare` (and `_fix_first_line` if needed) and its tree."""
    src = _prepare(code)
    tree = _parse(src)
    if tree is None:
        fixed = _fix_first_line(src)
        tree = _parse(fixed) if fixed is not None else None
        src = fixed
    return None if tree is None else (src, tree)


def _fix_first_line(src: str) -> str | None:
    """Repair a body whose first line lost its indentation (``x = 1\\n    return x``)."""
    lines = src.split("\n")
    rest = [ln for ln in lines[1:] if ln.strip()]
    if not rest or lines[0].rstrip().endswith(":") or not all(ln[:1] == " " for ln in rest):
        return None
    return lines[0] + "\n" + textwrap.dedent("\n".join(lines[1:]))


# --- reading one candidate ----------------------------------------------------------------


def _analyze(code: str, target: _Target, task: Task, *, bare: bool) -> _Candidate:
    loaded = _load(code)
    if loaded is None:
        return _Candidate(_syntax_error(_prepare(code)), defines_target=False, parses=False)
    src, tree = loaded
    if bare:
        tree.body = [s for s in tree.body if not _is_bare_name(s)]
    if not tree.body:
        return _Candidate(Extraction(None, "the answer contains no Python code", NO_CODE), False, False)
    lines = src.split("\n")

    found = _find_target(tree, target.name)
    if found is not None:
        node, wrapper = found
        return _Candidate(_from_def(node, wrapper, tree, lines, target, task), True, True)

    defs = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    others = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom)) and s not in defs]
    if defs and not others:
        return _Candidate(_wrong_definition(defs, target), defines_target=False, parses=True)
    return _Candidate(_from_body(tree.body, lines, task), defines_target=False, parses=True)


def _syntax_error(src: str) -> Extraction:
    try:
        pyast.parse(src)
    except SyntaxError as exc:
        where = f" (line {exc.lineno} of the code block)" if exc.lineno else ""
        return Extraction(None, f"the code does not parse: {exc.msg}{where}", SYNTAX)
    except ValueError as exc:
        return Extraction(None, f"the code does not parse: {exc}", SYNTAX)
    return Extraction(None, "the code does not parse", SYNTAX)


def _is_bare_name(stmt: ast.stmt) -> bool:
    """A lone word left over from prose around bare code (``Done``, ``Explanation``)."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Name)


def _find_target(tree: ast.Module, name: str) -> tuple[ast.AST, ast.ClassDef | None] | None:
    """The last top-level def of ``name``, or the last one directly inside a top-level class."""
    found = None
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name:
            found = (stmt, None)
        elif isinstance(stmt, ast.ClassDef):
            for member in stmt.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and member.name == name:
                    found = (member, stmt)
    return found


def _from_def(node, wrapper: ast.ClassDef | None, tree: ast.Module, lines: list[str],
              target: _Target, task: Task) -> Extraction:
    mismatch = _signature_mismatch(node, target)
    if mismatch:
        return Extraction(None, mismatch, CHANGED_SIGNATURE)
    notes: list[str] = []
    imports: list[str] = []
    outer = [s for s in tree.body if s is not (wrapper or node)]
    error = _sort_out_others(outer, target.file_stmts, lines, notes, imports, where="module")
    if error is None and wrapper is not None:
        members = [s for s in wrapper.body if s is not node and not _is_docstring(s, wrapper.body)]
        error = _sort_out_others(members, target.class_stmts, lines, notes, imports,
                                 where=f"class {wrapper.name}")
    if error:
        return Extraction(None, error, OTHER_CODE)
    stmts = list(node.body)
    if _is_docstring(stmts[0], stmts):
        stmts = stmts[1:]
        notes.append("dropped the repeated docstring")
    if not stmts:
        return Extraction(None, f"`{target.name}` in the answer has a docstring but no body",
                          EMPTY, tuple(notes))
    body = _statements_text(stmts, lines)
    return _finish(imports + [body], task, notes)


def _from_body(stmts: list[ast.stmt], lines: list[str], task: Task) -> Extraction:
    notes: list[str] = []
    if _is_docstring(stmts[0], stmts):
        stmts = stmts[1:]
        notes.append("dropped the repeated docstring")
        if not stmts:
            return Extraction(None, "the answer repeats the docstring but has no body", EMPTY,
                              tuple(notes))
    return _finish([_statements_text(stmts, lines)], task, notes)


def _finish(parts: list[str], task: Task, notes: list[str]) -> Extraction:
    body = "\n".join(p.strip("\n") for p in parts if p.strip())
    try:
        compile(splice_body(task, body), task.path or "<task>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return Extraction(None, f"the body does not compile inside `{task.symbol.name}`: "
                          f"{exc.msg}", SYNTAX, tuple(notes))
    except ValueError as exc:
        return Extraction(None, f"the body does not compile: {exc}", SYNTAX, tuple(notes))
    return Extraction(body, notes=tuple(notes))


def _sort_out_others(stmts: list[ast.stmt], known: frozenset[str], lines: list[str],
                     notes: list[str], imports: list[str], *, where: str) -> str | None:
    """Drop copies and example usage, hoist new imports; return an error for new definitions."""
    for stmt in stmts:
        if ast.dump(stmt) in known:
            notes.append(f"dropped {_describe(stmt)} copied unchanged from the file")
        elif isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            notes.append("dropped a __future__ import")
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(stmt))
            notes.append(f"moved `{ast.unparse(stmt)}` into the body")
        elif _is_usage(stmt) or (isinstance(stmt, ast.Pass) or _is_ellipsis(stmt)):
            notes.append(f"dropped {_describe(stmt)} outside the function")
        else:
            return (f"the answer defines {_describe(stmt)} at {where} level besides the target: "
                    "write only the body of the target function, with any helper code inside it")
    return None


def _is_usage(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Assert):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Call, ast.Constant)):
        return True
    if isinstance(stmt, ast.If):
        test = ast.unparse(stmt.test).replace("'", '"')
        return test in ('__name__ == "__main__"', '"__main__" == __name__')
    return False


def _is_ellipsis(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and stmt.value.value is Ellipsis)


def _describe(stmt: ast.stmt) -> str:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"function `{stmt.name}`"
    if isinstance(stmt, ast.ClassDef):
        return f"class `{stmt.name}`"
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return "`" + ", ".join(ast.unparse(t) for t in targets) + "`"
    first = ast.unparse(stmt).split("\n", 1)[0]
    return f"`{first[:60]}`"


def _is_docstring(stmt: ast.stmt, body: list[ast.stmt]) -> bool:
    return (stmt is body[0] and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _start_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", ())
    return min([stmt.lineno] + [d.lineno for d in decorators])


def _statements_text(stmts: list[ast.stmt], lines: list[str]) -> str:
    """Source lines of ``stmts`` with the comments around them, dedented.

    When the first statement shares its line with what precedes it (``def f(x): return x``,
    ``"doc"; x = 1``), the statements are cut out by column instead.
    """
    first = _start_line(stmts[0])
    line = lines[first - 1]
    before = line[: stmts[0].col_offset] if first == stmts[0].lineno else line
    if before.strip() and not before.strip().startswith("@"):
        src = "\n".join(lines)
        return "\n".join(ast.get_source_segment(src, s) or ast.unparse(s) for s in stmts)
    start = first
    while start > 1 and lines[start - 2].strip().startswith("#"):
        start -= 1
    end = stmts[-1].end_lineno
    while end < len(lines) and lines[end].strip().startswith("#") and _indent(lines[end]) >= _indent(line):
        end += 1
    src = "\n".join(lines)
    inner = {n - start + 1 for n in _string_inner_lines(src) if start <= n <= end}
    block = lines[start - 1 : end]
    width = _indent(line)
    return "\n".join(
        ln if n in inner else _cut(ln, width)
        for n, ln in enumerate(block, 1)
    ).strip("\n")


# --- the target's signature ---------------------------------------------------------------


def _target(task: Task) -> _Target:
    sym = task.symbol
    tree = _parse(task.hollowed_file)
    node = None
    file_stmts: frozenset[str] = frozenset()
    class_stmts: frozenset[str] = frozenset()
    if tree is not None:
        file_stmts = frozenset(ast.dump(s) for s in tree.body)
        for parent in ast.walk(tree):
            body = getattr(parent, "body", None)
            if not isinstance(body, list):  # a lambda's body is an expression
                continue
            for child in body:
                if (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and child.name == sym.name and child.lineno == sym.def_line):
                    node = child
                    if isinstance(parent, ast.ClassDef):
                        class_stmts = frozenset(ast.dump(s) for s in parent.body if s is not child)
    if node is None:  # fall back to the recorded header
        header = _parse(textwrap.dedent(sym.signature).strip() + "\n    pass")
        if header is not None and isinstance(header.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
            node = header.body[0]
    return _Target(sym.name, sym.is_async, node, file_stmts, class_stmts)


def _params(args: ast.arguments) -> tuple:
    return (
        tuple(a.arg for a in args.posonlyargs),
        tuple(a.arg for a in args.args),
        args.vararg.arg if args.vararg else None,
        tuple(a.arg for a in args.kwonlyargs),
        args.kwarg.arg if args.kwarg else None,
        len(args.defaults),
        tuple(d is not None for d in args.kw_defaults),
    )


def _signature_mismatch(node, target: _Target) -> str:
    """Why ``node``'s signature differs from the target's (names, kinds, defaults), or ""."""
    is_async = isinstance(node, ast.AsyncFunctionDef)
    if is_async != target.is_async:
        want = "async def" if target.is_async else "def (not async)"
        return f"changed signature: `{target.name}` must stay `{want}`; keep the signature as given"
    if target.node is None or _params(node.args) == _params(target.node.args):
        return ""
    got = _strip_annotations(node.args)
    want = _strip_annotations(target.node.args)
    return (f"changed signature: the answer has `{target.name}({got})` but the target is "
            f"`{target.name}({want})`; keep the signature as given and write only the body")


def _strip_annotations(args: ast.arguments) -> str:
    bare = ast.arguments(
        posonlyargs=[ast.arg(a.arg) for a in args.posonlyargs],
        args=[ast.arg(a.arg) for a in args.args],
        vararg=ast.arg(args.vararg.arg) if args.vararg else None,
        kwonlyargs=[ast.arg(a.arg) for a in args.kwonlyargs],
        kw_defaults=args.kw_defaults,
        kwarg=ast.arg(args.kwarg.arg) if args.kwarg else None,
        defaults=args.defaults,
    )
    return ast.unparse(bare)


def _wrong_definition(defs: list[ast.stmt], target: _Target) -> Extraction:
    funcs = [d for d in defs if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if funcs:
        names = ", ".join(f"`{d.name}`" for d in funcs)
        return Extraction(None, f"changed signature: the answer defines {names}, not "
                          f"`{target.name}`; keep the name and signature as given",
                          CHANGED_SIGNATURE)
    names = ", ".join(f"`{d.name}`" for d in defs)
    return Extraction(None, f"the answer defines class {names} without `{target.name}`: "
                      "write only the body of the target function", OTHER_CODE)
