"""The call recorder: recording changes nothing the suite sees, and what it records replays.

A throwaway package whose tests branch on what `inspect` says of its functions (a dispatcher that
runs coroutine functions on an event loop and calls the others), use a generator, an async
generator, a classmethod / staticmethod / property, a ``functools.wraps`` decorator, a function
registered by identity at import and a function that keeps a counter on itself. Its suite runs
for real, once plainly and once recording, and then through grok, validation and the oracle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from _repos import make_repo
from regrow.config import RunConfig
from regrow.grok.recorder import record_calls
from regrow.api import prepare, run
from regrow.verify.sandbox import Job, LocalSandbox
from regrow.store import Store

DISP_FILES = {
    "pyproject.toml": """
        [project]
        name = "disp"
        version = "0.1.0"

        [tool.pytest.ini_options]
        timeout = 60
    """,
    "disp/__init__.py": "",
    "disp/core.py": '''
        import asyncio
        import functools
        import inspect

        HANDLERS = {}
        PRIORITY = {}


        def handler(name):
            def register(fn):
                HANDLERS[name] = fn
                return fn
            return register


        def dispatch(fn, *args):
            """Call fn: a coroutine function on a fresh event loop, anything else directly."""
            if inspect.iscoroutinefunction(fn):
                return asyncio.run(fn(*args))
            result = fn(*args)
            if inspect.isawaitable(result):
                raise TypeError("a sync handler returned an awaitable")
            return result


        async def fetch_double(x):
            """Twice x, after yielding to the event loop once."""
            await asyncio.sleep(0)
            if x < 0:
                raise ValueError("negative")
            total = x + x
            return total


        def count_up(n):
            """0, 1, ..., n - 1; returns n."""
            i = 0
            while i < n:
                got = yield i
                if got is not None:
                    i = got
                i += 1
            return n


        async def ticks(n):
            for i in range(n):
                await asyncio.sleep(0)
                yield i


        def tagged(fn):
            @functools.wraps(fn)
            def inner(*args, **kwargs):
                return fn(*args, **kwargs)
            inner.tag = "tagged"
            return inner


        def counted(fn):
            @functools.wraps(fn)
            def inner(*args, **kwargs):
                inner.calls += 1
                return fn(*args, **kwargs)
            inner.calls = 0
            return inner


        @tagged
        def triple(x):
            """Three times x."""
            y = x * 3
            return y


        @counted
        def halve(x):
            y = x / 2
            return y


        @handler("square")
        def square(x):
            y = x * x
            return y


        PRIORITY[square] = 1


        def lookup(name):
            fn = HANDLERS[name]
            return fn


        class Box:
            def __init__(self, v):
                self.v = v

            @staticmethod
            def pair(a, b):
                both = (a, b)
                return both

            @classmethod
            def of(cls, v):
                box = cls(v)
                return box

            @property
            def doubled(self):
                v = self.v
                return v * 2

            def grow(self, k):
                self.v += k
                return self.v
    ''',
    "tests/test_disp.py": '''
        import asyncio
        import inspect

        import pytest

        from disp import core
        from disp.core import Box, count_up, dispatch, fetch_double, halve, lookup, square, ticks, triple


        @pytest.mark.timeout(20)
        def test_dispatch_runs_a_coroutine_function_on_a_loop():
            assert inspect.iscoroutinefunction(fetch_double) and asyncio.iscoroutinefunction(fetch_double)
            assert dispatch(fetch_double, 4) == 8
            assert dispatch(triple, 2) == 6


        @pytest.mark.timeout(20)
        def test_async_errors_surface_on_await():
            with pytest.raises(ValueError):
                asyncio.run(fetch_double(-1))
            with pytest.raises(TypeError):
                fetch_double()  # binding errors come at call time, not at await


        @pytest.mark.timeout(20)
        def test_a_result_nobody_checks():
            asyncio.run(fetch_double(5))


        @pytest.mark.timeout(20)
        def test_generator_sends_and_returns():
            assert inspect.isgeneratorfunction(count_up)
            with pytest.raises(TypeError):
                count_up()
            g = count_up(5)
            assert next(g) == 0 and g.send(2) == 3
            with pytest.raises(StopIteration) as stop:
                while True:
                    next(g)
            assert stop.value.value == 5
            assert list(count_up(3)) == [0, 1, 2]


        @pytest.mark.timeout(20)
        def test_async_generator():
            assert inspect.isasyncgenfunction(ticks)

            async def collect():
                return [i async for i in ticks(3)]

            assert asyncio.run(collect()) == [0, 1, 2]


        def test_descriptors():
            assert isinstance(vars(Box)["of"], classmethod) and isinstance(vars(Box)["pair"], staticmethod)
            assert isinstance(vars(Box)["doubled"], property)
            box = Box.of(2)
            assert type(box) is Box and box.doubled == 4 and box.grow(3) == 5
            assert Box.pair(1, 2) == (1, 2) and Box(0).pair(3, 4) == (3, 4)


        def test_wraps_metadata_and_signature():
            assert triple(3) == 9 and triple.tag == "tagged"
            assert triple.__name__ == "triple" and triple.__qualname__ == "triple"
            assert triple.__doc__ == "Three times x." and triple.__module__ == "disp.core"
            assert str(inspect.signature(triple)) == "(x)" and triple.__wrapped__(2) == 6
            assert str(inspect.signature(fetch_double)) == "(x)"
            assert fetch_double.__code__.co_argcount == 1 and count_up.__code__.co_varnames[0] == "n"
            assert inspect.getfullargspec(fetch_double).args == ["x"]


        def test_a_function_that_counts_its_calls_on_itself():
            before = halve.calls
            assert halve(3) == 1.5 and halve.calls == before + 1


        def test_identity_of_registered_functions():
            assert lookup("square") is square and core.HANDLERS["square"] is core.square
            assert core.PRIORITY[square] == 1 and dispatch(square, 3) == 9
    ''',
}

SYNC_RECORDED = ("disp.core:dispatch", "disp.core:triple", "disp.core:lookup", "disp.core:Box.of",
                 "disp.core:Box.pair", "disp.core:Box.grow", "disp.core:Box.__init__")


@pytest.fixture(scope="module")
def disp(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("disp") / "disp", DISP_FILES)


@pytest.mark.timeout(300)
def test_recording_changes_no_outcome_and_records_the_sync_functions(disp, tmp_path):
    python = Path(sys.executable)
    plain = LocalSandbox().run(Job(cwd=disp, python=python, pythonpath=(str(disp),), timeout=120))
    store = Store(tmp_path / "regrow.sqlite")
    rec = record_calls(disp, python, (".",), store, "disp", timeout=120)
    outcomes = {t: o.outcome for t, o in rec.outcome.results.items()}
    assert not plain.timed_out and not rec.outcome.timed_out and rec.outcome.finished
    assert len(outcomes) == 9 and set(outcomes.values()) == {"passed"}, rec.outcome.output_tail[-3000:]
    assert outcomes == {t: o.outcome for t, o in plain.results.items()}

    rows = store.query("SELECT * FROM calls WHERE source_key='disp' ORDER BY qualname, seq")
    by = {}
    for r in rows:
        by.setdefault(r["qualname"], []).append(r)
    for q in SYNC_RECORDED:
        assert by.get(q), f"no calls recorded for {q}"
    assert ["int", "9"] in [json.loads(r["result"]) for r in by["disp.core:triple"] if r["result"]]
    # The coroutine function: recorded by an async wrapper, with what the call awaited to.
    fetch = by["disp.core:fetch_double"]
    assert {r["return_type"] for r in fetch if not r["exception"]} == {"int"}
    assert ["int", "8"] in [json.loads(r["result"]) for r in fetch if r["result"]]
    assert [r["exception"] for r in fetch if r["exception"]] == ["ValueError"] and all(r["args"] for r in fetch)
    # The generator: its arguments, never its items.
    gen = by["disp.core:count_up"]
    assert gen and all(r["return_type"] == "generator" and r["result"] is None and r["args"] for r in gen)
    # Left alone: an async generator, a function held by a registry, one that refers to itself.
    assert not {"disp.core:ticks", "disp.core:square", "disp.core:halve"} & set(by)


@pytest.mark.timeout(600)
def test_an_async_function_is_a_valid_task_its_calls_replay_awaited_and_the_oracle_solves_it(disp, tmp_path):
    config = RunConfig(home=tmp_path / "home", python=Path(sys.executable), solver="oracle", workers=2, timeout=30)
    prep = prepare(str(disp), config)
    try:
        tasks = {t.task_id: t for t in prep.valid}
        task = tasks.get("disp.core:fetch_double")
        assert task is not None, {t.task_id: (t.status, t.reason) for t in prep.tasks}
        ok = prep.verifier.verify(task, task.reference_body)
        assert ok.solved and ok.eq_cases >= 2 and ok.eq_matched == ok.eq_cases
        # Passes every test, but one recorded call (whose result no test checks) awaits to another value.
        sneaky = task.reference_body.replace("total = x + x", "total = 0 if x == 5 else x + x")
        assert sneaky != task.reference_body
        bad = prep.verifier.verify(task, sneaky)
        assert all(o.outcome == "passed" for o in bad.outcomes)
        assert not bad.solved and "eq-mismatch" in bad.flags
    finally:
        prep.close()

    run_id = run(str(disp), config)
    store = Store(config.home / "regrow.sqlite")
    verdicts = {r["task_id"]: json.loads(r["verdict"]) for r in
                store.query("SELECT task_id, verdict FROM attempts WHERE run_id=?", (run_id,))}
    assert "disp.core:fetch_double" in verdicts
    v = verdicts["disp.core:fetch_double"]
    assert v["status"] == "solved" and v["eq_cases"] >= 2 and v["eq_matched"] == v["eq_cases"]
    assert all(v["status"] == "solved" for v in verdicts.values())
