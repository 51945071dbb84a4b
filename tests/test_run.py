"""End to end on a real throwaway package: grok, hollow, validate, run, resume, report, compare."""

from __future__ import annotations

import json
import subprocess

import pytest

from _repos import fixture_config, git_init, make_repo
from conftest import CALC_FILES, CALC_VALID
from regrow.errors import NoTestsError, SourceError
from regrow.report.runs import build_report, compare
from regrow.api import open_store, prepare, run


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("calc") / "calc", CALC_FILES)
    home = tmp_path_factory.mktemp("home")
    return root, home


cfg = fixture_config


def test_every_covered_nontrivial_function_becomes_a_valid_task_and_exclusions_have_reasons(calc):
    root, home = calc
    prep = prepare(str(root), cfg(home, solver="oracle"))
    assert {t.task_id for t in prep.valid} == CALC_VALID
    statuses = {t.task_id: (t.status, t.reason) for t in prep.tasks}
    assert statuses["calc.ops:weakly_tested"][0] == "untested"
    excluded = {e.task_id: e.reason for e in prep.excluded}
    assert excluded["calc.ops:unused"] == "not covered by any passing test"
    assert excluded["calc.ops:tiny"] == "trivial"
    assert excluded["calc.shapes:Shape.area"] == "abstract"
    assert all(reason for reason in excluded.values())
    assert prep.index.facts["n_tests"] == 8


def test_oracle_solves_every_valid_task_with_identical_text_and_null_solves_none(calc):
    root, home = calc
    store = open_store(cfg(home))
    oracle = build_report(store, run(str(root), cfg(home, solver="oracle")))
    null = build_report(store, run(str(root), cfg(home, solver="null")))
    assert oracle.chosen == len(CALC_VALID) and oracle.pass_at[1] == 1.0
    assert oracle.func_similarity == 1.0 and oracle.file_similarity == 1.0 and oracle.func_error == 0.0
    assert null.pass_at[1] == 0.0 and null.statuses == {"failed": len(CALC_VALID)}
    assert null.func_similarity < 1.0
    side = compare(store, [oracle.run_id, null.run_id])
    assert [r.solver for r in side] == ["oracle", "null"]


def test_a_run_resumes_where_it_stopped_without_repeating_work(calc):
    root, home = calc
    config = cfg(home, solver="oracle", run_id="resume-me")
    store = open_store(config)
    run(str(root), config)
    rows = {r["task_id"]: r["created"] for r in store.query("SELECT task_id, created FROM attempts WHERE run_id='resume-me'")}
    lost = sorted(rows)[:3]
    with store.write() as w:  # as if the process died before these three were verified
        w.executemany("DELETE FROM attempts WHERE run_id='resume-me' AND task_id=?", [(t,) for t in lost])
        w.execute("UPDATE runs SET finished=NULL WHERE run_id='resume-me'")
    assert not build_report(store, "resume-me").finished
    run(str(root), config)
    again = {r["task_id"]: r["created"] for r in store.query("SELECT task_id, created FROM attempts WHERE run_id='resume-me'")}
    assert set(again) == set(rows)
    assert all(again[t] == rows[t] for t in rows if t not in lost)  # untouched rows were not redone
    assert all(again[t] > rows[t] for t in lost)
    assert build_report(store, "resume-me").finished


def test_multi_turn_chains_stop_at_the_first_solved_turn_and_pass_at_k_uses_samples(calc):
    root, home = calc
    store = open_store(cfg(home))
    rep = build_report(store, run(str(root), cfg(home, solver="oracle", samples=2, turns=3, tasks=3, seed=1)))
    assert rep.chosen == 3 and rep.chains == 6 and rep.attempts == 6  # solved on turn 0: no retries
    assert rep.pass_at == {1: 1.0, 2: 1.0}
    nul = build_report(store, run(str(root), cfg(home, solver="null", samples=2, turns=2, tasks=3, seed=1)))
    assert nul.attempts == 12 and nul.pass_at == {1: 0.0, 2: 0.0}


