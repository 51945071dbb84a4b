"""regrow's pytest plugin. Runs inside the target's interpreter; imports nothing from regrow.

Loaded with ``-p regrow_pytest``. Reads its settings from the environment:

- ``REGROW_RESULTS``: a file to append one JSON line per finished test (and per collection
  error), then an ``{"event": "end"}`` sentinel at session end. The parent reads this file; a
  missing sentinel means the session did not finish.
- ``REGROW_CONTEXTS=1``: switch the coverage.py dynamic context to each test's node id, so
  the coverage data says which test executed which line.
- ``REGROW_RECORD``: a file to append the calls into the target's functions to (see
  ``regrow_record``); installed at import, before any conftest imports the target.
- ``REGROW_GROK=1``: a grok session (test map, recording): each record of a parametrized test
  carries its stable key (see `stable_keys`), and a ``{"started": id}`` record precedes each
  test, so a suite that hangs can name the test it hung in.
- ``REGROW_TEST_TIMEOUT``: seconds one test may take before it fails (grok sessions: a test that
  hangs fails alone instead of stalling the whole suite).
- ``REGROW_SELECT``: a JSON file listing the test ids to run; an id written as a stable key
  (``path::test[#3]``) selects the item at that position, whatever its parameter id is in this
  session, and its record carries the requested id (pytest is given the ids' files).

The plugin never emits a warning into the target's session: a project with
``filterwarnings = error`` would turn it into an error (hooks are configured with
``pytest.hookimpl``, and the warm worker hands the already imported module to pytest as an
object rather than by name).

The warm worker (``regrow_worker``) sets ``_fd`` to its pipe and ``_canary`` to a random name
before calling ``pytest.main`` in a forked child: a test of that name that must fail is added
after every other item, and the identity of the runner's critical functions is checked after
each test (a candidate that rebinds them is reported as ``runner-tamper``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from operator import is_ as _is

import pytest

_fd = None
_contexts = False
_reports: dict = {}
_started: dict = {}
_MAX_MESSAGE = 4000
_canary = None  # name of the injected must-fail test (set by the warm worker)
_guard = None  # the worker's audit hook (its flag() reports tampering)
_snapshot = None
_path = ""  # "warm" (pre-collected session) or "fresh" (new pytest session in the child)
_stop_at_end = False  # a warm worker's child: stop after the last record (see _leave)
_fail_fast = False  # a warm worker's child asked to stop at the first test that does not pass
_stop_rest = False  # ... and one did: the remaining tests (not the canary) are not run
current_test = ""  # node id of the running test (read by regrow_record)
not_passed = 0  # tests of this session that did not pass so far (the canary not counted)
FULL_TRACEBACKS = 4  # failing tests that get a formatted traceback; later ones get one line
_grok = os.environ.get("REGROW_GROK") == "1"
_keys: dict = {}  # node id -> stable key, for parametrized items (grok sessions)
_alias: dict = {}  # node id -> the id it was requested as (a stable key), reported under that id
_select = None  # set of requested ids (node ids or stable keys), or None: run what pytest collected
_test_timeout = float(os.environ.get("REGROW_TEST_TIMEOUT") or 0)
KEY_MARK = "[#"


def stable_keys(items) -> dict:
    """node id -> ``base[#i]`` for each parametrized item: its position among the items of the same
    test function, in collection order. A parameter id built from the clock, a random value or an
    object address changes from one session to the next; the position does not."""
    seen: dict = {}
    out = {}
    for item in items:
        nodeid = item.nodeid
        if not nodeid.endswith("]") or "[" not in nodeid:
            continue
        base = nodeid[: nodeid.index("[")]
        index = seen.get(base, 0)
        seen[base] = index + 1
        out[nodeid] = "%s%s%d]" % (base, KEY_MARK, index)
    return out


def select_items(items, wanted) -> tuple:
    """(kept, deselected) items for the requested ids ``wanted``, aliases noted in `_alias`."""
    keys = stable_keys(items) if any(KEY_MARK in w for w in wanted) else {}
    kept, dropped = [], []
    for item in items:
        key = keys.get(item.nodeid)
        if item.nodeid in wanted:
            kept.append(item)
        elif key is not None and key in wanted:
            _alias[item.nodeid] = key
            kept.append(item)
        else:
            dropped.append(item)
    return kept, dropped


def _on_alarm(signum, frame):
    pytest.fail("regrow: this test ran for more than %g s (REGROW_TEST_TIMEOUT)" % _test_timeout, pytrace=False)

if os.environ.get("REGROW_RECORD"):
    import regrow_record

    regrow_record.install(os.environ["REGROW_RECORD"], os.environ.get("REGROW_RECORD_ROOTS", ""))


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
    global _fd, _contexts, _select
    path = os.environ.get("REGROW_RESULTS")
    if path and _fd is None:
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _contexts = os.environ.get("REGROW_CONTEXTS") == "1"
    select = os.environ.get("REGROW_SELECT")
    if select and _select is None:
        with open(select, encoding="utf-8") as fh:
            _select = set(json.load(fh))
    if _test_timeout > 0:
        signal.signal(signal.SIGALRM, _on_alarm)


def pytest_runtest_logstart(nodeid, location):
    global current_test
    current_test = nodeid
    if _grok:
        _emit({"started": nodeid})
    if _test_timeout > 0:
        signal.setitimer(signal.ITIMER_REAL, _test_timeout)
    _reports[nodeid] = []
    _started[nodeid] = time.perf_counter()
    if _contexts:
        cov = _coverage()
        if cov is not None:
            cov.switch_context(nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """With fail-fast, once a test has not passed: skip each later item but the canary, keeping
    pytest's setup stack in step with what runs next. Its test id then has no record (missing)."""
    if not _stop_rest or item.name == _canary:
        return None
    try:
        item.session._setupstate.teardown_exact(nextitem)
    except Exception:  # a fixture's teardown error: the candidate has already failed
        pass
    return True


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
    global _stop_rest, not_passed
    if _test_timeout > 0:
        signal.setitimer(signal.ITIMER_REAL, 0)
    reports = _reports.pop(nodeid, [])
    outcome, message = _outcome(reports)
    if outcome != "passed" and not (_canary and nodeid.endswith("::" + _canary)):
        not_passed += 1
        _stop_rest = _fail_fast
    duration = sum(getattr(r, "duration", 0.0) for r in reports)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE // 2] + "\n...\n" + message[-_MAX_MESSAGE // 2:]
    record = {"test": _alias.get(nodeid, nodeid), "outcome": outcome, "duration": duration, "message": message}
    if _grok and nodeid in _keys:
        record["key"] = _keys[nodeid]
    _emit(record)
    _started.pop(nodeid, None)
    if _snapshot is not None:
        _check_snapshot()
    if _contexts:
        cov = _coverage()
        if cov is not None:
            cov.switch_context("")


def pytest_collectreport(report):
    if report.failed:
        _emit({"collect_error": report.nodeid, "message": report.longreprtext[-_MAX_MESSAGE:]})


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _snapshot is not None:
        _check_snapshot()
    if _canary:
        _emit({"event": "exit", "path": _path})
    _emit({"event": "end", "exitstatus": int(exitstatus), "collected": session.testscollected})
    if _canary:
        # A warm worker's child: every record is out; skip unconfigure (gc passes, summaries).
        _leave()


def _leave():
    """End a warm worker's child once its last record is out.

    It stops itself first: the worker sees the stop, takes its checks while nothing of the
    candidate can run, answers, and only then kills it, so tearing down the child's memory
    (milliseconds for a large heap) is off the request's path. Continued by anyone, it exits.
    """
    if _stop_at_end:
        os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)


