"""The Ray executor on a real local cluster: a head and a second node process on this machine.

The cluster is started by the module's fixture (`ray start --head`, then a second `ray start`
with its own resources) under a short temporary folder, and every process of it is ended by id
at teardown. One source (the calc fixture) is shared by the module: each node builds its engine
once, the second reusing what the first stored in the shared home.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import ray

from _raycluster import FAST_FAILURE, LocalCluster, free_port
from _repos import fixture_config, make_repo
from conftest import CALC_FILES

from regrow.executor import ThreadExecutor, make_executor, parse_executor
from regrow.errors import ConfigError

pytestmark = pytest.mark.slow

def _node_b() -> str:
    return next(n["NodeID"] for n in ray.nodes() if n.get("Alive") and "node_b" in n["Resources"])


@pytest.fixture(scope="module")
def cluster():
    local = LocalCluster(FAST_FAILURE)
    try:
        local.start()
        local.add_node()
        ray.init(address=local.address, log_to_driver=False, configure_logging=False)
        yield local
    finally:
        if ray.is_initialized():
            ray.shutdown()
        local.stop()


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    repo = make_repo(root / "calc", CALC_FILES)
    return repo, fixture_config(root / "home", workers=2, trust="fast")


@pytest.fixture(scope="module")
def scorer(cluster, calc):
    from regrow.service.cluster import ClusterScorer

    repo, config = calc
    with ClusterScorer(cluster.address, sources=[str(repo)], config=config) as scorer:
        yield scorer


# Bodies for calc's tasks: right ones (the original), wrong ones, and a prefix that makes a right
# one slow (so a batch lasts long enough to lose a node in the middle of it).
RIGHT = {"calc.ops:add": "result = a + b\nreturn result",
         "calc.ops:clamp": "if x < lo:\n    return lo\nif x > hi:\n    return hi\nreturn x",
         "calc.ops:mean": "total = sum(xs)\nreturn total / len(xs)"}
WRONG = {"calc.ops:add": "return a - b", "calc.ops:clamp": "return x", "calc.ops:mean": "return 0"}
SLOW = "import time\ntime.sleep(1.0)\n"


def _batch(n: int) -> tuple[list, list[str]]:
    from regrow.service.cluster import ScoreItem

    items, expected = [], []
    tasks = sorted(RIGHT)
    for i in range(n):
        task = tasks[i % len(tasks)]
        right = i % 2 == 0
        body = RIGHT[task] if right else WRONG[task]
        items.append(ScoreItem(task_id=task, completion=f"```python\n{body}\n```", source="calc"))
        expected.append("solved" if right else "failed")
    return items, expected


def test_the_executor_setting_names_threads_ray_or_a_ray_address():
    assert parse_executor("threads") == ("threads", None)
    assert parse_executor("ray") == ("ray", None)
    assert parse_executor("ray://10.0.0.5:6379") == ("ray", "10.0.0.5:6379")
    assert isinstance(make_executor("threads", 3), ThreadExecutor)
    with pytest.raises(ConfigError, match="threads, ray or ray://ADDRESS"):
        parse_executor("ray://")
    # resolved like every setting: defaults, then REGROW_EXECUTOR, then the flag; shown in --help
    from typer.testing import CliRunner

    from regrow.cli import app
    from regrow.config import resolve_config
    assert resolve_config({}, environ={}).executor == "threads"
    assert resolve_config({}, environ={"REGROW_EXECUTOR": "ray"}).executor == "ray"
    assert resolve_config({"executor": "ray://h:6379"}, environ={"REGROW_EXECUTOR": "ray"}).executor == "ray://h:6379"
    with pytest.raises(ConfigError, match="executor"):
        resolve_config({"executor": "dask"}, environ={})
    res = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    row = next(ln for ln in res.stdout.splitlines() if ln.startswith("│ --executor"))
    assert "ray://ADDRESS" in row and "Default: threads." in row
    # an address nothing listens on fails at once, in one line (Ray alone retries it for minutes)
    from regrow.executor.ray import ClusterError, connect
    assert not ray.is_initialized()  # this test runs before the module's cluster is joined
    with pytest.raises(ClusterError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:\d+: "):
        connect(f"127.0.0.1:{free_port()}")


def test_candidates_land_on_both_nodes_each_holding_the_source_warm_and_verdicts_come_back_in_order(cluster, scorer):
    nodes = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
    assert len(nodes) == 2
    assert scorer.placement[scorer.specs[0]] == nodes  # warmed on every node before the first batch
    items, expected = _batch(12)
    verdicts = scorer.score_batch(items)
    assert [v.status for v in verdicts] == expected
    assert [v.reward for v in verdicts] == [1.0 if e == "solved" else 0.0 for e in expected]
    assert set(scorer.last_nodes) == nodes  # both nodes verified some of the batch
    assert sum(scorer.last.per_node.values()) == len(items) and scorer.last.rerun == 0
    warm = scorer.warm()  # asked of each node's host: one engine for the one source, on each
    assert set(warm) == nodes and all(len(keys) == 1 and "reward" in keys[0] for keys in warm.values())
    again = scorer.score_batch(items[:4])  # a second batch reuses the engines (none is built again)
    assert [v.status for v in again] == expected[:4] and scorer.warm() == warm
    with pytest.raises(ConfigError, match="no valid task 'calc.ops:unused'"):
        scorer.score_batch([type(items[0])(task_id="calc.ops:unused", completion="", source="calc")])


def test_chains_of_a_run_spread_over_both_nodes_and_their_attempts_are_stored_by_the_driver(cluster, calc):
    from regrow.api import Hooks, prepare, solve
    from regrow.executor.ray import RayExecutor
    from regrow.solve.solvers import make_solver
    from regrow.store.runs import attempt_rows, create_run

    repo, config = calc
    config = config.model_copy(update={"solver": "oracle", "samples": 2})
    prep = prepare(str(repo), config)
    executor = RayExecutor(cluster.address, slots=2)
    try:
        solver = make_solver("oracle", None, root=prep.source.root, index=prep.index)
        create_run(prep.store, "ray-chains", source_key=prep.source.key, spec=str(repo), solver="oracle",
                   config_json="{}")
        stats = solve(prep, prep.valid, solver, "ray-chains", config, Hooks(), executor=executor)
        rows = attempt_rows(prep.store, "ray-chains")
        assert len(rows) == 2 * len(prep.valid) and all(r["solved"] for r in rows)
        assert len(executor.stats.per_node) == 2  # chains ran on both nodes
        assert stats["verify"] > 0
        # resuming sends each chain with its stored turns: nothing is run or stored twice
        before = executor.stats.per_node.copy()
        again = solve(prep, prep.valid, solver, "ray-chains", config, Hooks(), executor=executor)
        assert len(attempt_rows(prep.store, "ray-chains")) == len(rows) and again["verify"] == 0
        # a function's own error comes back as itself, its one-line message intact (no remote traceback)
        with pytest.raises(ConfigError) as failed:
            list(executor.map(parse_executor, ["dask"]))
        assert type(failed.value) is ConfigError and "\n" not in str(failed.value)
        assert sum((executor.stats.per_node - before).values()) == 2 * len(prep.valid)
    finally:
        executor.close()
        prep.close()


def test_model_chains_on_the_nodes_call_the_model_and_pack_context_from_each_nodes_own_index(cluster, calc):
    """A model solver (the OpenAI wire protocol, served on loopback) runs on the nodes: each node
    builds the solver and the context engine over its own store, and the driver stores the turns."""
    from openai_stub_server import OpenAIStub, Reply

    from regrow.api import Hooks, _solver_options, prepare, solve
    from regrow.core.attempt import Attempt
    from regrow.executor.ray import RayExecutor
    from regrow.solve.solvers import make_solver
    from regrow.store.runs import attempt_rows, create_run

    repo, config = calc
    with OpenAIStub(lambda body: Reply(texts=(f"```python\n{RIGHT['calc.ops:add']}\n```",))) as stub:
        config = config.model_copy(update={"solver": f"openai:stub@{stub.base_url}", "samples": 4})
        prep = prepare(str(repo), config)
        executor = RayExecutor(cluster.address, slots=2)
        try:
            solver = make_solver(config.solver, _solver_options(config), root=prep.source.root, index=prep.index)
            create_run(prep.store, "ray-model", source_key=prep.source.key, spec=str(repo), solver=config.solver,
                       config_json="{}")
            chosen = [t for t in prep.valid if t.task_id == "calc.ops:add"]
            solve(prep, chosen, solver, "ray-model", config, Hooks(), executor=executor)
            rows = attempt_rows(prep.store, "ray-model")
        finally:
            executor.close()
            prep.close()
    assert len(rows) == 4 and all(r["solved"] for r in rows)
    assert len(stub.requests) == 4 and len(executor.stats.per_node) == 2  # model called from both nodes
    contexts = [Attempt.from_json(r["attempt"]).context for r in rows]
    assert all(contexts) and len(set(contexts)) == 1  # the same context, packed on each node


def test_regrow_run_with_executor_ray_address_runs_every_chain_on_the_cluster(cluster, calc):
    repo, config = calc
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-m", "regrow", "run", str(repo), "--solver", "oracle", "--samples", "2",
                           "--executor", f"ray://{cluster.address}", "--home", str(config.home),
                           "--python", str(config.python), "--workers", "2", "--trust", "fast",
                           "--run-id", "cli-ray", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["run_id"] == "cli-ray" and report["chains"] == 2 * report["chosen"] > 0
    assert report["solved_tasks"] == report["chosen"]  # the oracle solves every chain, wherever it ran


def test_regrow_serve_with_executor_ray_scores_a_batch_on_both_nodes(cluster, calc):
    """`regrow serve --executor ray://...` builds a ClusterScorer: /v1/score over HTTP lands on both nodes."""
    from fastapi.testclient import TestClient

    from regrow.service.app import build_service, create_app
    from regrow.service.limits import ServeConfig

    repo, config = calc
    service = build_service([str(repo)], config.model_copy(update={"executor": f"ray://{cluster.address}"}),
                            ServeConfig())
    items, expected = _batch(8)
    body = [{"task_id": i.task_id, "completion": i.completion, "request_id": f"serve-{n}"}
            for n, i in enumerate(items)]
    try:
        assert type(service.scorer).__name__ == "ClusterScorer"
        with TestClient(create_app(service)) as client:
            res = client.post("/v1/score", json=body)
            assert res.status_code == 200, res.text
            assert [r["status"] for r in res.json()["results"]] == expected
            assert set(service.scorer.last_nodes) == {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
            again = client.post("/v1/score", json=body[:2]).json()["results"]  # retried ids: the stored verdicts
            assert [r["replayed"] for r in again] == [True, True]
    finally:
        service.close()


class _SlowBatch:
    """A batch of ``n`` items whose right answers sleep first, scored on a thread of its own, so a
    node or host can be lost while it runs; `wait_on(node, k)` returns once ``node`` holds ``k``."""

    def __init__(self, scorer, n: int):
        self.scorer = scorer
        self.items, self.expected = _batch(n)
        self.slow = [type(it)(task_id=it.task_id, completion=f"```python\n{SLOW}{RIGHT[it.task_id]}\n```",
                              source="calc") if e == "solved" else it for it, e in zip(self.items, self.expected)]
        self.out: dict = {}
        self.worker = threading.Thread(target=self._run)
        self.worker.start()

    def _run(self) -> None:
        try:
            self.out["verdicts"] = self.scorer.score_batch(self.slow)
        except BaseException as exc:  # re-raised by `verdicts`, in the test's thread
            self.out["error"] = exc

    def wait_on(self, node: str, k: int) -> None:
        deadline = time.monotonic() + 120
        while self.scorer.last.per_node.get(node, 0) < k and time.monotonic() < deadline and self.worker.is_alive():
            time.sleep(0.05)
        if "error" in self.out:
            raise self.out["error"]
        assert self.worker.is_alive(), f"the batch ended before {node[:8]} could be lost in it ({self.scorer.last})"

    def verdicts(self) -> list:
        self.worker.join(timeout=180)
        assert not self.worker.is_alive()
        if "error" in self.out:
            raise self.out["error"]
        return self.out["verdicts"]


def test_killing_a_nodes_raylet_mid_batch_loses_no_verdict_and_counts_none_twice(cluster, scorer):
    node_b = _node_b()
    run = _SlowBatch(scorer, 24)
    run.wait_on(node_b, 2)
    cluster.raylet_of(node_b).send_signal(signal.SIGKILL)
    items, expected, slow = run.items, run.expected, run.slow
    verdicts = run.verdicts()
    assert [v.status for v in verdicts] == expected  # every candidate judged, in order
    assert node_b in scorer.last.lost_nodes and scorer.last.rerun >= 1  # what node b held ran again
    assert sum(scorer.last.per_node.values()) == len(slow)  # one verdict per item, none twice
    assert scorer.last.per_node[node_b] >= 2 and len(scorer.last.per_node) == 2
    assert node_b not in scorer.placement[scorer.specs[0]]
    after = scorer.score_batch(items[:6])  # the survivor serves the next batch alone
    assert [v.status for v in after] == expected[:6] and node_b not in scorer.last_nodes


def test_a_node_lost_while_chains_run_on_it_loses_no_chain_and_stores_no_turn_twice(cluster, calc, tmp_path):
    from regrow.api import Hooks, prepare, solve
    from regrow.executor.ray import RayExecutor
    from regrow.solve.solvers import make_solver
    from regrow.store.runs import attempt_rows, create_run

    cluster.add_node()  # the previous test's kill left one node: a new one joins under a new id
    deadline = time.monotonic() + 60
    while len([n for n in ray.nodes() if n.get("Alive")]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    node_b = _node_b()
    # Every chain: a slow wrong first turn, then the right body (its feedback seen) on the second.
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"format": "regrow-script/1", "answers": {
        task: [f"```python\n{SLOW}return None\n```", f"```python\n{body}\n```"] for task, body in RIGHT.items()}}))
    repo, config = calc
    config = config.model_copy(update={"solver": f"scripted:{script}", "samples": 4, "turns": 2})
    prep = prepare(str(repo), config)
    executor = RayExecutor(cluster.address, slots=2)
    chosen = [t for t in prep.valid if t.task_id in RIGHT]
    out: dict = {}

    def run():
        try:
            solver = make_solver(config.solver, None, root=prep.source.root, index=prep.index)
            create_run(prep.store, "ray-loss", source_key=prep.source.key, spec=str(repo), solver=config.solver,
                       config_json="{}")
            out["stats"] = solve(prep, chosen, solver, "ray-loss", config, Hooks(), executor=executor)
        except BaseException as exc:  # re-raised below, in the test's thread
            out["error"] = exc

    worker = threading.Thread(target=run)
    try:
        worker.start()
        while executor.stats.per_node.get(node_b, 0) < 1 and time.monotonic() < deadline + 120 and worker.is_alive():
            time.sleep(0.05)
        if "error" in out:
            raise out["error"]
        assert worker.is_alive(), f"the run ended before node b could be lost in it ({executor.stats})"
        cluster.raylet_of(node_b).send_signal(signal.SIGKILL)
        worker.join(timeout=180)
        assert not worker.is_alive()
        if "error" in out:
            raise out["error"]
        rows = attempt_rows(prep.store, "ray-loss")
        chains = {(r["task_id"], r["sample"]) for r in rows}
        assert len(chains) == len(chosen) * 4  # every chain ran to its end
        assert len(rows) == 2 * len(chains)  # two turns each, each stored once
        assert all(bool(r["solved"]) == (r["turn"] == 1) for r in rows)
        assert node_b in executor.stats.lost_nodes and executor.stats.rerun >= 1
        assert sum(executor.stats.per_node.values()) == len(chains)  # one result per chain
    finally:
        worker.join(timeout=180)
        executor.close()
        prep.close()


def test_a_host_that_crashes_on_a_live_node_is_started_again_there_and_its_candidates_rerun(cluster, scorer):
    node = scorer.cluster.nodes()[0]
    pid = ray.get(scorer.cluster.hosts[node].call.remote(lambda _: os.getpid(), None))
    run = _SlowBatch(scorer, 12)
    run.wait_on(node, 1)
    os.kill(pid, signal.SIGKILL)  # the host process only: the node and its raylet live on
    assert [v.status for v in run.verdicts()] == run.expected
    assert scorer.last.rerun >= 1 and scorer.last.lost_nodes == []  # the node was not given up
    assert node in scorer.cluster.nodes()
    assert ray.get(scorer.cluster.hosts[node].call.remote(lambda _: os.getpid(), None)) != pid
