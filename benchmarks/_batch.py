"""What the reward benchmarks share: the calc fixture and completions of mixed quality.

`reward.py`, `serve_load.py` and `ray_scale.py` score the same kinds of candidate, made from a
task's reference body: right (fenced), right (a plain continuation), wrong (``return None``), a
mutated reference, and, where asked, prose with no code.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROSE = "I am not sure how to write this function."


def calc_fixture(base: Path) -> str:
    """The calc package of tests/conftest.py written under ``base``; its path."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _repos import make_repo  # noqa: E402
    from conftest import CALC_FILES  # noqa: E402
    return str(make_repo(base / "calc", CALC_FILES))


def mutate(body: str) -> str:
    """The body with its first ``+``, ``<`` or ``return`` changed (or ``return None`` appended)."""
    for a, b in (("+", "-"), ("<", "<="), ("return ", "return 1 + ")):
        if a in body:
            return body.replace(a, b, 1)
    return body + "\nreturn None"


def completions_for(task, n: int, *, prose: bool = True) -> list[str]:
    """``n`` completions for ``task``, cycling through the kinds above."""
    ref = task.reference_body
    kinds = [f"```python\n{ref}\n```", ref, "```python\nreturn None\n```", f"```python\n{mutate(ref)}\n```"]
    if prose:
        kinds.append(PROSE)
    return [kinds[i % len(kinds)] for i in range(n)]
