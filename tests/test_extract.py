"""extract_body: every answer shape a model produces, and the errors for unusable ones."""

from __future__ import annotations

import ast
import textwrap
import time

import pytest

from regrow.solve.extract import (
    CHANGED_SIGNATURE,
    EMPTY,
    NO_CODE,
    OTHER_CODE,
    SYNTAX,
    complete_prefix,
    extract_body,
    splice_body,
)
from regrow.core.symbol import Symbol
from regrow.core.task import Task

STUB = "raise NotImplementedError"


def make_task(source: str, local_name: str, *, module: str = "mod", path: str = "mod.py") -> Task:
    """A `Task` for ``local_name`` (``func`` or ``Class.meth``) in ``source``, hollowed here.

    The body after the docstring becomes ``raise NotImplementedError``; everything else in the
    file is kept as written. Also imported by the other solver-side test modules.
    """
    source = textwrap.dedent(source).lstrip("\n")
    tree = ast.parse(source)
    parts = local_name.split(".")
    scope, parent, node = tree, None, None
    for part in parts:
        node = next(n for n in scope.body if getattr(n, "name", None) == part)
        if part != parts[-1]:
            parent, scope = node, node
    lines = source.splitlines()
    body = node.body
    doc = ast.get_docstring(node, clean=False)
    first = body[1] if doc is not None and len(body) > 1 else body[0]
    body_start = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])
    indent = lines[body_start - 1][: len(lines[body_start - 1]) - len(lines[body_start - 1].lstrip())]
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    symbol = Symbol(
        qualname=f"{module}:{local_name}",
        module=module,
        path=path,
        name=node.name,
        kind="method" if isinstance(parent, ast.ClassDef) else "function",
        is_async=isinstance(node, ast.AsyncFunctionDef),
        start=start,
        def_line=node.lineno,
        body_start=body_start,
        end=node.end_lineno,
        signature=textwrap.dedent("\n".join(lines[node.lineno - 1 : body[0].lineno - 1])),
        docstring=ast.get_docstring(node),
        decorators=tuple(ast.unparse(d) for d in node.decorator_list),
        class_name=parent.name if isinstance(parent, ast.ClassDef) else None,
        parent=f"{module}:{parent.name}" if parent is not None else None,
        depth=len(parts) - 1,
        n_statements=len(body) - (doc is not None),
    )
    hollowed = lines[: body_start - 1] + [indent + STUB] + lines[node.end_lineno :]
    return Task(
        task_id=symbol.qualname,
        symbol=symbol,
        path=path,
        hollowed_file="\n".join(hollowed) + "\n",
        stub_start=body_start,
        stub_end=body_start,
        body_indent=indent,
        tests=("tests/test_mod.py::test_it",),
        reference_body=textwrap.dedent("\n".join(lines[body_start - 1 : node.end_lineno])),
        original_file=source,
    )


SOURCE = '''
import re
from typing import Iterable

LIMIT = 10


def add(a, b=1, *, scale: int = 1) -> int:
    """Return (a + b) * scale."""
    return (a + b) * scale


class Counter:
    """Counts words."""

    def __init__(self):
        self.seen = {}

    def count(self, words: Iterable[str]) -> dict:
        """Count each word."""
        for w in words:
            self.seen[w] = self.seen.get(w, 0) + 1
        return self.seen


async def fetch(url):
    return url
'''

ADD = make_task(SOURCE, "add")
COUNT = make_task(SOURCE, "Counter.count")
FETCH = make_task(SOURCE, "fetch")
COUNT_BODY = "for w in words:\n    self.seen[w] = self.seen.get(w, 0) + 1\nreturn self.seen"