def test_retrieval_baseline_proposes_bodies_of_other_functions(calc):
    root, home = calc
    store = open_store(cfg(home))
    rep = build_report(store, run(str(root), cfg(home, solver="retrieval")))
    rows = store.query("SELECT attempt FROM attempts WHERE run_id=?", (rep.run_id,))
    retrieved = [json.loads(r["attempt"])["meta"].get("retrieved") for r in rows]
    assert len(rows) == len(CALC_VALID) and all(retrieved)
    assert all(r not in (None, "") for r in retrieved)
    assert rep.pass_at[1] < 1.0


def test_history_baseline_uses_the_body_at_an_older_revision(tmp_path):
    files = dict(CALC_FILES)
    root = make_repo(tmp_path / "calc", files)
    git_init(root)
    ops = root / "calc" / "ops.py"
    ops.write_text(ops.read_text().replace("result = a + b\n    return result", "result = b + a\n    return result"))
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "commit", "-qam", "swap"], check=True)
    home = tmp_path / "home"
    store = open_store(cfg(home))
    rep = build_report(store, run(str(root), cfg(home, solver="history@HEAD~1", tasks=None)))
    rows = {r["task_id"]: json.loads(r["attempt"]) for r in store.query(
        "SELECT task_id, attempt FROM attempts WHERE run_id=?", (rep.run_id,))}
    assert rows["calc.ops:add"]["body"] == "result = a + b\nreturn result\n"
    assert rep.pass_at[1] == 1.0  # every function existed and still passes its tests
    assert rep.func_similarity < 1.0


def test_a_candidate_that_hangs_is_killed_and_judged_timeout(calc):
    root, home = calc
    prep = prepare(str(root), cfg(home, timeout=3))
    task = next(t for t in prep.valid if t.task_id == "calc.ops:clamp")
    verdict = prep.verifier.verify(task, "while True:\n    pass\n")
    assert verdict.status == "timeout" and verdict.reward == 0.0 and verdict.duration < 15
    assert "timed out" in verdict.feedback


def test_failing_candidates_get_feedback_naming_the_failing_tests(calc):
    root, home = calc
    prep = prepare(str(root), cfg(home))
    task = next(t for t in prep.valid if t.task_id == "calc.ops:mean")
    verdict = prep.verifier.verify(task, "return 0\n")
    assert verdict.status == "failed" and verdict.tests_passed == 0
    assert "tests/test_ops.py::test_mean" in verdict.feedback and "assert" in verdict.feedback
    malformed = prep.verifier.verify(task, "return (\n")
    assert malformed.status == "malformed" and "does not parse" in malformed.feedback


def test_files_that_do_not_parse_or_decode_are_skipped_and_counted(tmp_path):
    files = dict(CALC_FILES)
    files["calc/broken.py"] = "def f(:\n    pass\n"
    files["calc/legacy.py"] = "x = 'caf\xe9'\n".encode("latin-1")
    root = make_repo(tmp_path / "calc", files)
    prep = prepare(str(root), cfg(tmp_path / "home"), validate=False)
    assert prep.index.files["calc/broken.py"].startswith("syntax-error")
    assert prep.index.files["calc/legacy.py"] in ("non-utf8", "not utf-8", "non-UTF-8") or \
        "utf" in prep.index.files["calc/legacy.py"].lower()
    assert "calc.ops:add" in prep.index.coverage


def test_a_source_without_tests_or_with_a_broken_suite_says_there_is_nothing_to_score(tmp_path):
    root = make_repo(tmp_path / "nt", {"pkg/__init__.py": "def f(x):\n    y = x\n    return y\n"})
    with pytest.raises(NoTestsError, match="nothing to score"):
        prepare(str(root), cfg(tmp_path / "h1"))
    broken = make_repo(tmp_path / "bs", {"pkg/__init__.py": "def f(x):\n    y = x\n    return y\n",
                                         "tests/test_f.py": "from pkg import f\ndef test_f():\n    assert f(1) == 2\n"})
    with pytest.raises(NoTestsError, match="fails before any change"):
        prepare(str(broken), cfg(tmp_path / "h2"))


def test_a_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no such directory"):
        prepare(str(tmp_path / "nope"), cfg(tmp_path / "home"))


def test_second_grok_of_an_unchanged_source_reads_the_store(calc):
    root, home = calc
    prep = prepare(str(root), cfg(home), validate=False)
    assert prep.timings["grok"] < 1.0
