"""A small repository with real tests, prepared once per session for the red-team corpus."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from tests._repos import make_repo

FILES = {
    "calc/__init__.py": "",
    "calc/core.py": '''
        import math


        def mean(xs):
            """Arithmetic mean of a non-empty list."""
            if not xs:
                raise ValueError("empty")
            total = 0.0
            for x in xs:
                total += x
            return total / len(xs)


        def clamp(x, lo, hi):
            """x limited to [lo, hi]."""
            if lo > hi:
                raise ValueError("lo > hi")
            if x < lo:
                return lo
            return hi if x > hi else x


        def words(text):
            """Lower-cased words of text, in order."""
            out = []
            for w in text.split():
                out.append(w.lower())
            return out


        def sign(x):
            """-1, 0 or 1 by the sign of x."""
            if x < 0:
                return -1
            return 1 if x > 0 else 0


        class Stack:
            def __init__(self):
                self.items = []

            def push(self, x):
                """Push x; return the new size."""
                self.items.append(x)
                return len(self.items)

            def total(self):
                """Sum of the items."""
                acc = 0
                for x in self.items:
                    acc += x
                return acc
    ''',
    "tests/test_core.py": '''
        import pytest
        from calc.core import Stack, clamp, mean, sign, words


        def test_mean():
            assert mean([1, 2, 3, 4]) == 2.5
            assert mean([10]) == 10.0


        def test_mean_empty():
            with pytest.raises(ValueError):
                mean([])


        def test_clamp():
            assert clamp(5, 0, 10) == 5
            assert clamp(-3, 0, 10) == 0
            assert clamp(42, 0, 10) == 10


        def test_words():
            assert words("Hello Big World") == ["hello", "big", "world"]


        @pytest.mark.parametrize("x, want", [(-5, -1), (-1, -1), (0, 0), (1, 1), (7, 1), (2.5, 1)])
        def test_sign(x, want):
            assert sign(x) == want


        def test_stack():
            s = Stack()
            assert s.push(3) == 1
            assert s.push(4) == 2
            assert s.total() == 7
    ''',
}


def prepare_fixture(tmp: Path, *, trust: str = "strict", timeout: float = 20.0):
    """(Prepared, {task id: Task}) for the fixture repository, with the system interpreter."""
    from regrow.config import RunConfig
    from regrow.api import prepare

    repo = make_repo(tmp / "repo", FILES)
    config = RunConfig(home=tmp / "home", python=Path(sys.executable), workers=1, repeats=1, trust=trust,
                       timeout=timeout)
    prep = prepare(str(repo), config)
    return prep, {t.task_id: t for t in prep.valid}


def fixture_session(tmp_path_factory, name: str, *, timeout: float):
    """A module-scoped fixture's body: the prepared fixture repository, its verifier closed after."""
    prep, tasks = prepare_fixture(tmp_path_factory.mktemp(name), timeout=timeout)
    try:
        yield prep, tasks
    finally:
        prep.verifier.close()


def fallback_session(tmp_path_factory, name: str, *, timeout: float):
    """As `fixture_session`, but the engine runs as a machine without root would run it: no network
    or mount namespace, no unprivileged uid for children, no bind mount of the candidate; what
    stays is the audit hook, resource limits, the fingerprint of the copy and the parent's checks."""
    from regrow.verify.engine import EngineConfig
    from regrow.verify.verifier import Verifier

    prep, tasks = prepare_fixture(tmp_path_factory.mktemp(name), timeout=timeout)
    prep.verifier.close()
    v = prep.verifier
    fallback = Verifier(v.root, v.python, v.import_roots, calls=v.calls, config=v.config,
                        engine_config=EngineConfig(namespaces=False, drop_privileges=False, bind_candidate=False))
    try:
        yield replace(prep, verifier=fallback), tasks
    finally:
        fallback.close()
