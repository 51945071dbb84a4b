"""The warm engine and the checks around it, on a real throwaway repository and real processes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from regrow.verify import hackscan
from regrow.verify.engine import module_name, prune_traceback
from regrow.verify.equivalence import same
from regrow.verify.backend import WarmBackend
from regrow.verify.verifier import Verifier, VerifyConfig
from tests.redteam.fixture import fixture_session


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    yield from fixture_session(tmp_path_factory, "engine", timeout=10.0)


def test_module_names_follow_the_import_roots():
    assert module_name("pkg/mod.py", (".",)) == "pkg.mod"
    assert module_name("src/pkg/__init__.py", ("src",)) == "pkg"
    assert module_name("src/pkg/sub/x.py", (".", "src")) == "pkg.sub.x"
    assert module_name("scripts/run-me.py", (".",)) is None
    assert module_name("other/x.py", ("src",)) is None


def test_runner_frames_are_pruned_from_native_tracebacks():
    text = ("Traceback (most recent call last):\n"
            '  File "/venv/lib/site-packages/_pytest/runner.py", line 3, in call\n    yield\n'
            '  File "/repo/tests/test_x.py", line 5, in test_x\n    assert f(1) == 2\n'
            "AssertionError: assert 3 == 2")
    pruned = prune_traceback(text)
    assert "_pytest" not in pruned and "test_x.py" in pruned and "assert 3 == 2" in pruned


def test_canonical_comparison_is_exact_about_types_and_tolerant_about_float_rounding():
    assert same(["int", "1"], ["int", "1"])
    assert not same(["int", "1"], ["bool", True])
    assert not same(["int", "1"], ["float", "1.0"])
    assert same(["float", "0.30000000000000004"], ["float", "0.3"])
    assert same(["float", "nan"], ["float", "nan"])
    assert not same(["float", "nan"], ["float", "1.0"])
    assert not same(["list", [["int", "1"]]], ["tuple", [["int", "1"]]])


def test_canonical_form_writes_a_linked_ring_once_and_tells_rings_of_different_lengths_apart():
    from regrow.verify._plugin import regrow_canon

    class Node:
        def __init__(self, key):
            self.key, self.next = key, self

    def ring(n):
        nodes = [Node(i) for i in range(n)]
        for a, b in zip(nodes, nodes[1:] + nodes[:1]):
            a.next = b
        return nodes[0]

    two, three = regrow_canon.canon(ring(2)), regrow_canon.canon(ring(3))
    assert "deep" not in json.dumps(three) and json.dumps(three).count('"ref"') == 1
    assert not same(two, three) and same(three, regrow_canon.canon(ring(3)))
    loop = []
    loop.append(loop)
    assert regrow_canon.canon(loop) == ["list", [["ref", 1]]]
    assert regrow_canon.canon(10 ** 5000) == ["int", "huge"] and regrow_canon.canon(-7) == ["int", "-7"]


def test_the_static_scan_names_tricks_and_forgives_what_the_reference_does_too():
    assert "exit-trick" in hackscan.scan("import os\nos._exit(0)")
    assert "introspection" in hackscan.scan("import sys\nreturn sys._getframe(1).f_locals['expected']")
    assert "eq-always-true" in hackscan.scan("class A:\n    def __eq__(self, o):\n        return True\nreturn A()")
    assert hackscan.scan("return sum(xs) / len(xs)") == ()
    assert "exit-trick" not in hackscan.scan("import sys\nsys.exit(1)", reference="import sys\nsys.exit(2)")
    tests = "assert mean([4, 5, 6]) == 5.0\nassert mean([7, 8]) == 7.5"
    assert "hardcoded-tests" in hackscan.scan("if xs == [4, 5, 6]:\n    return 5.0\nreturn 7.5", test_texts=[tests])


def test_grok_records_calls_with_types_summaries_and_canonical_results(fx):
    prep, _tasks = fx
    rows = prep.store.query("SELECT * FROM calls WHERE source_key=? AND qualname='calc.core:mean' ORDER BY seq",
                            (prep.source.key,))
    assert rows, "no calls recorded for calc.core:mean"
    by_result = {r["result"]: r for r in rows}
    assert json.dumps(["float", "2.5"]) in by_result
    row = by_result[json.dumps(["float", "2.5"])]
    assert json.loads(row["arg_types"]) == {"xs": "list"} and row["return_type"] == "float"
    assert "[1, 2, 3, 4]" in json.loads(row["summary"])["xs"] and row["args"]
    raised = [r for r in rows if r["exception"]]
    assert raised and raised[0]["exception"] == "ValueError" and raised[0]["result"] is None


def test_the_reference_solves_with_equivalence_and_a_wrong_body_fails_with_feedback(fx):
    prep, tasks = fx
    task = tasks["calc.core:mean"]
    ok = prep.verifier.verify(task, task.reference_body)
    assert ok.solved and ok.reward == 1.0 and ok.extra["engine"] == "warm" and ok.extra["path"] == "warm"
    assert ok.eq_cases >= 2 and ok.eq_matched == ok.eq_cases
    assert ok.extra["canary"] == "failed"
    bad = prep.verifier.verify(task, "return 0")
    assert bad.status == "failed" and bad.reward == 0.0 and not bad.integrity_flags
    assert "test_mean" in bad.feedback and "assert" in bad.feedback and "_pytest" not in bad.feedback


def test_a_body_that_passes_the_tests_but_differs_on_recorded_calls_is_caught(fx):
    prep, tasks = fx
    task = tasks["calc.core:Stack.push"]
    honest = "self.items += [x]\nreturn len(self.items)"
    assert prep.verifier.verify(task, honest).reward == 1.0
    # Every covering test passes, but the object's state after the call differs from the reference's.
    v = prep.verifier.verify(task, "self.items.append(x)\nself.last = x\nreturn len(self.items)")
    assert all(o.outcome == "passed" for o in v.outcomes)
    assert v.reward == 0.0 and "eq-mismatch" in v.flags and v.eq_matched < v.eq_cases
    assert v.extra["eq_replay"] == "alongside"  # expected values known: replayed in a second child with the tests
    # A float where the reference returns an int: equal under ==, not under exact types.
    v = prep.verifier.verify(task, "self.items.append(x)\nreturn float(len(self.items))")
    assert all(o.outcome == "passed" for o in v.outcomes) and "eq-mismatch" in v.flags


def test_the_engine_replaces_a_worker_that_was_killed(fx):
    prep, tasks = fx
    task = tasks["calc.core:clamp"]
    assert prep.verifier.verify(task, task.reference_body).solved
    for w in prep.verifier.engine._all:
        if w.alive:
            os.kill(w.proc.pid, signal.SIGKILL)
    time.sleep(0.1)
    v = prep.verifier.verify(task, task.reference_body)
    assert v.solved or "worker-killed" in v.flags
    assert prep.verifier.verify(task, task.reference_body).solved


def test_subprocess_trust_uses_a_fresh_pytest_and_still_scans(fx):
    prep, tasks = fx
    task = tasks["calc.core:words"]
    with Verifier(prep.source.root, Path(sys.executable), prep.source.import_roots,
                  config=VerifyConfig(trust="subprocess", timeout=30)) as cold:
        assert cold.engine is None
        ok = cold.verify(task, task.reference_body)
        assert ok.solved and ok.extra["engine"] == "subprocess"
        assert "exit-trick" in cold.verify(task, "import os\nos._exit(0)").flags


def test_closing_the_verifier_removes_the_workers_and_their_copies(fx, tmp_path):
    prep, tasks = fx
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o005)
    task = tasks["calc.core:words"]
    with Verifier(prep.source.root, Path(sys.executable), prep.source.import_roots, workdir=tmp_path,
                  config=VerifyConfig(workers=1, timeout=30)) as v:
        assert v.verify(task, task.reference_body).solved
        pid = v.engine._all[0].proc.pid
        assert any(p.name.startswith("regrow-engine-") for p in tmp_path.iterdir())
    assert not any(tmp_path.iterdir())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_unknown_trust_levels_are_refused(fx):
    prep, _ = fx
    with pytest.raises(ValueError):
        Verifier(prep.source.root, Path(sys.executable), prep.source.import_roots, config=VerifyConfig(trust="lax"))


def test_directories_of_engines_whose_process_died_are_swept(tmp_path):
    import subprocess

    from regrow.verify.engine import sweep_stale

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    old = time.time() - 3600
    for name, owner in (("regrow-engine-dead", dead.stdout.strip()), ("regrow-engine-live", str(os.getpid())),
                        ("regrow-engine-unknown", None)):
        d = tmp_path / name
        (d / "src").mkdir(parents=True)
        if owner is not None:
            (d / "owner").write_text(owner)
        os.utime(d, (old, old))
    assert sweep_stale(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["regrow-engine-live", "regrow-engine-unknown"]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_spare_children_wait_for_a_request_and_die_with_their_worker(fx):
    prep, tasks = fx
    task = tasks["calc.core:clamp"]
    assert prep.verifier.verify(task, task.reference_body).solved
    worker = next(w for w in prep.verifier.engine._all if w.alive)
    pid = worker.facts["pid"]  # the worker itself (the process started may be `unshare`, which execs it)
    spares = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert spares, "the worker keeps forked children ready"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(s) for s in spares):
        time.sleep(0.05)
    assert not any(_running(s) for s in spares)  # end of file on their request pipe: they exit
    # The pool hands requests to its workers in turn: within four, each slot has served twice, and
    # the killed one has either been noticed dead before a request (restarted) or answered one
    # request with worker-killed (then restarted): the last two are solved by live workers.
    verdicts = [prep.verifier.verify(task, task.reference_body) for _ in range(4)]
    assert all(v.solved or "worker-killed" in v.flags for v in verdicts)
    assert sum("worker-killed" in v.flags for v in verdicts) <= 1
    assert verdicts[-1].solved and verdicts[-2].solved  # a fresh worker took over


def _uid_processes(uid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid and _running(int(entry)):
                    out.append(int(entry))
            except OSError:
                pass
    return out


def test_a_worker_killed_hard_mid_request_takes_its_running_child_with_it(fx):
    """A candidate's child dies with its worker (parent-death signal), even one that would sleep
    on for minutes; nothing of the sandbox uid is left."""
    import threading

    prep, tasks = fx
    task = tasks["calc.core:clamp"]
    assert prep.verifier.verify(task, task.reference_body).solved
    uids = []

    def kill_workers():
        for w in prep.verifier.engine._all:
            if w.alive:
                uids.append(w.facts["uid"])
                os.kill(w.facts["pid"], signal.SIGKILL)

    killer = threading.Timer(1.5, kill_workers)
    killer.start()
    try:
        v = prep.verifier.verify(task, "import time\ntime.sleep(120)\nreturn x")
    finally:
        killer.cancel()
    assert not v.solved and "worker-killed" in v.flags
    assert uids and all(isinstance(u, int) for u in uids)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_uid_processes(u) for u in uids):
        time.sleep(0.05)
    assert [p for u in uids for p in _uid_processes(u)] == []
    assert prep.verifier.verify(task, task.reference_body).solved  # a fresh worker takes over


def _anon_kb(pid: int) -> int:
    """Kilobytes of memory only this process maps (copied, not shared with its parent)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    return 0


