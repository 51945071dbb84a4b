import ast
from pathlib import Path

import pytest

import regrow
from regrow.core.task import STUB, splice
from regrow.tasks.hollow import HollowConfig, eligibility, erase, make_task
from regrow.grok.parse import parse_text

SRC = '''\
import functools


class Box:
    """A box."""

    @functools.lru_cache
    def weight(self, factor: float = 1.0) -> float:
        """Weight of the box."""

        # contents first
        total = sum(self.items)
        return total * factor


def free(x,
         y=2):
    for i in range(x):
        y += i
    return y
'''


def test_erasing_keeps_decorators_signature_docstring_and_every_other_byte():
    sym = next(s for s in parse_text(SRC, "m.py", "m").symbols if s.name == "weight")
    hollowed, reference = erase(SRC, sym)
    assert '    @functools.lru_cache\n    def weight(self, factor: float = 1.0) -> float:\n' \
           '        """Weight of the box."""\n        raise NotImplementedError\n' in hollowed
    assert "contents first" not in hollowed and "sum(self.items)" not in hollowed
    assert hollowed.endswith(SRC[SRC.index("\n\ndef free"):])
    assert reference == "\n# contents first\ntotal = sum(self.items)\nreturn total * factor\n"


def test_a_task_points_at_its_stub_and_splicing_the_reference_restores_the_file():
    for sym in parse_text(SRC, "m.py", "m").symbols:
        task = make_task(SRC, sym, ("t::x",))
        assert task.hollowed_file.splitlines()[task.stub_start - 1].strip() == STUB
        assert splice(task, task.reference_body) == SRC


def test_splicing_reindents_a_body_written_at_any_indentation():
    sym = next(s for s in parse_text(SRC, "m.py", "m").symbols if s.name == "free")
    task = make_task(SRC, sym, ())
    text = splice(task, "        if x:\n            return x\n        return y\n")
    ast.parse(text)
    assert "    if x:\n        return x\n    return y\n" in text


@pytest.mark.parametrize("module", ["tasks/hollow.py", "grok/parse.py", "report/runs.py", "store/db.py", "cli.py"])
def test_round_trip_holds_for_every_function_of_real_code(module: str):
    """Erase then splice the reference: byte-identical on regrow's own modules."""
    path = Path(regrow.__file__).parent / module
    text = path.read_text()
    syms = [s for s in parse_text(text, module, "m").symbols if "oneliner" not in s.flags]
    assert syms
    for sym in syms:
        task = make_task(text, sym, ())
        assert splice(task, task.reference_body) == text, sym.qualname


def test_eligibility_names_a_reason_for_each_exclusion():
    syms = {s.name: s for s in parse_text(
        "import abc\nclass A:\n    @abc.abstractmethod\n    def f(self):\n        pass\n"
        "def g():\n    return 1\ndef h():\n    def inner():\n        a = 1\n        return a\n    return inner\n"
        "def test_x():\n    a = 1\n    assert a\n", "m.py", "m").symbols}
    cfg = HollowConfig(min_statements=2)
    assert eligibility(syms["f"], cfg) == "abstract"
    assert eligibility(syms["g"], cfg) == "trivial"
    assert eligibility(syms["inner"], cfg) == "nested function"
    assert eligibility(syms["test_x"], cfg) == "test code"
    assert eligibility(syms["h"], cfg) is None


def test_splicing_never_changes_the_inside_of_multiline_strings():
    src = 'def f():\n    """Doc."""\n    text = """\nkeep\n  as is\n"""\n    return text\n'
    sym = parse_text(src, "m.py", "m").symbols[0]
    task = make_task(src, sym, ())
    assert splice(task, task.reference_body) == src
    assert 'text = """\nkeep\n  as is\n"""' in splice(task, '        text = """\nkeep\n  as is\n"""\n        return text\n')
