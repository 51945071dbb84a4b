"""The closed loop against a server speaking the OpenAI wire protocol: feedback reaches the
model, the chain stops when solved, budgets hold, and repeated requests come from the cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from _repos import make_repo
from conftest import CALC_FILES
from openai_stub_server import OpenAIStub, Reply
from regrow.config import RunConfig
from regrow.report.runs import build_report
from regrow.api import open_store, run

RIGHT = "```python\ndef clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n```"
WRONG = "```python\ndef clamp(x, lo, hi):\n    return x\n```"


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("calc") / "calc", CALC_FILES), tmp_path_factory.mktemp("home")


def config(home: Path, url: str, **kw) -> RunConfig:
    base = {"home": home, "python": Path(sys.executable), "workers": 2, "timeout": 30,
            "solver": f"openai:stub-model@{url}", "min_statements": 3}
    return RunConfig(**{**base, **kw})


def _prompt_text(body: dict) -> str:
    return "\n".join(m["content"] for m in body.get("messages", []))


def teacher(body: dict) -> Reply:
    """Wrong first; right once the prompt carries the failing test's feedback."""
    return Reply(texts=(RIGHT if "FAILED tests/test_ops.py::test_clamp" in _prompt_text(body) else WRONG,))


def test_feedback_reaches_the_model_and_the_chain_stops_when_solved(calc):
    root, home = calc
    with OpenAIStub(teacher) as server:
        cfg = config(home, server.base_url, turns=3, run_id="teach")
        rep = build_report(open_store(cfg), run(str(root), cfg))
        asked = [r.body for r in server.requests]
    store = open_store(cfg)
    rows = store.query("SELECT turn, status, attempt FROM attempts WHERE run_id='teach' AND task_id='calc.ops:clamp' "
                       "ORDER BY turn")
    assert [(r["turn"], r["status"]) for r in rows] == [(0, "failed"), (1, "solved")]  # no third turn
    clamp_prompts = [b for b in asked if "body of `clamp`" in b["messages"][-1]["content"]]
    assert len(clamp_prompts) == 2
    assert "FAILED tests/test_ops.py::test_clamp" not in _prompt_text(clamp_prompts[0])
    second = _prompt_text(clamp_prompts[1])
    assert "tests/test_ops.py::test_clamp" in second and "return x" in second  # its own answer and the feedback
    attempt = json.loads(rows[1]["attempt"])
    assert attempt["history"][0][0] == WRONG and "test_clamp" in attempt["history"][0][1]
    assert attempt["meta"]["prompt"][-1]["content"] in second  # the exact prompt sent is recorded
    assert rep.pass_at_first_turn < rep.pass_at[1]
    # The prompt's context section came from the repository context engine, recorded with the turn.
    assert attempt["context"] and attempt["context"].strip().splitlines()[0] in second
    assert "def test_clamp" in attempt["context"]  # the covering test is shown to the model
    # ... and the items behind it, each with its breadcrumb (the trajectories export reads them).
    items = attempt["context_items"]
    assert items and all(i["breadcrumb"] and "text" not in i for i in items)
    assert any(i["subject"].endswith("test_clamp") for i in items)


def test_a_repeated_run_is_answered_from_the_response_cache(calc):
    root, home = calc
    with OpenAIStub(lambda body: Reply(texts=(WRONG,))) as server:
        run(str(root), config(home, server.base_url, turns=1, run_id="cache-a", tasks=2))
        first = len(server.requests)
        run(str(root), config(home, server.base_url, turns=1, run_id="cache-b", tasks=2))
        assert len(server.requests) == first == 2
        run(str(root), config(home, server.base_url, turns=1, run_id="cache-c", tasks=2, cache=False))
        assert len(server.requests) == 4
        # another context is another request: a simple-context run never reuses the engine's answers
        run(str(root), config(home, server.base_url, turns=1, run_id="cache-d", tasks=2, context="simple"))
        assert len(server.requests) == 6
        assert "Context" not in _prompt_text(server.requests[-1].body)


def test_stop_on_solve_ends_a_tasks_other_chains(calc):
    root, home = calc
    with OpenAIStub(lambda body: Reply(texts=(RIGHT,))) as server:
        cfg = config(home, server.base_url, samples=4, tasks=1, stop_on_solve=True, workers=1,
                     model_concurrency=1, run_id="stop", seed=5)
        # Pick the seed so clamp is the one task chosen.
        rep = build_report(open_store(cfg), run(str(root), cfg))
    if rep.per_task[0]["task"] != "calc.ops:clamp":
        pytest.fail(f"seed 5 chose {rep.per_task[0]['task']}; pick a seed that chooses clamp")
    # Two threads (one model slot, one verification slot): at most two chains start before the
    # first verdict is known; the other two never run.
    assert rep.chains <= 2 and rep.pass_at[1] == 1.0


def test_a_token_budget_stops_a_task(calc):
    root, home = calc
    with OpenAIStub(lambda body: Reply(texts=(WRONG,))) as server:
        cfg = config(home, server.base_url, turns=5, tasks=1, task_tokens=1, run_id="budget", seed=5)
        rep = build_report(open_store(cfg), run(str(root), cfg))
        assert len(server.requests) == 1
    assert rep.attempts == 1


def test_a_dead_server_is_a_clear_error_and_the_run_resumes_later(calc, tmp_path):
    root, home = calc
    from regrow.errors import SolverError
    cfg = config(home, "http://127.0.0.1:9/v1", run_id="dead", tasks=2)
    with pytest.raises(SolverError, match="127.0.0.1:9"):
        run(str(root), cfg)
    with OpenAIStub(lambda body: Reply(texts=(RIGHT,))) as server:
        rep = build_report(open_store(cfg), run(str(root), config(home, server.base_url, run_id="dead", tasks=2)))
    assert rep.finished and rep.attempts == 2