def test_waiting_spares_take_the_copy_on_write_faults_ahead_of_their_request(fx):
    """With prefault on, an idle spare has copied the worker's heap (megabytes of private memory),
    at most its budget of it; with it off it shares nearly all of it. Verdicts are the same."""
    from regrow.verify.engine import Engine, EngineConfig

    prep, tasks = fx
    task = tasks["calc.core:clamp"]
    src = prep.source
    private = {}
    for prefault, budget in ((True, 64), (True, 2), (False, 64)):
        engine = Engine(src.root, prep.env.python, tuple(src.import_roots),
                        config=EngineConfig(workers=1, prefault=prefault, prefault_mb=budget))
        try:
            facts = engine.start()
            worker = facts["pid"]
            deadline = time.monotonic() + 10
            spares: list[int] = []
            while time.monotonic() < deadline:
                spares = [int(x) for x in Path(f"/proc/{worker}/task/{worker}/children").read_text().split()]
                if len(spares) == 2 and (not prefault or budget < 8 or min(_anon_kb(s) for s in spares) > 8 * 1024):
                    break
                time.sleep(0.1)
            time.sleep(0.3)
            private[(prefault, budget)] = min(_anon_kb(s) for s in spares)
            verifier = Verifier(src.root, prep.env.python, src.import_roots, config=VerifyConfig(workers=1),
                                backend=WarmBackend(engine))
            assert verifier.verify(task, task.reference_body).solved
            assert not verifier.verify(task, "return None").solved
        finally:
            engine.close()
    full, capped, off = private[(True, 64)], private[(True, 2)], private[(False, 64)]
    assert full > 8 * 1024 and full > 4 * off, private
    assert capped < full / 2, private


