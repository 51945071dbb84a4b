"""The reward service (`regrow serve`): batch scoring with request ids, the environment endpoints
in the OpenEnv shape, keys and limits, metrics, the OpenAPI schema under schemathesis, and a
server killed with SIGKILL mid-load whose clients still get every verdict once. The calc fixture
is prepared once for the module; candidates are verified for real (warm workers, the sandbox)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from _repos import fixture_config, make_repo
from conftest import CALC_FILES, CALC_VALID
from regrow.reward import Reward
from regrow.service.app import RewardService, create_app
from regrow.service.client import RemoteReward
from regrow.service.limits import ServeConfig, load_api_keys
from regrow.service.scorer import Catalog, LocalScorer
from regrow.store.ledger import Ledger

WRONG = "```python\nreturn None\n```"
HOSTILE = "```python\nimport os\nos._exit(0)\n```"


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    base = tmp_path_factory.mktemp("service")
    root = make_repo(base / "calc", CALC_FILES)
    home = base / "home"
    reward = Reward(str(root), fixture_config(home))
    yield {"root": root, "home": home, "reward": reward, "base": base}
    reward.close()


def right(reward: Reward, task_id: str) -> str:
    return "```python\n" + reward.tasks[task_id].reference_body + "\n```"


_n = 0


def make_service(calc, scorer=None, **limits) -> RewardService:
    """A fresh service (its own ledger file) over the module's prepared reward."""
    global _n
    _n += 1
    catalog = Catalog([calc["reward"]], [str(calc["root"])])
    return RewardService(catalog, ledger=Ledger(calc["base"] / f"ledger-{_n}.sqlite"), config=ServeConfig(**limits),
                         scorer=scorer)


class Gated:
    """The real scorer, held at a gate until a test opens it (to pin requests in flight)."""

    def __init__(self, inner):
        self.inner = inner
        self.workers = inner.workers
        self.gate = threading.Event()
        self.entered = threading.Event()

    def score_batch(self, items):
        self.entered.set()
        self.gate.wait(30)
        return self.inner.score_batch(items)

    def close(self):
        self.gate.set()
        self.inner.close()


# ------------------------------------------------------------------------------ scoring


def test_score_gives_each_item_its_verdict_and_a_retried_request_id_the_stored_one(calc):
    reward = calc["reward"]
    service = make_service(calc)
    items = [{"task_id": "calc.ops:clamp", "completion": right(reward, "calc.ops:clamp"), "request_id": "a"},
             {"task_id": "calc.ops:clamp", "completion": WRONG, "request_id": "b"},
             {"task_id": "calc.ops:add", "completion": "no code at all", "request_id": "c"},
             {"task_id": "calc.ops:add", "completion": HOSTILE, "request_id": "d"},
             {"task_id": "calc.ops:nope", "completion": WRONG, "request_id": "e"},
             {"task_id": "calc.ops:mean", "completion": right(reward, "calc.ops:mean")}]
    with TestClient(create_app(service)) as client:
        first = client.post("/v1/score", json=items)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["format"] == "regrow-score-batch/1"
        res = body["results"]
        assert [r["reward"] for r in res] == [1.0, 0.0, 0.0, 0.0, None, 1.0]
        assert [r["status"] for r in res[:3]] == ["solved", "failed", "malformed"]
        assert res[0]["tests_passed"] == res[0]["tests_total"] > 0 and res[0]["similarity"] == pytest.approx(1.0)
        assert res[3]["solved"] is False and res[3]["verdict"]["tests_total"] > 0
        assert res[4]["error"]["code"] == "unknown_task" and res[4]["verdict"] is None
        assert all(r["format"] == "regrow-score/1" and not r["replayed"] for r in res)
        # the same verdicts as the in-process reward
        assert res[1]["verdict"]["status"] == reward.score("calc.ops:clamp", WRONG).status
        verified = _metric(client, "regrow_verdicts_total")
        assert verified == 5  # the unknown task is never verified

        again = client.post("/v1/score", json=items[:4]).json()["results"]
        assert all(r["replayed"] for r in again)
        assert [{k: v for k, v in r.items() if k != "replayed"} for r in again] == \
               [{k: v for k, v in r.items() if k != "replayed"} for r in res[:4]]
        assert _metric(client, "regrow_verdicts_total") == verified  # answered from the ledger
        assert _metric(client, "regrow_replays_total") == 4
        # an id reused for another completion is a conflict, not a silent replay
        clash = client.post("/v1/score", json=[{**items[1], "completion": right(reward, "calc.ops:clamp")}])
        assert clash.json()["results"][0]["error"]["code"] == "conflict"
        # one id twice in one batch is verified once
        twice = client.post("/v1/score", json=[{**items[1], "request_id": "f"}] * 2).json()["results"]
        assert twice[0] == twice[1] and _metric(client, "regrow_verdicts_total") == verified + 1
    assert service.ledger.count() == 5  # a, b, c, d, f (e had no verdict)


