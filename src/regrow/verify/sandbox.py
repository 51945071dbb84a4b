"""The `Sandbox` seam: run a pytest session of untrusted code and report per-test outcomes.

`LocalSandbox` runs the target's interpreter in a child process: its own session and
process group (a timeout kills the whole group), a scrubbed environment, resource limits, and
the results read back by the parent from a file the child's plugin appends to. The verdict is
the parent's; the child's exit status decides nothing on its own.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from regrow.core.verdict import TestOutcome
from regrow.source.workspace import remove_tree, scratch_dir

PLUGIN_DIR = Path(__file__).parent / "_plugin"
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
_ACTIVE: set[int] = set()  # process groups of running jobs, killed on interrupt
_ACTIVE_LOCK = threading.Lock()


def kill_active() -> int:
    """Kill every job still running (Ctrl-C). Returns how many groups were signalled."""
    with _ACTIVE_LOCK:
        groups = list(_ACTIVE)
    for pgid in groups:
        _kill_group(pgid)
    return len(groups)


@dataclass(frozen=True, slots=True)
class Job:
    """One pytest session to run in ``cwd`` with ``python``."""

    cwd: Path
    python: Path
    test_ids: tuple[str, ...] = ()  # empty: the whole suite as the project configures it
    pythonpath: tuple[str, ...] = ()  # absolute dirs put first on sys.path
    timeout: float = 120.0
    coverage_rc: Path | None = None  # run under coverage.py with this rc file, contexts per test
    pytest_args: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    memory_mb: int = 4096
    max_procs: int = 256
    grok: bool = False  # a grok session: stable keys of parametrized tests, a record as each test starts
    test_timeout: float = 0.0  # seconds one test may run before it fails on its own (0: no limit)


@dataclass(frozen=True, slots=True)
class Outcome:
    results: dict  # test id -> TestOutcome
    collect_errors: tuple[tuple[str, str], ...]
    finished: bool  # the session-end sentinel was seen
    exitstatus: int | None  # pytest's own exit status as its plugin reported it
    returncode: int | None
    timed_out: bool
    duration: float
    output_tail: str
    collected: int = 0
    flags: tuple[str, ...] = ()  # what the run itself showed a candidate tried (see regrow.verify.engine)
    extra: dict = field(default_factory=dict)


KEY_MARK = "[#"  # a test id written as a stable key: path::test[#position] (see _plugin/regrow_pytest.py)
MAX_ARGV_CHARS = 64 * 1024  # test ids past this go to pytest through a file, not the command line


class Sandbox(Protocol):
    def run(self, job: Job) -> Outcome: ...


def _limits(job: Job):
    def apply() -> None:
        mem = job.memory_mb * 1024 * 1024
        for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_FSIZE, 512 * 1024 * 1024),
                           (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass
        cpu = int(job.timeout) + 5
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        except (ValueError, OSError):
            pass
    return apply


def read_records(path: Path) -> list[dict]:
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raw = ""
    records = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def grok_facts(records: list[dict]) -> dict:
    """What a grok session's records add: ``keys`` (node id -> stable key of a parametrized test)
    and ``running`` (the test that started and never finished: where a suite hung), if any."""
    keys, finished, started = {}, set(), []
    for rec in records:
        if "started" in rec:
            started.append(str(rec["started"]))
        elif "test" in rec:
            finished.add(str(rec["test"]))
            if isinstance(rec.get("key"), str):
                keys[str(rec["test"])] = rec["key"]
    running = next((t for t in reversed(started) if t not in finished), None)
    return {"keys": keys, "running": running}


def parse_records(records: list[dict]) -> tuple[dict, list, bool, int | None, int]:
    """(results, collect errors, finished, exitstatus, collected) from the plugin's records."""
    results: dict[str, TestOutcome] = {}
    collect_errors: list[tuple[str, str]] = []
    finished, exitstatus, collected = False, None, 0
    for rec in records:
        if "test" in rec:
            if str(rec["test"]) in results:
                continue  # first record wins: a forged later one cannot overturn a failure
            results[str(rec["test"])] = TestOutcome(str(rec["test"]), str(rec.get("outcome", "error")),
                                                    float(rec.get("duration") or 0.0), str(rec.get("message", "")))
        elif "collect_error" in rec:
            collect_errors.append((str(rec["collect_error"]), str(rec.get("message", ""))))
        elif rec.get("event") == "end" and not finished:
            finished, exitstatus, collected = True, rec.get("exitstatus"), int(rec.get("collected") or 0)
    return results, collect_errors, finished, exitstatus, collected


class LocalSandbox:
    """A child process per job, in its own process group, killed whole on timeout."""

    def run(self, job: Job) -> Outcome:
        tmpdir = scratch_dir("job")
        try:
            results_path = tmpdir / "results.jsonl"
            env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
            env.update({
                "HOME": str(tmpdir), "TMPDIR": str(tmpdir),
                "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), *job.pythonpath]),
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
                "REGROW_RESULTS": str(results_path),
            })
            if job.grok:
                env["REGROW_GROK"] = "1"
            if job.test_timeout > 0:
                env["REGROW_TEST_TIMEOUT"] = f"{job.test_timeout:g}"
            test_ids = list(job.test_ids)
            # Stable keys, or more ids than a command line holds (the kernel's limit on argv):
            # pytest collects their files, the plugin keeps the items asked for.
            if any(KEY_MARK in t for t in test_ids) or sum(len(t) + 1 for t in test_ids) > MAX_ARGV_CHARS:
                select = tmpdir / "select.json"
                select.write_text(json.dumps(test_ids), encoding="utf-8")
                env["REGROW_SELECT"] = str(select)
                test_ids = list(dict.fromkeys(t.split("::", 1)[0] for t in test_ids))
            env.update(job.env)
            argv = [str(job.python)]
            if job.coverage_rc is not None:
                env["REGROW_CONTEXTS"] = "1"
                argv += ["-m", "coverage", "run", f"--rcfile={job.coverage_rc}", "-m", "pytest"]
            else:
                argv += ["-m", "pytest"]
            argv += ["-p", "regrow_pytest", "-p", "no:cacheprovider", "-q", "--tb=short",
                     "-o", "console_output_style=classic", *job.pytest_args, *test_ids]
            out_path = tmpdir / "output.txt"
            start = time.monotonic()
            timed_out = False
            with open(out_path, "wb") as out:
                proc = subprocess.Popen(argv, cwd=job.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_limits(job))
                with _ACTIVE_LOCK:
                    _ACTIVE.add(proc.pid)
                try:
                    proc.wait(timeout=job.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    _kill_group(proc.pid)
                    proc.wait()
                    with _ACTIVE_LOCK:
                        _ACTIVE.discard(proc.pid)
            duration = time.monotonic() - start
            records = read_records(results_path)
            results, collect_errors, finished, exitstatus, collected = parse_records(records)
            extra = grok_facts(records) if job.grok else {}
            with open(out_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 8000))
                tail = fh.read().decode("utf-8", "replace")
        finally:
            remove_tree(tmpdir)
        return Outcome(results=results, collect_errors=tuple(collect_errors), finished=finished and not timed_out,
                       exitstatus=exitstatus, returncode=proc.returncode, timed_out=timed_out,
                       duration=duration, output_tail=tail, collected=collected, extra=extra)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