ESCAPE = """import _posixsubprocess, os
r, w = os.pipe()
a = [['/bin/sleep', '{marker}'], [b'/bin/sleep'], True, (), None, None, -1, -1, -1, -1, -1, -1, r, w,
     False, True, -1, None, None, None, -1, None]
try:
    _posixsubprocess.fork_exec(*a, False)
except TypeError:
    _posixsubprocess.fork_exec(*a)
if lo > hi:
    raise ValueError('bad')
return max(lo, min(x, hi))"""


def test_a_process_started_past_the_audit_hook_is_flagged_and_killed(fx):
    """The child stops after its last record and is killed later (off the request's path); what
    it started must still be found before the answer, flagged, and killed."""
    prep, tasks = fx
    task = tasks["calc.core:clamp"]
    marker = "617.25"  # sleep's argument: finds the process in /proc
    verdict = prep.verifier.verify(task, ESCAPE.format(marker=marker))
    assert not verdict.solved and "leftover-processes" in verdict.flags, (verdict.status, verdict.flags)

    def sleepers() -> list[str]:
        out = []
        for cmd in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if marker.encode() in cmd.read_bytes():
                    out.append(cmd.parent.name)
            except OSError:
                pass
        return out

    deadline = time.monotonic() + 5
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers() == []
    assert prep.verifier.verify(task, task.reference_body).solved


