"""Task strength on a real throwaway package: mutants of each reference, verified for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import regrow
from _repos import make_repo
from regrow.api import measure_strength, open_store, prepare, run
from regrow.config import RunConfig
from regrow.report.runs import build_report
from regrow.tasks.strength import FORMAT, diff, mutants

FILES = {
    "pyproject.toml": """
        [project]
        name = "weak"
        version = "0.1.0"
    """,
    "weak/__init__.py": "",
    "weak/ops.py": '''
        def double_sum(xs):
            """Twice the sum of xs."""
            total = 0
            for x in xs:
                total += x * 2
            return total


        def describe(n):
            label = "big" if n > 10 else "small"
            return label.upper()
    ''',
    "weak/table.py": '''
        def scaled(n):
            factor = 3
            return [i * factor for i in range(n)]


        TABLE = scaled(4)
    ''',
    "tests/test_ops.py": '''
        from weak.ops import describe, double_sum


        def test_double_sum():
            assert double_sum([1, 2, 3]) == 12
            assert double_sum([]) == 0
            assert double_sum([-4]) == -8


        def test_describe():
            assert describe(50) == "BIG"
    ''',
    "tests/test_table.py": '''
        from weak.table import TABLE, scaled


        def test_table():
            assert isinstance(scaled(0), list)  # calls it (covers it) but notices nothing of its values
            assert TABLE == [0, 3, 6, 9]  # computed when the module was imported
    ''',
}


def cfg(home: Path, **kw) -> RunConfig:
    return RunConfig(**{"home": home, "python": Path(sys.executable), "workers": 2, "timeout": 30,
                        "solver": "oracle", **kw})


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("weak") / "weak", FILES)
    home = tmp_path_factory.mktemp("home")
    tasks = measure_strength(str(root), cfg(home))
    return root, home, {t.task_id: t for t in tasks}


def test_mutants_cover_the_operators_and_are_distinct():
    body = "total = 0\nfor i in xs:\n    if i < 3 and ok:\n        break\n    total += i\nreturn total == 1\n"
    found, equivalent = mutants(body)
    texts = [m.body for m in found]
    assert len(texts) == len(set(texts)) and body not in texts and equivalent == 0
    ops = {m.op for m in found}
    assert {"constant", "assign", "delete", "boundary", "compare", "bool", "loop", "arith", "negate",
            "return"} <= ops
    assert "    if i <= 3 and ok:" in {ln for t in texts for ln in t.splitlines()}
    assert "return None" in {ln for t in texts for ln in t.splitlines()}
    assert mutants('"""only a docstring"""\n') == ([], 0)


def test_a_strongly_tested_function_kills_every_mutant(measured):
    _, _, tasks = measured
    rec = tasks["weak.ops:double_sum"].extra["strength"]
    assert rec["format"] == FORMAT
    assert rec["mutants"] >= 8 and rec["survived"] == 0 and rec["strength"] == 1.0
    assert rec["killed"] + rec["timeout"] == rec["mutants"]
    assert rec["survivors"] == []


def test_a_weakly_tested_function_reports_its_survivors_with_diffs(measured):
    _, _, tasks = measured
    rec = tasks["weak.ops:describe"].extra["strength"]
    assert rec["survived"] >= 3 and rec["killed"] >= 3
    assert rec["strength"] == pytest.approx(rec["killed"] / (rec["killed"] + rec["survived"]), abs=1e-4)
    assert rec["strength"] < 0.8
    diffs = rec["survivors"]
    assert len(rec["survivor_ops"]) == len(diffs) and "boundary" in rec["survivor_ops"]
    assert len(diffs) == rec["survived"]
    assert any('+label = "big" if n > 11 else "small"' in d for d in diffs)  # the boundary is never tested
    assert any('"small"' in d and '+label = "big" if n > 10 else ""' in d for d in diffs)  # nor the else branch
    assert all(d.startswith("--- reference\n+++ mutant\n") for d in diffs)


def test_a_function_that_runs_at_import_time_is_mutated_at_import_time_too(measured):
    """scaled's only value check is TABLE, computed at import: swapping the code of the live
    function would leave it as it was and every mutant would wrongly survive."""
    root, home, tasks = measured
    task = tasks["weak.table:scaled"]
    rec = task.extra["strength"]
    assert rec["survived"] == 0 and rec["killed"] >= 4 and rec["strength"] == 1.0
    prep = prepare(str(root), cfg(home))
    try:
        mutant = task.reference_body.replace("factor = 3", "factor = 4")
        assert diff(task.reference_body, mutant)
        assert prep.verifier.verify(task, task.reference_body).solved
        verdict = prep.verifier.verify(task, mutant)
        assert not verdict.solved
        assert any("TABLE" in o.message for o in verdict.outcomes)
        assert verdict.extra.get("path") == "fresh"  # the engine imported the mutated module afresh
    finally:
        prep.close()


def test_strength_is_stored_and_not_measured_twice(measured):
    root, home, tasks = measured
    prep = prepare(str(root), cfg(home))
    prep.close()
    stored = {t.task_id: t for t in prep.valid}
    assert stored["weak.ops:describe"].extra["strength"] == tasks["weak.ops:describe"].extra["strength"]
    again = {t.task_id: t for t in measure_strength(str(root), cfg(home))}
    # a second measurement would have its own timing: the stored record came back unchanged
    assert again["weak.ops:describe"].extra["strength"] == tasks["weak.ops:describe"].extra["strength"]


def test_min_strength_leaves_out_weak_tasks_and_the_report_summarises_strength(measured):
    root, home, tasks = measured
    store = open_store(cfg(home))
    everything = build_report(store, run(str(root), cfg(home)))
    strong = build_report(store, run(str(root), cfg(home, min_strength=0.9)))
    assert everything.chosen == 3 and strong.chosen == 2
    assert "weak.ops:describe" not in {p["task"] for p in strong.per_task}
    summ = strong.tasks["strength"]
    assert summ["known"] == 3 and summ["weak"] == 1 and summ["median"] == 1.0
    assert strong.run_id != everything.run_id


def test_the_strength_command_lists_weakest_first(measured):
    root, home, _ = measured
    src = str(Path(regrow.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    base = [sys.executable, "-m", "regrow", "strength", str(root), "--home", str(home), "--python", sys.executable]
    res = subprocess.run([*base, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [t["task_id"] for t in data["tasks"]][0] == "weak.ops:describe"
    assert data["summary"]["weak"] == 1 and data["summary"]["known"] == 3
    res = subprocess.run(base, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if "weak." in ln]
    assert lines[0].split()[1] == "weak.ops:describe"
    assert "1 of 3 tasks below 80.0%" in res.stdout
    res = subprocess.run([sys.executable, "-m", "regrow", "report", "--home", str(home)], env=env,
                         capture_output=True, text=True, timeout=120)  # the runs of the --min-strength test
    assert res.returncode == 0, res.stderr
    assert "median strength" in res.stdout and "weak (below 80.0%)" in res.stdout