# (id, task, answer, expected body or None, expected error kind)
CASES = [
    ("fenced python def", ADD,
     "```python\ndef add(a, b=1, *, scale: int = 1) -> int:\n    return a * scale + b * scale\n```",
     "return a * scale + b * scale", ""),
    ("fenced body only", ADD, "```python\nreturn (a + b) * scale\n```", "return (a + b) * scale", ""),
    ("untagged fence", ADD, "```\nreturn (a + b) * scale\n```", "return (a + b) * scale", ""),
    ("chatter around a fence", ADD,
     "Sure! Here is the implementation:\n\n```python\ndef add(a, b=1, *, scale=1):\n"
     "    total = a + b\n    return total * scale\n```\n\nThis multiplies the sum.",
     "total = a + b\nreturn total * scale", ""),
    ("unterminated fence", ADD, "Here you go:\n```python\ndef add(a, b=1, *, scale=1):\n"
     "    return (a + b) * scale\n", "return (a + b) * scale", ""),
    ("bare def with chatter", ADD, "Here is the code:\n\ndef add(a, b=1, *, scale=1):\n"
     "    return (a + b) * scale\n\nIt adds the numbers.", "return (a + b) * scale", ""),
    ("bare body", ADD, "    s = a + b\n    return s * scale", "s = a + b\nreturn s * scale", ""),
    ("first line lost its indentation", ADD, "s = a + b\n        return s * scale",
     "s = a + b\nreturn s * scale", ""),
    ("tabs", COUNT, "```python\n\tfor w in words:\n\t\tself.seen[w] = self.seen.get(w, 0) + 1\n"
     "\treturn self.seen\n```", COUNT_BODY, ""),
    ("method wrapped in its class", COUNT,
     "```python\nclass Counter:\n    def count(self, words):\n        for w in words:\n"
     "            self.seen[w] = self.seen.get(w, 0) + 1\n        return self.seen\n```",
     COUNT_BODY, ""),
    ("class with an unchanged sibling method", COUNT,
     "```python\nclass Counter:\n    \"\"\"Counts words.\"\"\"\n\n    def __init__(self):\n"
     "        self.seen = {}\n\n    def count(self, words):\n        for w in words:\n"
     "            self.seen[w] = self.seen.get(w, 0) + 1\n        return self.seen\n```",
     COUNT_BODY, ""),
    ("method without its class, with self", COUNT,
     "def count(self, words: Iterable[str]) -> dict:\n    for w in words:\n"
     "        self.seen[w] = self.seen.get(w, 0) + 1\n    return self.seen", COUNT_BODY, ""),
    ("decorated def", ADD, "```python\n@functools.cache\ndef add(a, b=1, *, scale=1):\n"
     "    return (a + b) * scale\n```", "return (a + b) * scale", ""),
    ("repeated docstring", ADD, '```python\ndef add(a, b=1, *, scale=1):\n    """Return (a + b) '
     '* scale."""\n    return (a + b) * scale\n```', "return (a + b) * scale", ""),
    ("repeated docstring in a bare body", ADD, '"""Return (a + b) * scale."""\nreturn (a + b) * scale',
     "return (a + b) * scale", ""),
    ("one-line def", ADD, "```python\ndef add(a, b=1, *, scale=1): return (a + b) * scale\n```",
     "return (a + b) * scale", ""),
    ("several blocks, the defining one wins", ADD,
     "```python\ndef add(a, b=1, *, scale=1):\n    return (a + b) * scale\n```\nUsage:\n"
     "```python\nprint(add(1, 2))\n```", "return (a + b) * scale", ""),
    ("several body blocks, the last parseable wins", ADD,
     "First try:\n```python\nreturn a +\n```\nFixed:\n```python\nreturn (a + b) * scale\n```",
     "return (a + b) * scale", ""),
    ("shell block skipped", ADD, "```bash\npip install nothing\n```\n```python\nreturn a + b\n```",
     "return a + b", ""),
    ("new import becomes local", ADD, "```python\nimport math\n\ndef add(a, b=1, *, scale=1):\n"
     "    return math.fsum([a, b]) * scale\n```", "import math\nreturn math.fsum([a, b]) * scale", ""),
    ("import already in the file is dropped", ADD, "```python\nimport re\n\ndef add(a, b=1, *, scale=1):\n"
     "    return (a + b) * scale\n```", "return (a + b) * scale", ""),
    ("example usage dropped", ADD, "```python\ndef add(a, b=1, *, scale=1):\n    return (a + b) * scale\n\n"
     "print(add(1))\nassert add(1, 1) == 2\nif __name__ == '__main__':\n    add(2)\n```",
     "return (a + b) * scale", ""),
    ("comments kept", ADD, "```python\ndef add(a, b=1, *, scale=1):\n    # sum first\n"
     "    s = a + b\n    return s * scale  # then scale\n```",
     "# sum first\ns = a + b\nreturn s * scale  # then scale", ""),
    ("nested helper inside the body", ADD, "```python\ndef helper(x):\n    return x * scale\n"
     "return helper(a + b)\n```", "def helper(x):\n    return x * scale\nreturn helper(a + b)", ""),
    ("async target answered async", FETCH, "```python\nasync def fetch(url):\n    await asyncio.sleep(0)\n"
     "    return url\n```", "await asyncio.sleep(0)\nreturn url", ""),
    ("multi-line string in an indented bare body", ADD,
     '    text = """\nfirst\n"""\n    return text * scale', 'text = """\nfirst\n"""\nreturn text * scale', ""),
    ("a lone word of chatter after bare code", ADD, "return a + b\nDone", "return a + b", ""),
    ("crlf line endings", ADD, "```python\r\ndef add(a, b=1, *, scale=1):\r\n    return a + b\r\n```",
     "return a + b", ""),
    # rejections
    ("no code", ADD, "I am sorry, I cannot help with that.", None, NO_CODE),
    ("empty fence", ADD, "```python\n```", None, NO_CODE),
    ("renamed function", ADD, "```python\ndef add_numbers(a, b=1, *, scale=1):\n    return a + b\n```",
     None, CHANGED_SIGNATURE),
    ("changed parameters", ADD, "```python\ndef add(x, y):\n    return x + y\n```", None, CHANGED_SIGNATURE),
    ("dropped a default", ADD, "```python\ndef add(a, b, *, scale=1):\n    return a + b\n```",
     None, CHANGED_SIGNATURE),
    ("async dropped", FETCH, "```python\ndef fetch(url):\n    return url\n```", None, CHANGED_SIGNATURE),
    ("extra top-level helper", ADD, "```python\ndef _helper(x):\n    return x\n\n"
     "def add(a, b=1, *, scale=1):\n    return _helper(a + b) * scale\n```", None, OTHER_CODE),
    ("changed module constant", ADD, "```python\nLIMIT = 99\n\ndef add(a, b=1, *, scale=1):\n"
     "    return a + b\n```", None, OTHER_CODE),
    ("changed sibling method", COUNT, "```python\nclass Counter:\n    def __init__(self):\n"
     "        self.seen = []\n\n    def count(self, words):\n        return self.seen\n```", None, OTHER_CODE),
    ("class without the target", ADD, "```python\nclass Adder:\n    def plus(self, a, b):\n"
     "        return a + b\n```", None, OTHER_CODE),
    ("syntax error", ADD, "```python\ndef add(a, b=1, *, scale=1):\n    return (a + b * scale\n```",
     None, SYNTAX),
    ("body does not compile in place", ADD, "```python\nawait something()\nreturn a\n```", None, SYNTAX),
    ("only the docstring", ADD, '```python\ndef add(a, b=1, *, scale=1):\n    """Adds."""\n```',
     None, EMPTY),
]


