"""Ordinary packages in the wild: each mechanism that once yielded zero tasks, as a fixture.

Every fixture is a small real package with a real pytest suite written to ``tmp_path``; the
assertions are the user's: valid tasks exist, the oracle solves them all, null solves none,
and whatever regrow left out is named with its cause.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _repos import fixture_config, make_repo
from regrow.errors import NoTestsError
from regrow.report.runs import build_report
from regrow.api import open_store, prepare, run
from regrow.tasks.build import summarize

LIB = '''
    def total(xs):
        """Sum of xs."""
        acc = 0
        for x in xs:
            acc += x
        return acc


    def clip(x, lo, hi):
        """x within [lo, hi]."""
        if x < lo:
            return lo
        return min(x, hi)
'''

TESTS = '''
    from lib import clip, total


    def test_total():
        assert total([1, 2, 3]) == 6


    def test_clip():
        assert clip(5, 0, 3) == 3
        assert clip(-1, 0, 3) == 0
'''


def more(*parts: str) -> str:
    """Parts of a file, each dedented on its own."""
    return "".join(textwrap.dedent(p).lstrip("\n") for p in parts)


cfg = fixture_config


def oracle_and_null(root: Path, home: Path, **kw):
    store = open_store(cfg(home))
    oracle = build_report(store, run(str(root), cfg(home, solver="oracle", **kw)))
    null = build_report(store, run(str(root), cfg(home, solver="null", **kw)))
    return oracle, null


def assert_all_valid(oracle, null, expected: int) -> None:
    assert oracle.tasks["valid"] == expected, oracle.tasks
    assert oracle.pass_at[1] == 1.0 and null.pass_at[1] == 0.0


def test_a_project_that_turns_warnings_into_errors_still_yields_every_task(tmp_path):
    """filterwarnings = error: regrow's own plugins must never warn into the target's session
    (an assert-rewrite warning in the warm worker, old-style hook options on pytest 9)."""
    root = make_repo(tmp_path / "strict", {
        "pyproject.toml": """
            [project]
            name = "strict"
            version = "1.0"

            [tool.pytest.ini_options]
            filterwarnings = ["error"]
            addopts = "--strict-markers --strict-config"
        """,
        "lib.py": LIB,
        "tests/test_lib.py": TESTS,
    })
    oracle, null = oracle_and_null(root, tmp_path / "home")
    assert_all_valid(oracle, null, 2)
    assert oracle.statuses == {"solved": 2}


def test_test_ids_that_change_between_runs_are_found_again_by_position(tmp_path):
    """A parametrize id built from an object's address (or the clock) differs in every session."""
    root = make_repo(tmp_path / "moving", {
        "pyproject.toml": '[project]\nname = "moving"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": '''
            import pytest
            from lib import clip, total


            class Box:
                def __init__(self, xs):
                    self.xs = xs


            @pytest.mark.parametrize("box", [Box([1, 2]), Box([3])], ids=lambda b: "box%x" % id(b))
            def test_total(box):
                assert total(box.xs) == sum(box.xs)


            @pytest.mark.parametrize("x, want", [(5, 3), (-1, 0), (2, 2)])
            def test_clip(x, want):
                assert clip(x, 0, 3) == want
        ''',
    })
    home = tmp_path / "home"
    prep = prepare(str(root), cfg(home, solver="oracle"))
    prep.close()
    total = next(t for t in prep.tasks if t.task_id == "lib:total")
    assert total.is_valid, total.reason
    assert total.tests == ("tests/test_lib.py::test_total[#0]", "tests/test_lib.py::test_total[#1]")
    assert prep.index.facts["unstable_ids"]  # and said so
    clip = next(t for t in prep.tasks if t.task_id == "lib:clip")
    assert clip.is_valid and clip.tests[0] == "tests/test_lib.py::test_clip[-1-0]"  # stable ids stay as they are
    for trust in ("strict", "subprocess"):
        oracle, null = oracle_and_null(root, home, trust=trust)
        assert_all_valid(oracle, null, 2)


def test_addopts_that_need_a_missing_plugin_or_stop_early_are_left_out_and_named(tmp_path):
    root = make_repo(tmp_path / "covered", {
        "setup.cfg": """
            [metadata]
            name = covered
            version = 1.0

            [tool:pytest]
            addopts = --cov=lib --cov-report=term-missing -x -p no:doctest --durations=3
        """,
        "lib.py": LIB,
        "tests/test_lib.py": more(TESTS, '''

            def test_unrelated_failure():
                assert False, "a failing test must not stop the suite (-x)"
        '''),
    })
    logs: list[str] = []
    from regrow.api import Hooks
    prep = prepare(str(root), cfg(tmp_path / "home", solver="oracle"), Hooks(log=logs.append))
    prep.close()
    assert {t.task_id for t in prep.valid} == {"lib:total", "lib:clip"}
    assert prep.index.facts["n_tests"] == 3
    said = "\n".join(logs)
    assert "--cov=lib" in said and "-x" in said and "left out" in said


def test_a_plugin_option_the_environment_does_not_know_is_dropped_after_pytest_refuses_it(tmp_path):
    root = make_repo(tmp_path / "odd", {
        "pytest.ini": "[pytest]\naddopts = --frobnicate-level=3\n",
        "lib.py": LIB,
        "tests/test_lib.py": TESTS,
    })
    oracle, null = oracle_and_null(root, tmp_path / "home")
    assert_all_valid(oracle, null, 2)


def test_test_files_that_cannot_be_collected_are_left_out_and_the_rest_still_runs(tmp_path):
    root = make_repo(tmp_path / "partial", {
        "pyproject.toml": '[project]\nname = "partial"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": TESTS,
        "tests/test_properties.py": '''
            import hypothesis_is_not_installed_here  # an optional test dependency
            def test_prop():
                pass
        ''',
        "tests/test_profile.py": '''
            import sys
            raise SystemExit("a profiling script named like a test")
        ''',
    })
    logs: list[str] = []
    from regrow.api import Hooks
    prep = prepare(str(root), cfg(tmp_path / "home", solver="oracle"), Hooks(log=logs.append))
    prep.close()
    assert {t.task_id for t in prep.valid} == {"lib:total", "lib:clip"}
    uncollected = prep.index.facts["uncollected"]
    assert any("test_properties.py" in u and "hypothesis_is_not_installed_here" in u for u in uncollected)
    assert any("test_profile.py" in u for u in uncollected)
    assert any("could not be collected" in line for line in logs)


def test_a_source_without_any_test_file_says_it_ships_no_tests(tmp_path):
    root = make_repo(tmp_path / "bare", {
        "pyproject.toml": '[project]\nname = "bare"\nversion = "1.0"\n',
        "lib.py": LIB,
    })
    with pytest.raises(NoTestsError, match="ships no tests"):
        prepare(str(root), cfg(tmp_path / "home"), validate=False)


@pytest.mark.timeout(120)
def test_a_test_that_hangs_fails_alone_and_grok_goes_on(tmp_path):
    root = make_repo(tmp_path / "hangs", {
        "pyproject.toml": '[project]\nname = "hangs"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": more(TESTS, '''

            def test_hangs():
                import time
                time.sleep(3600)
        '''),
    })
    prep = prepare(str(root), cfg(tmp_path / "home", solver="oracle", timeout=5))
    prep.close()
    assert {t.task_id for t in prep.valid} == {"lib:total", "lib:clip"}
    assert prep.index.tests["tests/test_lib.py::test_hangs"][0] == "failed"


def test_a_reference_rejected_by_the_integrity_checks_says_so_and_names_the_check(tmp_path):
    root = make_repo(tmp_path / "peeks", {
        "pyproject.toml": '[project]\nname = "peeks"\nversion = "1.0"\n',
        "lib.py": more(LIB, '''

            def expected_total():
                """What the tests expect total([1, 2, 3]) to be, read from the tests themselves."""
                import pathlib
                text = pathlib.Path(__file__).with_name("tests").joinpath("test_lib.py").read_text()
                return 6 if "== 6" in text else 0
        '''),
        "tests/test_lib.py": more(TESTS, '''

            def test_expected():
                from lib import expected_total
                assert expected_total() == 6
        '''),
    })
    prep = prepare(str(root), cfg(tmp_path / "home", solver="oracle"))
    prep.close()
    task = next(t for t in prep.tasks if t.task_id == "lib:expected_total")
    assert task.status == "reference_fails"
    assert task.reason.startswith("reference rejected by the integrity checks: ") and "reads-tests" in task.reason
    summary = summarize(prep.tasks, prep.excluded)
    assert any("integrity checks" in reason for reason in summary["by_reason"])


def test_subprocess_scratch_folders_left_by_a_killed_process_are_swept(tmp_path):
    from regrow.source.workspace import scratch_dir, sweep_scratch

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    left = tmp_path / f"regrow-verify-{dead}-abc"
    (left / "src").mkdir(parents=True)
    mine = scratch_dir("job", tmp_path)
    assert not left.exists() and mine.is_dir()
    assert sweep_scratch(tmp_path) == 0 and mine.is_dir()  # a live process's folder stays
    assert os.path.basename(mine).startswith(f"regrow-job-{os.getpid()}-")


def _readme_lines(prefix: str) -> list[str]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    return [line.split("#", 1)[0].strip() for line in readme.splitlines() if line.startswith(prefix)]


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_commands_work_verbatim_from_a_fresh_folder_with_the_default_home(tmp_path):
    """A new user's folder: the README's own lines for ./my-repo, copied as written, with no
    --home, no --python and no REGROW_* variable (regrow builds the environment under ./.regrow)."""
    from conftest import CALC_FILES

    from _repos import git_init

    user = tmp_path / "user"
    repo = make_repo(user / "my-repo", CALC_FILES)
    git_init(repo)
    subprocess.run(["git", "-C", str(repo), "tag", "v1.2"], check=True)
    (user / ".venv").symlink_to(Path(sys.prefix))  # the README's `.venv/bin/regrow`, as `make` leaves it
    lines = [ln for ln in _readme_lines(".venv/bin/regrow run ./my-repo --solver ")
             if "openai:" not in ln] + _readme_lines(".venv/bin/regrow runs")
    assert len(lines) >= 4, lines
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGROW_")}
    for line in lines:
        done = subprocess.run(line, shell=True, cwd=user, env=env, capture_output=True, text=True, timeout=600)
        said = done.stdout + done.stderr
        assert done.returncode == 0, f"{line}\n{said[-3000:]}"
        assert "Traceback" not in said, f"{line}\n{said[-3000:]}"
    assert (user / ".regrow" / "regrow.sqlite").is_file()
    assert list((user / ".regrow" / "envs").glob("calc-*/bin/python"))  # the environment regrow built itself


def test_tests_that_make_and_remove_temporary_trees_pass_in_the_sandbox(tmp_path):
    """shutil.rmtree removes entries relative to an open directory (dir_fd): the sandbox must
    judge those paths where they are, not against the working directory."""
    root = make_repo(tmp_path / "trees", {
        "pyproject.toml": '[project]\nname = "trees"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": '''
            import os
            import shutil
            import tempfile
            import unittest

            from lib import clip, total


            class TreeTest(unittest.TestCase):
                def setUp(self):
                    self.dir = tempfile.mkdtemp()

                def tearDown(self):
                    shutil.rmtree(self.dir)

                def test_total(self):
                    os.makedirs(os.path.join(self.dir, "a", "b"))
                    with open(os.path.join(self.dir, "a", "f"), "w") as fh:
                        fh.write("x")
                    os.symlink("f", os.path.join(self.dir, "a", "link"))  # a relative target, as pathspec's tests make
                    os.symlink("b", os.path.join(self.dir, "a", "dirlink"), target_is_directory=True)
                    assert total([1, 2]) == 3


            def test_clip(tmp_path):
                (tmp_path / "x").write_text("1")
                assert clip(5, 0, 3) == 3
        ''',
    })
    oracle, null = oracle_and_null(root, tmp_path / "home")
    assert_all_valid(oracle, null, 2)


def test_a_reference_whose_recorded_values_move_with_the_clock_still_solves_later(tmp_path):
    """Expected values are taken once; by the time a later candidate replays, a clock-dependent
    reference gives other values. The reference is replayed again before anyone is blamed."""
    import time

    root = make_repo(tmp_path / "clock", {
        "pyproject.toml": '[project]\nname = "clock"\nversion = "1.0"\n',
        "lib.py": '''
            import time


            def window(x):
                """x with the current 2-second window."""
                now = int(time.time() // 2)
                return (x, now)
        ''',
        "tests/test_lib.py": '''
            from lib import window


            def test_window():
                assert window(3)[0] == 3
        ''',
    })
    prep = prepare(str(root), cfg(tmp_path / "home", solver="oracle"))
    try:
        task = next(t for t in prep.valid if t.task_id == "lib:window")
        first = prep.verifier.verify(task, task.reference_body)
        assert first.solved and first.reward == 1.0
        time.sleep(2.2)  # the window moved: the cached expected values are stale
        later = prep.verifier.verify(task, task.reference_body)
        assert later.solved and later.reward == 1.0, later.flags
        wrong = prep.verifier.verify(task, "return (x + 1, int(time.time() // 2))")
        assert not wrong.solved
    finally:
        prep.close()


def test_functions_defined_under_if_or_except_at_module_level_become_tasks(tmp_path):
    root = make_repo(tmp_path / "branches", {
        "pyproject.toml": '[project]\nname = "branches"\nversion = "1.0"\n',
        "lib.py": '''
            try:
                import not_installed_anywhere
            except ImportError:
                def fallback(x):
                    y = x + 1
                    return y

            if True:
                def doubled(x):
                    z = x * 2
                    return z
        ''',
        "tests/test_lib.py": '''
            from lib import doubled, fallback


            def test_fallback():
                assert fallback(1) == 2


            def test_doubled():
                assert doubled(2) == 4
        ''',
    })
    oracle, null = oracle_and_null(root, tmp_path / "home")
    assert_all_valid(oracle, null, 2)


def test_property_tests_that_keep_an_example_database_do_not_look_like_writes_outside(tmp_path):
    """Hypothesis writes ./.hypothesis; in the sandbox it goes to the child's own temporary folder."""
    root = make_repo(tmp_path / "props", {
        "pyproject.toml": '[project]\nname = "props"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": '''
            from hypothesis import given, strategies as st

            from lib import clip, total


            @given(st.lists(st.integers(), max_size=5))
            def test_total(xs):
                assert total(xs) == sum(xs)


            @given(st.integers())
            def test_clip(x):
                assert 0 <= clip(x, 0, 3) <= 3
        ''',
    })
    oracle, null = oracle_and_null(root, tmp_path / "home")
    assert_all_valid(oracle, null, 2)


def test_more_covering_tests_than_a_command_line_holds_go_to_pytest_through_a_file(tmp_path):
    """packaging's 26,874 covering ids overflowed the kernel's argument limit (E2BIG)."""
    from regrow.verify import sandbox

    root = make_repo(tmp_path / "many", {
        "pyproject.toml": '[project]\nname = "many"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": '''
            import pytest

            from lib import clip, total


            @pytest.mark.parametrize("n", range(3000))
            def test_total_of_a_long_range_of_cases_with_a_rather_long_name_each(n):
                assert total([n, 1]) == n + 1


            def test_clip():
                assert clip(5, 0, 3) == 3
        ''',
    })
    home = tmp_path / "home"
    prep = prepare(str(root), cfg(home, solver="oracle", trust="subprocess"))
    prep.close()
    task = next(t for t in prep.tasks if t.task_id == "lib:total")
    assert task.is_valid, task.reason
    assert sum(len(t) + 1 for t in task.tests) > sandbox.MAX_ARGV_CHARS  # the file path was taken


def test_requirement_files_that_pin_coverage_or_the_project_itself_still_install(tmp_path):
    from regrow.source.envs import _unpin_own

    root = make_repo(tmp_path / "pins", {
        "requirements/dev.txt": "-r test.txt\nclick==8.1.7  # the project itself\nsphinx>=7\n",
        "requirements/test.txt": "coverage==7.2.7\npytest>=8\n",
    })
    dropped = _unpin_own(root, ("requirements/dev.txt",), {"coverage", "click"})
    assert sorted(dropped) == ["click==8.1.7", "coverage==7.2.7"]
    assert (root / "requirements/dev.txt").read_text() == "-r test.txt\nsphinx>=7\n"
    assert (root / "requirements/test.txt").read_text() == "pytest>=8\n"


def test_a_conftest_that_does_not_load_with_this_pytest_is_named_as_the_cause(tmp_path):
    root = make_repo(tmp_path / "oldhooks", {
        "pyproject.toml": '[project]\nname = "oldhooks"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/conftest.py": '''
            def pytest_collect_file(file_path, path, parent):  # py.path's `path` is gone in pytest 9
                return None
        ''',
        "tests/test_lib.py": TESTS,
    })
    with pytest.raises(NoTestsError, match="a conftest.py does not load with this pytest"):
        prepare(str(root), cfg(tmp_path / "home"), validate=False)


def test_a_write_into_a_missing_folder_fails_as_the_os_would_without_a_flag(tmp_path):
    """sqlparse's test asks `main` to write into a folder that does not exist and expects the
    error; the sandbox must not turn that into writes-outside."""
    root = make_repo(tmp_path / "outfile", {
        "pyproject.toml": '[project]\nname = "outfile"\nversion = "1.0"\n',
        "lib.py": more(LIB, '''

            def save(text, path):
                """Write text to path; 1 when the file cannot be opened."""
                try:
                    with open(path, "w") as fh:
                        fh.write(text)
                except OSError as exc:
                    return 1 if exc.errno == 2 else 3
                return 0
        '''),
        "tests/test_lib.py": more(TESTS, '''

            def test_save_into_a_missing_folder():
                from lib import save
                assert save("x", "tests/no/such/folder/out.txt") == 1
        '''),
    })
    oracle, null = oracle_and_null(root, tmp_path / "home")
    assert_all_valid(oracle, null, 3)


def test_a_rejection_stored_by_an_older_validation_is_examined_again(tmp_path):
    """A stored "flaky" verdict is never final: a later regrow with a fix re-validates it."""
    from regrow.core.task import FLAKY, task_to_json
    from regrow.store.tasks import save_task_rows
    from regrow.tasks.hollow import HollowConfig

    root = make_repo(tmp_path / "again", {
        "pyproject.toml": '[project]\nname = "again"\nversion = "1.0"\n',
        "lib.py": LIB,
        "tests/test_lib.py": TESTS,
    })
    home = tmp_path / "home"
    prep = prepare(str(root), cfg(home, solver="oracle"))
    prep.close()
    task = next(t for t in prep.tasks if t.task_id == "lib:total")
    assert task.is_valid
    old = task.with_status(FLAKY, "covering test not stable on the reference: tests/test_lib.py::test_total")
    old = type(old)(**{**{f: getattr(old, f) for f in old.__dataclass_fields__}, "extra": {}})  # an older validation
    save_task_rows(prep.store, prep.source.key, HollowConfig().key(),
                   [(old.task_id, old.status, old.reason, task_to_json(old))])
    again = prepare(str(root), cfg(home, solver="oracle"))
    again.close()
    assert next(t for t in again.tasks if t.task_id == "lib:total").is_valid