def test_tasks_are_listed_and_filtered_by_source_module_and_strength(calc):
    with TestClient(create_app(make_service(calc))) as client:
        listing = client.get("/v1/tasks").json()
        assert listing["format"] == "regrow-task-list/1"
        assert {t["task_id"] for t in listing["tasks"]} == CALC_VALID == set(calc["reward"].tasks)
        assert listing["total"] == len(CALC_VALID) and all(t["source"] == "calc" for t in listing["tasks"])
        ops = client.get("/v1/tasks", params={"module": "calc.ops"}).json()["tasks"]
        assert {t["task_id"] for t in ops} == {t for t in CALC_VALID if t.startswith("calc.ops:")}
        assert client.get("/v1/tasks", params={"source": str(calc["root"])}).json()["total"] == len(CALC_VALID)
        assert client.get("/v1/tasks", params={"source": "calc"}).json()["total"] == len(CALC_VALID)
        # no task has a measured strength yet: a strength filter keeps none
        assert client.get("/v1/tasks", params={"min_strength": 0.5}).json()["total"] == 0
        missing = client.get("/v1/tasks", params={"source": "nope"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def _metric(client, name: str, **labels) -> float:
    text = client.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()) and (head == name or head[len(name)] == "{"):
                total += float(value)
    return total


# ------------------------------------------------------------------------------ environment


def test_an_episode_over_http_in_the_openenv_shape(calc):
    reward = calc["reward"]
    with TestClient(create_app(make_service(calc, max_turns=2))) as client:
        assert client.get("/health").json() == {"status": "healthy"}
        schema = client.get("/schema").json()
        assert schema["action"]["required"] == ["completion"] and "episode_id" in schema["state"]["properties"]
        meta = client.get("/metadata").json()
        assert meta["sources"][0]["name"] == "calc" and meta["sources"][0]["tasks"] == len(CALC_VALID)

        start = client.post("/reset", json={"task_id": "calc.ops:clamp"}).json()
        eid = start["metadata"]["episode_id"]
        assert start["done"] is False and start["reward"] is None
        assert "def clamp" in start["observation"]["prompt"] and start["observation"]["messages"][0]["role"] == "system"

        wrong = client.post("/step", json={"episode_id": eid, "action": {"completion": WRONG}, "request_id": "t1"})
        assert wrong.status_code == 200, wrong.text
        w = wrong.json()
        assert (w["reward"], w["done"]) == (0.0, False) and "FAILED" in w["observation"]["prompt"]
        # a retried step is not taken twice
        assert client.post("/step", json={"episode_id": eid, "action": {"completion": WRONG},
                                          "request_id": "t1"}).json() == w
        assert client.get("/state", params={"episode_id": eid}).json()["step_count"] == 1

        solved = client.post("/step", json={"episode_id": eid,
                                            "action": {"completion": right(reward, "calc.ops:clamp")}}).json()
        assert (solved["reward"], solved["done"], solved["metadata"]["terminated"]) == (1.0, True, True)
        state = client.get("/state", params={"episode_id": eid}).json()
        assert state["solved"] and state["done"] and state["step_count"] == 2
        over = client.post("/step", json={"episode_id": eid, "action": {"completion": WRONG}})
        assert over.status_code == 409 and over.json()["error"]["code"] == "episode_over"

        # turns run out: truncated after max_turns answers
        again = client.post("/reset", json={"task_id": "calc.ops:add", "episode_id": "mine"}).json()
        assert again["metadata"]["episode_id"] == "mine"
        client.post("/step", json={"episode_id": "mine", "action": {"completion": WRONG}})
        last = client.post("/step", json={"episode_id": "mine", "action": {"completion": WRONG}}).json()
        assert last["done"] and last["metadata"]["truncated"] and not last["metadata"]["terminated"]

        # seeded draws are reproducible; unknown episodes and tasks are clear errors
        draws = {client.post("/reset", json={"seed": 7}).json()["observation"]["task_id"] for _ in range(3)}
        assert len(draws) == 1 and draws <= CALC_VALID
        assert client.post("/step", json={"episode_id": "gone", "action": {"completion": ""}}).status_code == 404
        assert client.post("/reset", json={"task_id": "calc.ops:nope"}).json()["error"]["code"] == "unknown_task"
        assert _metric(client, "regrow_open_episodes") == 5


# ------------------------------------------------------------------------------ keys and limits


def test_api_keys_from_a_file_and_the_environment_guard_every_route_but_health(calc, tmp_path, caplog):
    key_file = tmp_path / "keys"
    key_file.write_text("# the trainers' keys\nfile-key-123\n")
    keys = load_api_keys(key_file, {"REGROW_API_KEYS": "env-key-456, other"})
    assert keys == {"file-key-123", "env-key-456", "other"}
    caplog.set_level(logging.INFO, logger="regrow.service")
    with TestClient(create_app(make_service(calc, api_keys=keys))) as client:
        refused = client.get("/v1/tasks")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert client.get("/v1/tasks", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/v1/tasks", headers={"X-API-Key": "file-key-123"}).status_code == 200
        assert client.get("/v1/tasks", headers={"Authorization": "Bearer env-key-456"}).status_code == 200
        assert client.post("/v1/score", json=[]).status_code == 401
        assert client.get("/health").status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert '"event": "request"' in logged and '"status": 401' in logged
    assert "file-key-123" not in logged and "env-key-456" not in logged and "wrong" not in logged


def test_body_and_batch_limits_are_413_in_the_error_shape(calc):
    with TestClient(create_app(make_service(calc, max_body_bytes=2000, max_batch=3))) as client:
        big = client.post("/v1/score", json=[{"task_id": "calc.ops:add", "completion": "x" * 5000}])
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        many = client.post("/v1/score", json=[{"task_id": "calc.ops:add", "completion": "x"}] * 4)
        assert many.status_code == 413 and many.json()["error"]["code"] == "too_many_items"
        bad = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
        extra = client.post("/v1/score", json=[{"task_id": "calc.ops:add", "completion": "", "bogus": 1}])
        assert extra.status_code == 422 and "bogus" in extra.json()["error"]["message"]
        assert _metric(client, "regrow_rejected_total", reason="too_large") == 2


def test_past_the_in_flight_limit_a_request_gets_429_with_retry_after_and_nothing_is_lost(calc):
    reward = calc["reward"]
    gated = Gated(LocalScorer(Catalog([reward])))
    service = make_service(calc, scorer=gated, max_inflight=2)
    app = create_app(service)

    async def scenario():
        service.started()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            first = asyncio.ensure_future(client.post("/v1/score", json=[
                {"task_id": "calc.ops:add", "completion": right(reward, "calc.ops:add"), "request_id": "x1"},
                {"task_id": "calc.ops:add", "completion": WRONG, "request_id": "x2"}]))
            while service.admission.inflight < 2:
                await asyncio.sleep(0.01)
            refused = await client.post("/v1/score", json=[{"task_id": "calc.ops:add", "completion": WRONG,
                                                            "request_id": "x3"}])
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "overloaded"
            assert int(refused.headers["retry-after"]) >= 1
            # a batch that could never fit is not asked to come back
            never = await client.post("/v1/score", json=[{"task_id": "calc.ops:add", "completion": WRONG}] * 3)
            assert never.status_code == 413 and never.json()["error"]["code"] == "too_many_items"
            metrics = (await client.get("/metrics")).text
            assert "regrow_inflight_candidates 2.0" in metrics and "regrow_queue_depth" in metrics
            # an empty batch asks for no room
            empty = await client.post("/v1/score", json=[])
            assert empty.status_code == 200 and empty.json()["results"] == []
            gated.gate.set()
            done = await first
            assert [r["reward"] for r in done.json()["results"]] == [1.0, 0.0]
            retried = await client.post("/v1/score", json=[{"task_id": "calc.ops:add", "completion": WRONG,
                                                            "request_id": "x3"}])
            assert retried.status_code == 200 and retried.json()["results"][0]["reward"] == 0.0

    asyncio.run(scenario())
    service.close()


def test_a_request_past_its_deadline_gets_504_and_its_retry_collects_the_stored_verdict(calc):
    reward = calc["reward"]
    gated = Gated(LocalScorer(Catalog([reward])))
    service = make_service(calc, scorer=gated)
    app = create_app(service)
    item = {"task_id": "calc.ops:mean", "completion": right(reward, "calc.ops:mean"), "request_id": "slow-1"}

    async def scenario():
        service.started()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
            late = await client.post("/v1/score", params={"timeout_s": 0.3}, json=[item])
            assert late.status_code == 504 and late.json()["error"]["code"] == "deadline"
            # retried while still verifying: it joins the same verification
            retry = asyncio.ensure_future(client.post("/v1/score", json=[item]))
            await asyncio.sleep(0.1)
            gated.gate.set()
            res = (await retry).json()["results"][0]
            assert res["reward"] == 1.0 and res["replayed"]
            while service.admission.inflight:
                await asyncio.sleep(0.01)
            assert service.ledger.count() == 1
            assert service.metrics.verdicts.labels("solved")._value.get() == 1

    asyncio.run(scenario())
    service.close()


def test_shutdown_refuses_new_work_and_fails_unfinished_work_explicitly(calc):
    reward = calc["reward"]
    gated = Gated(LocalScorer(Catalog([reward])))
    service = make_service(calc, scorer=gated, grace_s=0.3)
    app = create_app(service)
    item = {"task_id": "calc.ops:add", "completion": WRONG, "request_id": "s1"}

    async def scenario():
        service.started()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
            pending = asyncio.ensure_future(client.post("/v1/score", json=[item]))
            while not gated.entered.is_set():
                await asyncio.sleep(0.01)
            service.begin_drain()
            assert (await client.get("/health")).json() == {"status": "degraded"}
            new = await client.post("/v1/score", json=[{**item, "request_id": "s2"}])
            assert new.status_code == 503 and new.json()["error"]["code"] == "shutting_down"
            failed = await pending  # the grace passed with the verification held
            assert failed.status_code == 503
            assert "retry them with the same request_id" in failed.json()["error"]["message"]
            assert service.counts["failed_at_shutdown"] == 1
            gated.gate.set()  # the verification goes on after its request was answered
            while service.admission.inflight:
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    service.close()
    # its verdict is stored for the retry the 503 asked for
    assert Ledger(service.ledger.path).get_many(["s1"])["s1"][1]["reward"] == 0.0


# ------------------------------------------------------------------------------ schema


@pytest.mark.slow
def test_the_openapi_schema_holds_under_schemathesis(calc):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import negative_data_rejection

    service = make_service(calc, api_keys=frozenset({"k"}), max_turns=2)
    app = create_app(service)
    with TestClient(app):  # runs the lifespan (the service's loop) for schemathesis' calls
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ops = [r.ok() for r in schema.get_all_operations()]
        assert {f"{o.method.upper()} {o.path}" for o in ops} >= {
            "POST /v1/score", "GET /v1/tasks", "POST /reset", "POST /step", "GET /state", "GET /health",
            "GET /schema", "GET /metadata", "GET /metrics"}
        seen: dict[tuple, set] = {}
        for op in ops:
            # each /v1/score and /step example may verify candidates: keep those few
            examples = 10 if op.path in ("/v1/score", "/step") else 20
            modes = [schemathesis.GenerationMode.POSITIVE]
            if op.path in ("/v1/score", "/v1/tasks", "/reset", "/step", "/state"):  # those with inputs
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            for mode in modes:

                @settings(max_examples=examples, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                @given(case=op.as_strategy(mode))
                def check(case):
                    # negative_data_rejection is left out: FastAPI reads a repeated query parameter's last
                    # value where the schema says one string; every other built-in check runs.
                    response = case.call_and_validate(headers={"X-API-Key": "k"},
                                                      excluded_checks=[negative_data_rejection])
                    seen.setdefault((op.path, mode.value), set()).add(response.status_code)
                    assert response.status_code < 500
                    if response.status_code >= 400:
                        body = response.json()
                        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}

                check()
        assert {path for path, _ in seen} >= {"/v1/score", "/reset", "/step", "/v1/tasks", "/state"}
        assert 200 in seen[("/v1/score", "positive")] and 422 in seen[("/v1/score", "negative")]


# ------------------------------------------------------------------------------ over real HTTP


@contextmanager
def serving(service: RewardService):
    """The service under a real uvicorn on loopback (a free port), in a thread of this process."""
    import uvicorn

    from regrow.service.app import listen_socket

    sock = listen_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    start = time.monotonic()
    while not server.started:
        assert thread.is_alive() and time.monotonic() - start < 30, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def test_remote_reward_gives_the_verdicts_of_the_in_process_reward(calc):
    from regrow.errors import ConfigError
    from regrow.service.client import RemoteError

    reward = calc["reward"]
    with serving(make_service(calc, api_keys=frozenset({"secret"}))) as url:
        with RemoteReward(url, api_key="secret") as remote:
            solved = remote.score("calc.ops:clamp", right(reward, "calc.ops:clamp"))
            assert solved.solved and solved.reward == 1.0 and solved.tests_passed == solved.tests_total > 0
            local = reward.score("calc.ops:clamp", WRONG)
            remote_wrong = remote.score("calc.ops:clamp", WRONG, request_id="w1")
            assert (remote_wrong.status, remote_wrong.tests_passed, remote_wrong.tests_total) == \
                   (local.status, local.tests_passed, local.tests_total)
            assert remote_wrong.outcomes and remote_wrong.feedback
            assert remote.score("calc.ops:clamp", WRONG, request_id="w1") == remote_wrong  # stored, not re-verified
            batch = remote.score_batch([("calc.ops:add", right(reward, "calc.ops:add")),
                                        {"task_id": "calc.ops:nope", "completion": WRONG},
                                        {"task_id": "calc.ops:mean", "completion": WRONG, "source": "calc"}])
            assert batch[0].solved and batch[1] is None and batch[2].status == "failed"
            assert remote.value(batch[0]) == 1.0
            assert {t["task_id"] for t in remote.tasks(module="calc.shapes")} == \
                   {t for t in CALC_VALID if t.startswith("calc.shapes:")}
            with pytest.raises(ConfigError, match="no valid task"):
                remote.score("calc.ops:nope", WRONG)
        with RemoteReward(url) as keyless, pytest.raises(RemoteError, match="401"):
            keyless.score("calc.ops:add", WRONG)


def test_the_trainer_adapters_score_over_the_service_when_a_url_is_configured(calc, monkeypatch):
    from regrow.integrations import _shared, verl
    from regrow.integrations.trl import RegrowReward

    reward = calc["reward"]
    service = make_service(calc)
    rows = [("calc.ops:clamp", right(reward, "calc.ops:clamp")), ("calc.ops:clamp", WRONG),
            ("calc.ops:add", "no code at all")]
    info = {"source": str(calc["root"]), "source_key": reward.prepared.source.key}
    try:
        with serving(service) as url:
            monkeypatch.delenv(verl.SOURCE_ENV, raising=False)
            monkeypatch.setenv(verl.URL_ENV, url)
            naive = [verl.compute_score("regrow/calc", text, tid, info) for tid, text in rows]
            assert [r["score"] for r in naive] == [1.0, 0.0, 0.0] and naive[0]["similarity"] == pytest.approx(1.0)
            assert set(naive[0]) == {"score", "solved", "tests_passed", "similarity"}
            batch = verl.compute_score_batch(["regrow/calc"] * 3, [t for _, t in rows], [t for t, _ in rows],
                                             [info] * 3)
            assert batch == naive
            # the row alone can name the service (no environment variable, no source)
            monkeypatch.delenv(verl.URL_ENV)
            assert verl.compute_score("x", WRONG, "calc.ops:add", {"reward_url": url})["score"] == 0.0
            # RegrowReward with url=: nothing prepared in the trainer, unknown tasks read as None
            fn = RegrowReward(url=url)
            assert fn.rewards == [] and fn.remote is not None
            out = asyncio.run(fn(prompts=["p"] * 3, completions=[rows[0][1], [{"role": "assistant", "content": WRONG}],
                                                                  WRONG],
                                 task_id=["calc.ops:clamp", "calc.ops:clamp", "calc.ops:unused"]))
            assert out == [1.0, 0.0, None] and fn.counts["solved"] == 1 and fn.counts["unknown_task"] == 1
            fn.close()
            verified = sum(service.metrics.verdicts.labels(s)._value.get() for s in ("solved", "failed", "malformed"))
            assert verified == 3 + 3 + 1 + 2  # every one of them went through the service
    finally:
        _shared.close_all()


def _start_server(home: Path, root: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "regrow", "serve", str(root), "--home", str(home), "--python", sys.executable,
           "--workers", "2", "--timeout", "30", "--port", str(port)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})


def _wait_listening(proc: subprocess.Popen, timeout: float = 120.0) -> str:
    """The URL of the server's ``listening`` log line (its stderr is drained in a thread after)."""
    start = time.monotonic()
    for line in proc.stderr:
        if '"event": "listening"' in line:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return json.loads(line)["url"]
        assert time.monotonic() - start < timeout, "the server did not start"
    raise AssertionError(f"the server exited ({proc.wait()}) before listening")


@pytest.mark.slow
def test_a_server_killed_with_sigkill_mid_load_still_gives_every_verdict_exactly_once(calc):
    import socket

    reward = calc["reward"]
    with socket.socket() as s:  # one port for both servers, so the clients' URL stays right
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tasks = sorted(CALC_VALID)
    items = []
    for i in range(48):
        tid = tasks[i % len(tasks)]
        text = [right(reward, tid), WRONG, "no code", HOSTILE][i % 4]
        items.append({"task_id": tid, "completion": text, "request_id": f"kill-{i}"})
    proc = _start_server(calc["home"], calc["root"], port)
    url = _wait_listening(proc)
    answers: dict[str, list[dict]] = {}
    lock = threading.Lock()
    remote = RemoteReward(url, retry_for=180)

    def one(item):
        [res] = remote.results([item])
        with lock:
            answers.setdefault(item["request_id"], []).append(res)

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(one, it) for it in items]
            while len(answers) < 10:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
            answered_before = len(answers)
            proc = _start_server(calc["home"], calc["root"], port)
            _wait_listening(proc)
            for f in futures:
                f.result()
        assert answered_before < len(items)  # the kill did land mid-load
        assert remote.retries > 0
        assert sorted(answers) == sorted(it["request_id"] for it in items)
        assert all(len(v) == 1 for v in answers.values())
        # every id answered again is answered from the ledger with the verdict first sent
        again = remote.results(items)
        for item, res in zip(items, again):
            first = answers[item["request_id"]][0]
            assert res["replayed"] and {k: v for k, v in res.items() if k != "replayed"} == \
                   {k: v for k, v in first.items() if k != "replayed"}
            expected = 1.0 if item["completion"] == right(reward, item["task_id"]) else 0.0
            assert res["reward"] == expected
        assert Ledger(calc["home"] / "service.sqlite").count() == len(items)
    finally:
        remote.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