def test_fail_fast_stops_at_the_first_failure_and_still_runs_the_canary(fx):
    """A binary reward needs only the first failure: the rest of the covering tests are skipped
    (missing, so the verdict is the same), the canary still runs, and nothing is flagged."""
    prep, tasks = fx
    src = prep.source
    task = max(tasks.values(), key=lambda t: len(t.tests))
    assert len(task.tests) >= 2
    fast = Verifier(src.root, prep.env.python, src.import_roots, config=VerifyConfig(workers=1, fail_fast=True))
    try:
        broken = fast.verify(task, "return None")
        full = prep.verifier.verify(task, "return None")
        assert not broken.solved and not full.solved
        ran = [o.outcome for o in broken.outcomes if o.outcome != "missing"]
        assert len(ran) < len(task.tests) == len(full.outcomes) == len(broken.outcomes)
        assert ran[-1] == "failed" and "missing" not in [o.outcome for o in full.outcomes]
        assert not {"runner-tamper", "exit-trick"} & set(broken.flags), broken.flags
        assert broken.extra.get("canary") == "failed"
        ref = fast.verify(task, task.reference_body)
        assert ref.solved and ref.tests_passed == len(task.tests)
    finally:
        fast.close()


def test_fail_fast_holds_for_a_fresh_pytest_too_and_names_a_different_run(fx):
    from regrow.config import RunConfig
    from regrow.api import run_key

    prep, tasks = fx
    src = prep.source
    task = max(tasks.values(), key=lambda t: len(t.tests))
    cold = Verifier(src.root, prep.env.python, src.import_roots,
                    config=VerifyConfig(trust="subprocess", fail_fast=True))
    v = cold.verify(task, "return None")
    assert not v.solved and [o.outcome for o in v.outcomes].count("missing") == len(task.tests) - 1
    base = RunConfig(home=Path("/nonexistent"), solver="null")
    assert run_key(src, base) != run_key(src, base.model_copy(update={"fail_fast": True}))


def test_only_the_first_failing_tests_get_a_formatted_traceback_and_the_feedback_quotes_them(fx):
    prep, tasks = fx
    task = tasks["calc.core:sign"]
    assert len(task.tests) == 6
    bad = prep.verifier.verify(task, "return 99")
    assert bad.status == "failed" and bad.tests_passed == 0
    full, short = bad.outcomes[:4], bad.outcomes[4:]
    assert all("Traceback" in o.message and "assert 99 ==" in o.message for o in full)
    assert all(o.message.startswith("AssertionError: assert 99 ==") and "traceback left out" in o.message
               and "Traceback" not in o.message for o in short)
    assert all(o.test_id in bad.feedback for o in full) and "2 more failing tests" in bad.feedback
