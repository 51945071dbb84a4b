"""regrow's pytest plugin. Runs inside the target's interpreter; imports nothing from regrow.

Loaded with ``-p regrow_pytest``. Reads its settings from the environment:

- ``REGROW_RESULTS``: a file to append one JSON line per finished test (and per collection
  error), then an ``{"event": "end"}`` sentinel at session end. The parent reads this file; a
  missing sentinel means the session did not finish.
- ``REGROW_CONTEXTS=1``: switch the coverage.py dynamic context to each test's node id, so
  the coverage data says which test executed which line.
"""

from __future__ import annotations

import json
import os
import time

_fd = None
_contexts = False
_reports: dict = {}
_started: dict = {}
_MAX_MESSAGE = 4000


def _emit(record: dict) -> None:
    if _fd is None:
        return
    data = (json.dumps(record) + "\n").encode("utf-8", "replace")
    os.write(_fd, data)


def _coverage():
    try:
        import coverage
    except ImportError:
        return None
    return coverage.Coverage.current()


def pytest_configure(config):
    global _fd, _contexts
    path = os.environ.get("REGROW_RESULTS")
    if path and _fd is None:
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _contexts = os.environ.get("REGROW_CONTEXTS") == "1"


def pytest_runtest_logstart(nodeid, location):
    _reports[nodeid] = []
    _started[nodeid] = time.perf_counter()
    if _contexts:
        cov = _coverage()
        if cov is not None:
            cov.switch_context(nodeid)


def pytest_runtest_logreport(report):
    _reports.setdefault(report.nodeid, []).append(report)


def _outcome(reports) -> tuple[str, str]:
    outcome, message = "passed", ""
    for rep in reports:
        xfail = hasattr(rep, "wasxfail")
        if rep.when == "setup":
            if rep.failed:
                return "error", rep.longreprtext
            if rep.skipped:
                return ("xfailed" if xfail else "skipped"), rep.longreprtext
        elif rep.when == "call":
            if rep.failed:
                outcome, message = "failed", rep.longreprtext
            elif rep.skipped:
                outcome, message = ("xfailed" if xfail else "skipped"), rep.longreprtext
            elif xfail:
                outcome = "xpassed"
        elif rep.when == "teardown" and rep.failed and outcome == "passed":
            outcome, message = "error", rep.longreprtext
    if not reports:
        outcome = "error"
    return outcome, message


def pytest_runtest_logfinish(nodeid, location):
    reports = _reports.pop(nodeid, [])
    outcome, message = _outcome(reports)
    duration = sum(getattr(r, "duration", 0.0) for r in reports)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE // 2] + "\n...\n" + message[-_MAX_MESSAGE // 2:]
    _emit({"test": nodeid, "outcome": outcome, "duration": duration, "message": message})
    _started.pop(nodeid, None)
    if _contexts:
        cov = _coverage()
        if cov is not None:
            cov.switch_context("")


def pytest_collectreport(report):
    if report.failed:
        _emit({"collect_error": report.nodeid, "message": report.longreprtext[-_MAX_MESSAGE:]})


def pytest_sessionfinish(session, exitstatus):
    _emit({"event": "end", "exitstatus": int(exitstatus), "collected": session.testscollected})
