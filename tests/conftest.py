"""Shared fixtures: a small real package with tests, built fresh in tmp_path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from _repos import make_repo

CALC_FILES = {
    "pyproject.toml": """
        [project]
        name = "calc"
        version = "0.1.0"
    """,
    "calc/__init__.py": """
        from .ops import add, clamp, mean
    """,
    "calc/ops.py": '''
        """Arithmetic helpers."""
        LIMIT = 100


        def add(a, b):
            """Add two numbers."""
            result = a + b
            return result


        def clamp(x, lo, hi):
            """Clamp x into [lo, hi]."""
            if x < lo:
                return lo
            if x > hi:
                return hi
            return x


        def mean(xs):
            """Arithmetic mean of a non-empty sequence."""
            total = sum(xs)
            return total / len(xs)


        def unused(x):
            y = x * 2
            return y


        def weakly_tested(x):
            y = x + 1
            return y


        def tiny(x):
            return x
    ''',
    "calc/shapes.py": '''
        import abc
        from typing import overload


        class Shape(abc.ABC):
            @abc.abstractmethod
            def area(self):
                """Area of the shape."""

            def describe(self):
                """A one-line description."""
                name = type(self).__name__
                return f"{name} with area {self.area():.2f}"


        class Square(Shape):
            def __init__(self, side):
                if side < 0:
                    raise ValueError("negative side")
                self.side = side

            def area(self):
                s = self.side
                return s * s

            @property
            def perimeter(self):
                """Sum of the sides."""
                s = self.side
                return 4 * s


        @overload
        def scale(x: int) -> int: ...
        @overload
        def scale(x: float) -> float: ...
        def scale(x):
            factor = 2
            return x * factor
    ''',
    "tests/test_ops.py": '''
        from calc import add, clamp, mean
        from calc.ops import weakly_tested, tiny


        def test_add():
            assert add(2, 3) == 5
            assert add(-1, 1) == 0


        def test_clamp():
            assert clamp(5, 0, 3) == 3
            assert clamp(-1, 0, 3) == 0
            assert clamp(2, 0, 3) == 2


        def test_mean():
            assert mean([1, 2, 3]) == 2
            assert mean([2.5]) == 2.5


        def test_weak():
            try:
                weakly_tested(1)
            except Exception:
                pass


        def test_tiny():
            assert tiny(3) == 3
    ''',
    "tests/test_shapes.py": '''
        import pytest
        from calc.shapes import Square, scale


        def test_square():
            sq = Square(3)
            assert sq.area() == 9
            assert sq.perimeter == 12
            assert sq.describe() == "Square with area 9.00"


        def test_negative():
            with pytest.raises(ValueError):
                Square(-1)


        def test_scale():
            assert scale(2) == 4
    ''',
}

# Valid tasks the calc fixture must produce (covered, non-trivial, tests notice a missing body).
CALC_VALID = {
    "calc.ops:add", "calc.ops:clamp", "calc.ops:mean", "calc.shapes:Shape.describe",
    "calc.shapes:Square.__init__", "calc.shapes:Square.area", "calc.shapes:Square.perimeter", "calc.shapes:scale",
}


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", CALC_FILES)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def this_python() -> Path:
    """The interpreter running the tests: it has pytest and coverage, like a user's own env."""
    return Path(sys.executable)
