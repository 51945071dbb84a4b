"""The CLI, run as a user runs it: a real subprocess, exit codes and printed text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


import regrow


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
