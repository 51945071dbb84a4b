"""What a model is shown: the hollowed file, the instructions, some context, earlier turns.

* `build_messages` — chat messages for one turn of a chain.
* `render_completion_prompt` — the same material for a base model that continues text.
* `default_context` — this module's simple context: other definitions of the same file
  (signatures and short bodies) and the signatures of the names the file imports from its own
  repository, resolved statically with `ast`, packed under a token budget.
* `Tokenizer` (the protocol of `regrow.context.tokenizers`: ``name`` and ``count(text)``) — what
  budgets are counted with; backends pass the model's own tokenizer and report its ``name``.
  `ApproxTokenizer` is the last resort when no vocabulary is at hand.

Only ``task.hollowed_file`` and the public facts of ``task.symbol`` are read from the task:
the reference body and the original file never reach a prompt. Files of the source tree are
read for signatures only (never bodies), and the target's own file always comes from the
hollowed copy.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from regrow.core import pyast
from regrow.solve.types import Turn
from regrow.core.task import Task
from regrow.context.tokenizers import Tokenizer

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert Python programmer working in an existing repository. The body of one "
    "function was erased; you write it again so that the repository's tests pass. Answer with "
    "exactly one ```python code block holding only the function body. Keep the signature as "
    "given, do not repeat the docstring, and do not change or add code outside the function."
)
STUB_MARK = "# <<< erased body: write it here"
DEFAULT_FILE_BUDGET = 6000
DEFAULT_CONTEXT_BUDGET = 1024
SHORT_BODY_LINES = 12  # same-file definitions up to this many lines are shown whole


# --- tokenizers ---------------------------------------------------------------------------


class ApproxTokenizer:
    """A vocabulary-free estimate, used only when no real tokenizer can be loaded.

    Counts runs of letters in pieces of four characters, each digit, each punctuation mark and
    each run of whitespace as one token. On Python source it over-counts: against SmolLM2's
    byte-level BPE it gave 1.03x to 2.3x as many tokens (median 1.6x) on 211 standard-library
    files, never fewer, so budgets counted with it are kept at the price of some room.
    """

    name = "approx:chars4-v1"
    _PIECE = re.compile(r"[^\W\d_]+|\d|_|\s+|[^\w\s]")

    def count(self, text: str) -> int:
        total = 0
        for m in self._PIECE.finditer(text):
            piece = m.group()
            total += -(-len(piece) // 4) if piece[0].isalpha() else 1
        return total


class LlamaTokenizer:
    """The vocabulary of a llama.cpp model (a loaded `llama_cpp.Llama`, possibly vocab-only)."""

    def __init__(self, llama, name: str):
        self._llama = llama
        self.name = name

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


class HFTokenizer:
    """A Hugging Face ``transformers`` tokenizer."""

    def __init__(self, tokenizer, name: str):
        self._tokenizer = tokenizer
        self.name = name

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False)) if text else 0


# --- the file as shown --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileView:
    """The hollowed file as a model sees it: the stub marked, cut to a window if too long."""

    text: str
    shown: frozenset[int]  # 1-based lines of the hollowed file that appear in ``text``
    complete: bool  # every line is shown


def file_view(task: Task, *, tokenizer: Tokenizer | None = None,
              budget: int = DEFAULT_FILE_BUDGET) -> FileView:
    """The hollowed file with its stub marked; within ``budget`` tokens when possible.

    A longer file is shown as a window: the module's imports, the headers of the classes
    around the target, the target's decorators, signature and docstring (always, even past
    the budget), then as many lines above and below as fit. Gaps read ``# ... (N lines)``.
    """
    tok = tokenizer or ApproxTokenizer()
    lines = task.hollowed_file.splitlines()
    marked = list(lines)
    marked[task.stub_end - 1] = f"{lines[task.stub_end - 1]}  {STUB_MARK}"
    full = "\n".join(marked)
    if tok.count(full) <= budget:
        return FileView(full, frozenset(range(1, len(lines) + 1)), True)

    required = set(range(task.symbol.start, task.stub_end + 1))
    optional_first: list[int] = []
    tree = _parse(task.hollowed_file)
    if tree is not None:
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                optional_first.extend(range(stmt.lineno, stmt.end_lineno + 1))
        for node in _ancestors(tree, task.symbol.def_line):
            optional_first.extend(range(_start(node), node.body[0].lineno))
    cost = {n: tok.count(marked[n - 1] + "\n") for n in range(1, len(lines) + 1)}
    chosen = set(required)
    spent = sum(cost[n] for n in chosen) + 16  # room for the gap markers
    for n in optional_first:
        if n not in chosen and spent + cost[n] <= budget:
            chosen.add(n)
            spent += cost[n]
    # Grow one contiguous window around the target, a line above and a line below in turn;
    # a direction stops at the first line that does not fit.
    edges = {-1: task.symbol.start - 1, 1: task.stub_end + 1}
    while edges:
        for step in list(edges):
            n = edges[step]
            if not 1 <= n <= len(lines) or (n not in chosen and spent + cost[n] > budget):
                del edges[step]
                continue
            if n not in chosen:
                chosen.add(n)
                spent += cost[n]
            edges[step] = n + step
    while True:
        text = _render_window(marked, chosen)
        if tok.count(text) <= budget or chosen <= required:
            return FileView(text, frozenset(chosen), False)
        # Per-line counts can underestimate the whole; drop the farthest optional line.
        far = max(chosen - required, key=lambda n: min(abs(n - task.symbol.start), abs(n - task.stub_end)))
        chosen.discard(far)


def _render_window(lines: list[str], chosen: set[int]) -> str:
    out: list[str] = []
    gap = 0
    for n, line in enumerate(lines, 1):
        if n in chosen:
            if gap:
                out.append(f"# ... ({gap} lines not shown)")
                gap = 0
            out.append(line)
        else:
            gap += 1
    if gap:
        out.append(f"# ... ({gap} lines not shown)")
    return "\n".join(out)


def _ancestors(tree: ast.Module, def_line: int) -> list[ast.AST]:
    """Classes and functions enclosing the def at ``def_line``, outermost first."""
    chain: list[ast.AST] = []
    body = tree.body
    while True:
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.lineno < def_line <= node.end_lineno:
                chain.append(node)
                body = node.body
                break
        else:
            return chain


def _start(node: ast.AST) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])


def _parse(text: str) -> ast.Module | None:
    try:
        return pyast.parse(text)
    except (SyntaxError, ValueError):
        return None


# --- messages -----------------------------------------------------------------------------


def build_messages(task: Task, *, context: str = "", history: tuple[Turn, ...] = (),
                   system_prompt: str | None = None, tokenizer: Tokenizer | None = None,
                   file_budget: int = DEFAULT_FILE_BUDGET) -> list[dict]:
    """Chat messages for the next turn: system, the task, then each earlier answer (as the
    assistant) followed by its feedback (as the user)."""
    view = file_view(task, tokenizer=tokenizer, budget=file_budget)
    messages = [
        {"role": "system", "content": system_prompt or DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": _task_text(task, view, context)},
    ]
    for turn in history:
        messages.append({"role": "assistant", "content": turn.completion})
        messages.append({"role": "user", "content": _feedback_text(task, turn)})
    return messages


def _task_text(task: Task, view: FileView, context: str) -> str:
    sym = task.symbol
    local = sym.local_name
    shown = "the whole file" if view.complete else "an excerpt of the file"
    parts = [
        f"The body of `{local}` in `{task.path}` (module `{sym.module}`) was erased. Below is "
        f"{shown}; the erased body's place is marked `{STUB_MARK}`.",
        f"```python\n{view.text}\n```",
    ]
    if context.strip():
        parts.append(context.strip())
    header = _one_line(sym.signature)
    parts.append(
        f"Write only the body of `{local}`:\n"
        f"- keep the signature as it is: `{header}`\n"
        "- do not repeat the docstring; do not change or add code outside the function "
        "(put any helper or import inside the body)\n"
        "- answer with one ```python code block"
    )
    return "\n\n".join(parts)


def _feedback_text(task: Task, turn: Turn) -> str:
    feedback = turn.feedback.strip() or "The answer did not pass."
    return (f"Your answer was checked with the repository's tests:\n\n{feedback}\n\n"
            f"Write the body of `{task.symbol.local_name}` again, fixing this. Answer with one "
            "```python code block holding only the body.")


def _one_line(signature: str) -> str:
    return " ".join(line.strip() for line in signature.strip().splitlines())


def render_messages(messages: list[dict] | tuple[dict, ...]) -> str:
    """Chat messages as one plain-text transcript, for completion endpoints."""
    parts = [f"{m.get('role', 'user').capitalize()}:\n{m.get('content', '')}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant:\n"


def render_completion_prompt(task: Task, *, context: str = "", history: tuple[Turn, ...] = (),
                             tokenizer: Tokenizer | None = None,
                             file_budget: int = DEFAULT_FILE_BUDGET, final_newline: bool = True) -> str:
    """A text prompt a base model continues with the body: the context and earlier feedback
    as comments, then the file up to the end of the target's docstring (the ``def`` line
    when there is none). Without ``final_newline`` the prompt stops right after that line, so
    the model writes the newline and the body's indentation itself (whole tokens, as in the
    code it was trained on), and a first line it starts at the def's level meets the stops of
    `dedent_stops` too."""
    view = file_view(task, tokenizer=tokenizer, budget=file_budget)
    lines = view.text.split("\n")
    cut = next(i for i, line in enumerate(lines) if line.endswith(STUB_MARK))
    header: list[str] = [f"# file: {task.path}"]
    if context.strip():
        header += ["# Other code from this repository, for reference:"]
        header += [f"# {line}".rstrip() for line in context.strip().splitlines()]
    for i, turn in enumerate(history, 1):
        header += [f"# Attempt {i} at the body of {task.symbol.local_name} failed:"]
        header += [f"# {line}".rstrip() for line in (turn.feedback.strip() or "it did not pass").splitlines()]
    return "\n".join(header + lines[:cut]) + ("\n" if final_newline else "")


def completion_stops(task: Task) -> list[str]:
    """Four stop sequences (the most the OpenAI API takes) that end a continuation where the
    target function ends; `cut_continuation` catches what they miss."""
    def_line = task.hollowed_file.splitlines()[task.symbol.def_line - 1]
    indent = def_line[: len(def_line) - len(def_line.lstrip())]
    if indent:
        return [f"\n{indent}def ", f"\n{indent}@", "\nclass ", "\ndef "]
    return ["\ndef ", "\nclass ", "\n@", "\nif __name__"]


def cut_continuation(text: str, task: Task) -> str:
    """The part of a continuation that belongs to the body: up to the first code line
    indented less than the body (the function has ended there)."""
    width = len(task.body_indent)
    kept: list[str] = []
    for line in text.split("\n"):
        if line.strip() and len(line) - len(line.lstrip()) < width and kept:
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


_STOP_STARTS = tuple(chr(c) for c in range(33, 127))  # every printable ASCII character but space


def dedent_stops(task: Task) -> list[str]:
    """Stop sequences that end a continuation at its first line indented at the target's
    ``def`` level or less: a newline, at most the def's indentation, then any printable
    character. Hundreds of them (llama.cpp takes any number; the OpenAI API four, see
    `completion_stops`); a line starting with another character is left to `cut_continuation`."""
    def_line = task.hollowed_file.splitlines()[task.symbol.def_line - 1]
    indent = def_line[: len(def_line) - len(def_line.lstrip())]
    return [f"\n{indent[:k]}{c}" for k in range(len(indent) + 1) for c in _STOP_STARTS]


def body_grammar(task: Task) -> str:
    """A GBNF grammar (llama.cpp) for a continuation of `render_completion_prompt` made without
    its final newline: blank lines, then a first line at the body's indentation that starts a
    statement (not a string: small models restate the docstring, or write one where there was
    none, and stop there with no code; not a comment; not back at the def's level, which would
    leave the body empty), then anything; the stops end it. Generation cannot end before
    that first character, so an immediate end of text is not an answer either."""
    indent = task.body_indent.replace("\\", "\\\\").replace("\t", "\\t")
    return (f'root ::= nl+ "{indent}" first rest\n'
            'nl ::= [ \\t]* "\\n"\n'
            'first ::= [^"\'# \\t\\n\\r]\n'
            'rest ::= [^\\x00]*\n')


def continuation_body(text: str, task: Task, *, truncated: bool = False) -> str | None:
    """The body in a continuation of `render_completion_prompt`, or None when it is unusable
    (`continuation_extraction` says why)."""
    return continuation_extraction(text, task, truncated=truncated).body


def continuation_extraction(text: str, task: Task, *, truncated: bool = False):
    """The body a continuation gives (an `extract.Extraction`): the continuation up to where the
    function ends (`cut_continuation`), taken whole. It must parse as it stands: unlike a chat
    answer there is no chatter around it to drop, so no line of it is dropped to make it parse
    (a broken line makes the answer malformed). Only when generation was ``truncated`` at its
    token limit is the unfinished tail cut back to the last complete statement
    (`trim_truncated`); an answer with no complete statement stays unusable."""
    from regrow.solve.extract import NO_CODE, Extraction, extract_body, parses_whole, syntax_error

    body = cut_continuation(text, task)
    if truncated:
        body = trim_truncated(body, task)
    if not body.strip():
        why = "no complete statement before the token limit" if truncated else "the continuation has no body"
        return Extraction(None, why, NO_CODE)
    if not parses_whole(body):
        return syntax_error(body)
    return extract_body(body, task)


def trim_truncated(text: str, task: Task) -> str:
    """A body cut off at the token limit, back to its last complete statement (see
    `extract.complete_prefix`)."""
    from regrow.solve.extract import complete_prefix

    return complete_prefix(text)


# --- context ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Item:
    text: str  # code shown
    crumb: str  # why it was chosen: "mod.py:12 helper (same file)"
    score: float
    order: tuple  # where it is printed among the chosen items
    lines: frozenset[int] = frozenset()  # lines of the target's file it covers (same file only)


def default_context(task: Task, source_root: Path | str | None, *, budget: int = DEFAULT_CONTEXT_BUDGET,
                    tokenizer: Tokenizer | None = None, shown: frozenset[int] | None = None) -> str:
    """Other code a model may need, as one markdown section of at most ``budget`` tokens.

    Same file: every other function, method, class header and module constant, with bodies of
    up to `SHORT_BODY_LINES` lines (longer ones: signature and docstring). Imports: for each
    name the file imports from its own repository (absolute or relative imports, followed
    through re-exports), the signature and first docstring line; classes with their fields and
    method signatures. Items are ranked (names in the target's signature or docstring first,
    then the target's class, imports, nearby code), added while the whole section fits the
    budget, and printed by file and line, each after a breadcrumb comment saying why.
    ``shown``: lines of the target's file already in the prompt; definitions entirely among
    them are left out.
    """
    chosen = _choose_context(task, source_root, budget, tokenizer or ApproxTokenizer(), shown)
    return _render_context(chosen) if chosen else ""


def default_context_items(task: Task, source_root: Path | str | None, *, budget: int = DEFAULT_CONTEXT_BUDGET,
                          tokenizer: Tokenizer | None = None, shown: frozenset[int] | None = None) -> list[dict]:
    """The items `default_context` shows, in its order: path, line, breadcrumb (why), score and
    the tokens of each item's text (``tokenizer``, approximate by default)."""
    tok = tokenizer or ApproxTokenizer()
    out = []
    for item in _choose_context(task, source_root, budget, tok, shown):
        _, path, line = item.order
        named = re.match(r"\S+ (.*?) \((.*)\)$", item.crumb)  # "path:line NAME (why)"
        out.append({"subject": named.group(1) if named else item.crumb,
                    "channel": "same-file" if item.order[0] == 0 else "import",
                    "path": path, "line": int(line), "tokens": tok.count(item.text), "score": round(item.score, 6),
                    "breadcrumb": item.crumb, "form": "code", "covers": []})
    return out


def _choose_context(task: Task, source_root, budget: int, tok: Tokenizer, shown) -> list[_Item]:
    """The ranked items that fit ``budget`` together, in print order."""
    tree = _parse(task.hollowed_file)
    if tree is None or budget <= 0:
        return []
    mentioned = set(re.findall(r"[A-Za-z_]\w*", f"{task.symbol.signature}\n{task.symbol.docstring or ''}"))
    items = _same_file_items(task, tree, mentioned, shown or frozenset())
    if source_root:
        items += _import_items(task, tree, Path(source_root), mentioned)
    chosen: list[_Item] = []
    for item in sorted(items, key=lambda i: -i.score):
        trial = sorted(chosen + [item], key=lambda i: i.order)
        if tok.count(_render_context(trial)) <= budget:
            chosen = trial
    return chosen


def _render_context(items: list[_Item]) -> str:
    if not items:
        return ""
    body = "\n\n".join(f"# {item.crumb}\n{item.text}" for item in items)
    return ("Other code from this repository (signatures and short bodies; `...` marks a body "
            f"not shown):\n```python\n{body}\n```")


def _same_file_items(task: Task, tree: ast.Module, mentioned: set[str], shown: frozenset[int]) -> list[_Item]:
    lines = task.hollowed_file.splitlines()
    target_line = task.symbol.def_line
    enclosing = {id(n) for n in _ancestors(tree, target_line)}
    items: list[_Item] = []

    def add(node: ast.AST, text: str, name: str, kind_score: float) -> None:
        span = frozenset(range(_start(node), node.end_lineno + 1))
        if span <= shown:
            return
        distance = abs(node.lineno - target_line)
        score = kind_score + (100 if name.split(".")[-1] in mentioned else 0) - min(distance, 1000) / 100
        crumb = f"{task.path}:{node.lineno} {name} (same file)"
        items.append(_Item(text, crumb, score, (0, task.path, node.lineno), span))

    constants = [s for s in tree.body if isinstance(s, (ast.Assign, ast.AnnAssign))
                 and s.end_lineno - s.lineno < 3]
    if constants:
        text = "\n".join(_segment(lines, s) for s in constants)
        first = constants[0]
        span = frozenset(n for s in constants for n in range(s.lineno, s.end_lineno + 1))
        if not span <= shown:
            items.append(_Item(text, f"{task.path}:{first.lineno} module constants (same file)", 25,
                               (0, task.path, first.lineno), span))

    def walk(body: list[ast.stmt], owner: str | None, in_target_class: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.lineno == target_line or id(node) in enclosing:
                    continue
                name = f"{owner}.{node.name}" if owner else node.name
                add(node, _function_text(lines, node, short=True), name, 50 if in_target_class else 20)
            elif isinstance(node, ast.ClassDef):
                name = f"{owner}.{node.name}" if owner else node.name
                inside = id(node) in enclosing
                if not inside:
                    add(node, _class_header(lines, node), name, 20)
                walk(node.body, name, inside)
    walk(tree.body, None, False)
    return items


def _segment(lines: list[str], node: ast.AST) -> str:
    return textwrap.dedent("\n".join(lines[_start(node) - 1 : node.end_lineno]))


def _function_text(lines: list[str], node, *, short: bool) -> str:
    """The whole function when short (and ``short``), else its header, docstring and ``...``."""
    if short and node.end_lineno - _start(node) + 1 <= SHORT_BODY_LINES:
        return _segment(lines, node)
    header_end = node.body[0].lineno - 1
    head = textwrap.dedent("\n".join(lines[_start(node) - 1 : max(header_end, node.lineno)]))
    if node.body[0].lineno == node.lineno:  # one-line def: the body shares the header's line
        return ast.unparse(_stub(node))
    body_indent = " " * 4
    doc = ast.get_docstring(node)
    extra = f'{body_indent}"""{doc.strip().splitlines()[0]}"""\n' if doc else ""
    return f"{head}\n{extra}{body_indent}..."


def _class_header(lines: list[str], node: ast.ClassDef, *, methods: bool = False) -> str:
    """``class X(Base):`` with its docstring's first line and class-level fields; with
    ``methods``, the signatures of its public methods and ``__init__`` too."""
    head = textwrap.dedent("\n".join(lines[_start(node) - 1 : node.body[0].lineno - 1])).rstrip()
    if not head.rstrip().endswith(":"):
        return ast.unparse(_stub(node))
    out = [head]
    doc = ast.get_docstring(node)
    if doc:
        out.append(f'    """{doc.strip().splitlines()[0]}"""')
    for stmt in node.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.end_lineno - stmt.lineno < 3:
            out.append(textwrap.indent(_segment(lines, stmt), "    "))
        elif methods and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and (not stmt.name.startswith("_") or stmt.name == "__init__"):
            out.append(textwrap.indent(_function_text(lines, stmt, short=False), "    "))
    if len(out) == 1:
        out.append("    ...")
    return "\n".join(out)


def _stub(node: ast.AST) -> ast.AST:
    """A copy of a def or class whose body is ``...``."""
    clone = pyast.parse(ast.unparse(node)).body[0]
    clone.body = [ast.Expr(ast.Constant(...))]
    return clone


# --- imports from the same repository -----------------------------------------------------


def _package_root(task: Task, source_root: Path) -> Path:
    """The folder that the target's module name is relative to (``src`` in a src layout)."""
    parts = list(Path(task.path).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    depth = len(task.symbol.module.split("."))
    return source_root.joinpath(*parts[: max(len(parts) - depth, 0)])


def _module_file(root: Path, dotted: str) -> Path | None:
    if not dotted:
        return None
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The dotted module a ``from  import`` in ``module`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        package = package[: max(len(package) - (node.level - 1), 0)]
    return ".".join(package + ([node.module] if node.module else []))


class _Files:
    """Parsed files of the source tree, read once; the target's file is the hollowed copy."""

    def __init__(self, task: Task, source_root: Path):
        self.task = task
        self.source_root = source_root
        self.target_file = (source_root / task.path).resolve()
        self.cache: dict[Path, tuple[list[str], ast.Module] | None] = {}

    def get(self, path: Path) -> tuple[list[str], ast.Module] | None:
        path = path.resolve()
        if path not in self.cache:
            text = None
            if path == self.target_file:
                text = self.task.hollowed_file
            else:
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    text = None
            tree = _parse(text) if text is not None else None
            self.cache[path] = None if tree is None else (text.splitlines(), tree)
        return self.cache[path]

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.source_root.resolve()).as_posix()
        except ValueError:
            return path.name


def _import_items(task: Task, tree: ast.Module, source_root: Path, mentioned: set[str]) -> list[_Item]:
    root = _package_root(task, source_root)
    files = _Files(task, source_root)
    items: list[_Item] = []
    seen: set[tuple[str, int]] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            module = _absolute(task.symbol.module, task.path.endswith("__init__.py"), stmt)
            for alias in stmt.names:
                if alias.name == "*":
                    continue
                shown_as = alias.asname or alias.name
                found = _resolve_name(root, module, alias.name, files, depth=0)
                if found is None:
                    sub = _module_file(root, f"{module}.{alias.name}")
                    if sub is not None:
                        items += _module_items(sub, files, shown_as, mentioned, seen)
                    continue
                path, node = found
                key = (str(path), node.lineno)
                if key in seen:
                    continue
                seen.add(key)
                lines = files.get(path)[0]
                score = 30 + (100 if shown_as in mentioned or alias.name in mentioned else 0)
                defined = getattr(node, "name", alias.name)
                crumb = f"{files.rel(path)}:{node.lineno} {defined} (imported by {task.path}" + \
                    (f" as {shown_as})" if shown_as != defined else ")")
                items.append(_Item(_signature_text(lines, node), crumb, score, (1, files.rel(path), node.lineno)))
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                path = _module_file(root, alias.name)
                if path is not None:
                    items += _module_items(path, files, alias.asname or alias.name, mentioned, seen)
    return items


def _resolve_name(root: Path, module: str, name: str, files: _Files, depth: int):
    """(file, defining node) of ``name`` in ``module``, following ``from x import name``."""
    path = _module_file(root, module)
    parsed = files.get(path) if path is not None else None
    if parsed is None or depth > 3:
        return None
    _, tree = parsed
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == name:
            return path, stmt
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return path, stmt
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if (alias.asname or alias.name) == name:
                    source = _absolute(_module_of(root, path), path.name == "__init__.py", stmt)
                    return _resolve_name(root, source, alias.name, files, depth + 1)
    return None


def _module_of(root: Path, path: Path) -> str:
    try:
        parts = list(path.resolve().relative_to(root.resolve()).with_suffix("").parts)
    except ValueError:
        return ""
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _module_items(path: Path, files: _Files, shown_as: str, mentioned: set[str],
                  seen: set[tuple[str, int]]) -> list[_Item]:
    """Public top-level definitions of a module imported whole (``import pkg.mod``)."""
    parsed = files.get(path)
    if parsed is None:
        return []
    lines, tree = parsed
    items = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and not stmt.name.startswith("_") and (str(path), stmt.lineno) not in seen:
            seen.add((str(path), stmt.lineno))
            score = 10 + (100 if stmt.name in mentioned else 0)
            crumb = f"{files.rel(path)}:{stmt.lineno} {shown_as}.{stmt.name} (module imported by {files.task.path})"
            items.append(_Item(_signature_text(lines, stmt), crumb, score, (1, files.rel(path), stmt.lineno)))
    return items


def _signature_text(lines: list[str], node: ast.AST) -> str:
    if isinstance(node, ast.ClassDef):
        return _class_header(lines, node, methods=True)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return _function_text(lines, node, short=False)
    text = _segment(lines, node)
    if node.end_lineno - node.lineno < 3:
        return text
    target = node.targets[0] if isinstance(node, ast.Assign) else node.target
    return f"{ast.unparse(target)} = ..."
