"""The scripted solver: a script's answers go through extraction, verification and feedback
like a model's, turn by turn; it is registered like every other kind (one file, one line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from regrow.config import RunConfig
from regrow.errors import ConfigError
from regrow.report.runs import build_report
from regrow.api import open_store, run
from regrow.solve.solvers import REGISTRY, check_spec, make_solver

ADD = "```python\nresult = a + b\nreturn result\n```"


def script(tmp_path: Path, answers: dict) -> Path:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"format": "regrow-script/1", "answers": answers}), encoding="utf-8")
    return path


def test_a_script_fixes_a_malformed_first_answer_on_the_second_turn(tmp_path, calc_repo):
    path = script(tmp_path, {"calc.ops:add": ["I am not sure what to write.", ADD],
                             "*": ["```python\nreturn None\n```"]})
    config = RunConfig(home=tmp_path / "home", python=Path(sys.executable), solver=f"scripted:{path}", turns=2,
                       workers=2, timeout=30)
    rep = build_report(open_store(config), run(str(calc_repo), config))
    assert rep.solved_tasks == 1 and rep.pass_at_first_turn == 0.0
    rows = {(r["task_id"], r["turn"]): r["status"] for r in open_store(config).query(
        "SELECT task_id, turn, status FROM attempts WHERE run_id=?", (rep.run_id,))}
    assert rows[("calc.ops:add", 0)] == "malformed" and rows[("calc.ops:add", 1)] == "solved"
    assert rows[("calc.ops:clamp", 0)] == rows[("calc.ops:clamp", 1)] == "failed"


def test_the_same_script_names_the_same_run_wherever_it_lies(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_solver(f"scripted:{script(tmp_path / 'a', {'*': ['x']})}")
    b = make_solver(f"scripted:{script(tmp_path / 'b', {'*': ['x']})}")
    c = make_solver(f"scripted:{script(tmp_path, {'*': ['y']})}")
    assert a.identity == b.identity != c.identity


@pytest.mark.parametrize("text, says", [
    (None, "no such file"),
    ("not json", "not a JSON script"),
    ('{"answers": {}}', "expected"),
    ('{"format": "regrow-script/1", "answers": {"t": []}}', "non-empty list"),
])
def test_a_bad_script_is_one_clear_error(tmp_path, text, says):
    path = tmp_path / "s.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=says):
        make_solver(f"scripted:{path}")


def test_every_registered_kind_names_a_module_with_a_factory():
    import importlib
    for kind, entry in REGISTRY.items():
        module = importlib.import_module(f"regrow.solve.solvers.{entry.module}")
        assert callable(module.from_spec), kind
    check_spec("scripted:whatever.json")  # the file is read when the solver is built