# ---------------------------------------------------------------- the warm worker's defences

def short_failure(excinfo, style=None) -> str:
    """A failing test's message without its traceback: what the warm runner gives each test that
    fails after the first `FULL_TRACEBACKS` (formatting a traceback costs a failing test about as
    much as running it, and the feedback a model sees quotes only the first few)."""
    try:
        text = str(excinfo.value)
    except BaseException:  # a hostile __str__
        text = "<unprintable>"
    return "%s: %s\n(traceback left out: only the first %d failing tests get one)" % (
        excinfo.typename, text[:_MAX_MESSAGE // 2], FULL_TRACEBACKS)


def _canary_test():
    import pytest

    pytest.fail("regrow canary: this test must fail", pytrace=False)  # no traceback to format


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    global _snapshot
    if _select is not None:
        kept, dropped = select_items(items, _select)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
    if _grok:
        _keys.update(stable_keys(items))
    if not _canary or not items:
        return

    module = None
    for item in items:
        module = item.getparent(pytest.Module)
        if module is not None:
            break
    if module is not None:
        items.append(pytest.Function.from_parent(module, name=_canary, callobj=_canary_test))
    _snapshot = _take_snapshot()


_WATCHED = (
    ("_pytest.runner", ("call_and_report", "call_runtest_hook", "runtestprotocol", "check_interactive_exception")),
    ("_pytest.runner.CallInfo", ("from_call",)),
    ("_pytest.reports.TestReport", ("from_item_and_call", "__init__")),
    ("_pytest.python.Function", ("runtest",)),
    ("_pytest.python", ("pytest_pyfunc_call",)),
    ("_pytest.main", ("pytest_runtestloop",)),
    ("_pytest.outcomes", ("exit", "skip", "fail", "xfail")),
    ("pluggy._hooks.HookCaller", ("__call__",)),
    ("pluggy._manager.PluginManager", ("_hookexec",)),
    ("unittest.case.TestCase", ("run", "__call__")),
    ("os", ("_exit", "write", "kill")),
    ("json", ("dumps",)),
    ("regrow_pytest", ("_emit", "_outcome", "pytest_runtest_logfinish", "pytest_sessionfinish", "_leave")),
)


def _split(path):
    """(module name, attribute names) of a dotted ``path``: its longest imported module prefix."""
    import sys

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in sys.modules:
            return ".".join(parts[:i]), tuple(parts[i:])
    return None


def _lookup(module, attrs):
    import sys

    obj = sys.modules.get(module)
    for attr in attrs:
        obj = getattr(obj, attr, None)
    return obj


def _resolve(path):
    where = _split(path)
    return _lookup(*where) if where is not None else None


def _take_snapshot():
    import builtins

    watched = {}
    for owner, names in _WATCHED:
        obj = _resolve(owner)
        if obj is None:
            continue
        for name in names:
            watched[(owner, name)] = obj.__dict__.get(name) if isinstance(obj, type) else getattr(obj, name, None)
    b = vars(builtins)
    # Objects, not id()s: the identity test is `is`, and id() raises an audit event (the worker's
    # audit hook would run once per builtin per test).
    return {"builtins": dict(b), "watched": watched, "names": list(b), "values": list(b.values()),
            # each owner's module and attribute path, split once (looked up again after every test)
            "owners": [(owner, _split(owner), [n for n in names if (owner, n) in watched])
                       for owner, names in _WATCHED if (owner, names[0]) in watched]}


def _check_snapshot():
    """Flag a rebound builtin or runner function. Runs after every test, so the common case (nothing
    changed) is a few C-level list comparisons; only a difference takes the slow, exact path."""
    import builtins

    snap = _snapshot
    b = vars(builtins)
    if list(b) != snap["names"] or not all(map(_is, b.values(), snap["values"])):
        before = snap["builtins"]
        changed = sorted(k for k in set(b) | set(before)
                         if k != "_" and (k not in b or k not in before or b[k] is not before[k]))  # doctest sets "_"
        if changed:
            _flag("builtins-tamper", ",".join(changed)[:200])
    watched = snap["watched"]
    for owner, where, names in snap["owners"]:
        obj = _lookup(*where)
        if obj is None:
            _flag("runner-tamper", owner)
            continue
        space = obj.__dict__ if isinstance(obj, type) else None
        for name in names:
            target = space.get(name) if space is not None else getattr(obj, name, None)
            if target is not watched[(owner, name)]:
                _flag("runner-tamper", "%s.%s" % (owner, name))


def _flag(name, detail=""):
    _emit({"flag": name, "detail": detail})