@pytest.mark.parametrize(("task", "answer", "body", "kind"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_extract_body_handles_each_answer_shape(task, answer, body, kind):
    result = extract_body(answer, task)
    assert result.body == body, result.error
    assert result.kind == kind
    if body is None:
        assert result.error and not result.ok
    else:
        assert result.error == "" and result.ok


def test_accepted_bodies_compile_when_spliced_into_the_hollowed_file():
    for _, task, answer, body, _ in CASES:
        if body is not None:
            spliced = splice_body(task, extract_body(answer, task).body)
            compile(spliced, "mod.py", "exec")
            assert STUB not in spliced


def test_splice_indents_the_body_to_the_stub_and_keeps_the_rest_of_the_file():
    spliced = splice_body(COUNT, COUNT_BODY)
    assert "        for w in words:\n            self.seen[w]" in spliced
    assert spliced.replace(textwrap.indent(COUNT_BODY, "        "), STUB.join(["        ", ""])) \
        == COUNT.hollowed_file


def test_splicing_the_reference_body_gives_back_the_original_file():
    for task in (ADD, COUNT, FETCH):
        assert splice_body(task, task.reference_body) == task.original_file


def test_errors_tell_the_model_what_to_fix():
    renamed = extract_body("def add_numbers(a, b=1, *, scale=1):\n    return a", ADD)
    assert "`add_numbers`" in renamed.error and "`add`" in renamed.error
    params = extract_body("def add(x, y):\n    return x", ADD)
    assert "add(x, y)" in params.error and "add(a, b=1, *, scale=1)" in params.error
    helper = extract_body("def _helper():\n    pass\n\ndef add(a, b=1, *, scale=1):\n    return a", ADD)
    assert "`_helper`" in helper.error
    broken = extract_body("```python\nreturn (a +\n```", ADD)
    assert broken.error.startswith("the code does not parse") and "line 1" in broken.error


def test_notes_list_what_was_dropped_or_moved():
    result = extract_body("import math\nimport re\n\ndef add(a, b=1, *, scale=1):\n"
                          '    """doc"""\n    return math.floor(a)\n\nprint(add(1))', ADD)
    assert result.ok
    assert result.notes == (
        "moved `import math` into the body",
        "dropped `import re` copied unchanged from the file",
        "dropped `print(add(1))` outside the function",
        "dropped the repeated docstring",
    )


def test_whole_file_repeated_with_the_target_filled_in_is_accepted():
    answer = "```python\n" + ADD.original_file + "```"
    assert extract_body(answer, ADD).body == ADD.reference_body
    answer = "```python\n" + COUNT.original_file + "```"
    assert extract_body(answer, COUNT).body == COUNT.reference_body


def test_the_last_definition_wins_when_the_model_revises_itself():
    answer = ("```python\ndef add(a, b=1, *, scale=1):\n    return a\n```\nBetter:\n"
              "```python\ndef add(a, b=1, *, scale=1):\n    return (a + b) * scale\n```")
    assert extract_body(answer, ADD).body == "return (a + b) * scale"


def test_a_string_in_the_body_keeps_its_content():
    answer = '```python\ndef add(a, b=1, *, scale=1):\n    text = """\nline\n"""\n    return text\n```'
    body = extract_body(answer, ADD).body
    assert body == 'text = """\nline\n"""\nreturn text'


def test_a_long_essay_is_searched_quickly():
    prose = "\n".join(f"Step {i}: we add the numbers, then we scale them." for i in range(300))
    started = time.perf_counter()
    assert extract_body(prose, ADD).kind == NO_CODE
    answer = prose + "\n\ndef add(a, b=1, *, scale=1):\n    return a * scale\n\n" + prose
    assert extract_body(answer, ADD).body == "return a * scale"
    assert time.perf_counter() - started < 2.0


def test_a_file_with_lambdas_still_finds_the_target():
    src = "f = lambda x: x + 1\n\n\ndef g(x):\n    y = f(x)\n    return y\n"
    task = make_task(src, "g")
    assert extract_body("```python\ndef g(x):\n    return f(x)\n```", task).body == "return f(x)"


def test_complete_prefix_drops_the_unfinished_tail_only():
    assert complete_prefix("x = 1\ny = x +") == "x = 1"
    assert complete_prefix("x = 1\nreturn x\n") == "x = 1\nreturn x"
    # the last line may look whole but was cut mid-token: it goes unless a newline followed it
    assert complete_prefix("x = 1\nreturn x") == "x = 1"
    assert complete_prefix("for a in b:\n    c(a)\nif c:\n    d = (1,\n") == "for a in b:\n    c(a)"
    assert complete_prefix('s = """open\nstill open') == ""
    assert complete_prefix("# a comment\nreturn (") == ""
    assert complete_prefix("") == ""


def test_complete_prefix_result_is_a_body_that_compiles_in_place():
    truncated = "total = a + b\nfor i in range(3):\n    total += i\nreturn total * sc"
    body = complete_prefix(truncated)
    assert body == "total = a + b\nfor i in range(3):\n    total += i"
    found = extract_body(body, ADD)
    assert found.ok
    compile(splice_body(ADD, found.body), "mod.py", "exec")


def test_bare_indented_code_that_does_not_parse_is_not_cut_down_to_a_fragment():
    # a continuation of the file is code throughout: a broken line is reported, not dropped
    broken_head = "\n    if a and\n        b:\n        return a\n    return a + b\n"
    found = extract_body(broken_head, ADD)
    assert found.body is None and found.kind == SYNTAX and "does not parse" in found.error
    broken_tail = "\n    total = a + b\n    if total:\n        return total +\n    return total\n"
    found = extract_body(broken_tail, ADD)
    assert found.body is None and found.kind == SYNTAX
    # chatter (unindented prose) around bare code is still cut off
    found = extract_body("Here it is:\n    total = a + b\n    return total * scale\nThat is all.", ADD)
    assert found.body == "total = a + b\nreturn total * scale"