@pytest.mark.slow
def test_sigterm_drains_the_server_and_fails_unfinished_requests_explicitly(calc):
    """A candidate that loops until its timeout is in flight when SIGTERM comes: its request is
    answered 503 once the grace passes (not dropped), the verification still finishes and is
    stored, and the successor answers the retry from the ledger."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = lambda: [sys.executable, "-m", "regrow", "serve", str(calc["root"]),  # noqa: E731
                   "--home", str(calc["home"]), "--python", sys.executable, "--workers", "2", "--timeout", "4",
                   "--grace", "1", "--port", str(port)]
    loop = {"task_id": "calc.ops:add", "completion": "```python\nwhile True:\n    pass\n```", "request_id": "term-1"}
    proc = subprocess.Popen(cmd(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = _wait_listening(proc)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.post, f"{url}/v1/score", json=[loop], timeout=60)
            time.sleep(1.0)  # the candidate is running
            proc.send_signal(signal.SIGTERM)
            answer = pending.result()
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "shutting_down"
        assert int(answer.headers["retry-after"]) >= 1
        proc.wait(60)
        stored = Ledger(calc["home"] / "service.sqlite").get_many(["term-1"])
        assert stored["term-1"][1]["status"] == "timeout"  # finished after the answer, and kept
        proc = subprocess.Popen(cmd(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_listening(proc)
        with RemoteReward(url) as remote:
            [res] = remote.results([loop])
        assert res["replayed"] and res["status"] == "timeout" and res["reward"] == 0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
