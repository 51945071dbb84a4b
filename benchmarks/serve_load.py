"""Load on the reward service: ``regrow serve`` in one process, this script's clients in another,
on loopback; then the same items through the in-process reward, so the HTTP cost per candidate
is read in one run.

The items: ``--requests`` score requests of one completion each, over the source's valid tasks,
mixed good (the reference, fenced and plain), bad (``return None``, a mutated reference, prose
with no code) and hostile (``os._exit(0)``, ``sys.exit(0)``, a write outside the copy, reading
``/etc/passwd``, ``raise SystemExit``) bodies, each with its own ``request_id``; ``--concurrency``
threads send them (retrying a 429 or a lost connection with the same id, as `RemoteReward` does).

Printed (and written as JSON with ``--json PATH``):

* latency p50/p99 of a request, throughput, status codes (429s counted; none are expected while
  ``--concurrency`` is at most ``--max-inflight``), the server's RSS before and after;
* lost or duplicated verdicts: every id must be answered once, the ledger must hold one row per
  id, and a second pass over every id must be answered from the ledger (``replayed``) with the
  verdict first sent; the replay pass's latency is the service's own cost (no verification);
* the in-process arm: the same items through `LocalScorer` over a `Reward` of this process at
  the same concurrency; the verdicts of both arms are compared;
* HTTP overhead per candidate at p50: ``--probe`` fresh items scored one at a time over HTTP and in
  process, the difference of the two medians (the goal is at most 2 ms);
* ``--kill``: the server is killed with SIGKILL when a third of the items are answered and started
  again on the same port; the clients keep retrying with their ids (nothing lost or doubled).

    python benchmarks/serve_load.py                         # the calc fixture, 2,000 requests, 32 at once
    python benchmarks/serve_load.py --requests 300 --kill   # with a SIGKILL and restart mid-load
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from regrow.config import resolve_config
from regrow.reward import Reward
from regrow.service.scorer import Catalog, LocalScorer, ScoreItem
from regrow.store.ledger import LEDGER_FILE, Ledger
from _batch import calc_fixture, completions_for  # noqa: E402  (benchmarks/ is on sys.path when run)

HOSTILE = ["import os\nos._exit(0)", "import sys\nsys.exit(0)", "open('/tmp/regrow-bench-escape', 'w').write('x')\n"
           "return None", "return open('/etc/passwd').read()", "raise SystemExit(0)"]


def make_items(reward: Reward, n: int, prefix: str) -> list[dict]:
    tasks = sorted(reward.tasks)
    items = []
    for i in range(n):
        task = reward.tasks[tasks[i % len(tasks)]]
        kinds = completions_for(task, 5) + [f"```python\n{HOSTILE[(i // 6) % len(HOSTILE)]}\n```"]
        items.append({"task_id": task.task_id, "completion": kinds[i % len(kinds)], "request_id": f"{prefix}-{i}"})
    return items


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args, source: str, home: Path, port: int) -> tuple[subprocess.Popen, str]:
    """``regrow serve`` in its own process, its structured log in ``<home>/serve-<port>.log``
    (a file, as a deployed server's would be: no pipe for this process to drain per request)."""
    cmd = [sys.executable, "-m", "regrow", "serve", source, "--home", str(home), "--workers", str(args.workers),
           "--timeout", str(args.timeout), "--port", str(port), "--max-inflight", str(args.max_inflight)]
    if args.python:
        cmd += ["--python", args.python]
    log = home / f"serve-{port}.log"
    seen = log.read_text().count('"event": "listening"') if log.exists() else 0
    with open(log, "a") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        lines = [ln for ln in log.read_text().splitlines() if '"event": "listening"' in ln]
        if len(lines) > seen:
            return proc, json.loads(lines[-1])["url"]
        if proc.poll() is not None:
            raise SystemExit(f"regrow serve exited ({proc.returncode}) before listening; see {log}")
        time.sleep(0.1)
    raise SystemExit(f"regrow serve did not listen within 300 s; see {log}")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


class Load:
    """``concurrency`` threads posting one item each, retrying 429s and lost connections with the same id."""

    def __init__(self, url: str, concurrency: int):
        pool = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.http = httpx.Client(base_url=url, timeout=httpx.Timeout(300, connect=5), limits=pool)
        self.latency: list[float] = []
        self.codes: dict[int, int] = {}
        self.lost_connections = 0
        self.answers: dict[str, list[dict]] = {}
        self.timing: dict[str, tuple[float, float, float]] = {}  # id -> (round trip, score, handler) seconds
        self.lock = threading.Lock()

    def one(self, item: dict) -> None:
        while True:
            start = time.perf_counter()
            try:
                r = self.http.post("/v1/score", json=[item])
            except httpx.TransportError:
                with self.lock:
                    self.lost_connections += 1
                time.sleep(0.2)
                continue
            elapsed = time.perf_counter() - start
            with self.lock:
                self.codes[r.status_code] = self.codes.get(r.status_code, 0) + 1
            if r.status_code in (429, 503):
                time.sleep(float(r.headers.get("retry-after", "1")))
                continue
            r.raise_for_status()
            [res] = r.json()["results"]
            timing = dict(part.strip().split(";dur=") for part in r.headers.get("server-timing", "").split(",")
                          if ";dur=" in part)
            with self.lock:
                self.latency.append(elapsed)
                self.answers.setdefault(item["request_id"], []).append(res)
                self.timing[item["request_id"]] = (elapsed, float(timing.get("score", "nan")) / 1000,
                                                   float(timing.get("handler", "nan")) / 1000)
            return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", help="Default: the calc fixture of tests/conftest.py.")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-inflight", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--probe", type=int, default=100, help="Items scored one at a time in both arms.")
    ap.add_argument("--probe-batch", type=int, default=16, help="Items per request in the batch probe.")
    ap.add_argument("--chunk", type=int, default=250, help="The arms alternate in chunks of this many items.")
    ap.add_argument("--kill", action="store_true", help="SIGKILL the server a third of the way, restart it.")
    ap.add_argument("--python", default=sys.executable, help="The target's interpreter (default: this one).")
    ap.add_argument("--home", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="regrow-serve-load-"))
    source = args.source or calc_fixture(base)
    home = (args.home or base / "home").resolve()
    config = resolve_config({"home": home, "workers": args.workers, "timeout": args.timeout, "python": args.python})
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    t0 = time.perf_counter()
    reward = Reward(source, config)
    print(f"prepared {reward.prepared.source.name}: {len(reward.tasks)} valid tasks in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, url = start_server(args, source, home, port)
    out: dict = {"requests": args.requests, "concurrency": args.concurrency, "workers": args.workers,
                 "max_inflight": args.max_inflight, "source": reward.prepared.source.name,
                 "load_before": os.getloadavg()[0]}
    try:
        items = make_items(reward, args.requests, "load")
        load = Load(url, args.concurrency)
        scorer = LocalScorer(Catalog([reward]))
        name = reward.prepared.source.name
        local_latency: list[float] = []
        local: dict[str, str] = {}
        local_durations: dict[str, float] = {}

        def in_process(item):
            t = time.perf_counter()
            [v] = scorer.score_batch([ScoreItem(item["task_id"], item["completion"], name)])
            local_latency.append(time.perf_counter() - t)
            local[item["request_id"]] = v.status
            local_durations[item["request_id"]] = v.duration

        # warm both arms alike: each task's reference once (the first solved candidate of a task
        # computes its expected values for the equivalence check)
        for i, tid in enumerate(sorted(reward.tasks)):
            ref = {"task_id": tid, "completion": reward.tasks[tid].reference_body, "request_id": f"warm-{i}"}
            load.one(ref)
            in_process(ref)
        load.latency.clear(), local_latency.clear(), load.answers.clear(), load.codes.clear()
        out["rss_before_mib"] = rss_mib(proc.pid)
        server = {"proc": proc}
        if args.kill:
            def killer():
                while len(load.answers) < args.requests // 3:
                    time.sleep(0.05)
                server["proc"].send_signal(signal.SIGKILL)
                server["proc"].wait()
                out["killed_after"] = len(load.answers)
                t_restart = time.perf_counter()
                server["proc"], _ = start_server(args, source, home, port)
                out["restart_s"] = time.perf_counter() - t_restart
            kill_thread = threading.Thread(target=killer, daemon=True)
            kill_thread.start()
        # the arms alternate in chunks, so a change in the machine's load falls on both
        wall = lwall = 0.0
        for c0 in range(0, len(items), args.chunk):
            chunk = items[c0:c0 + args.chunk]
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(load.one, chunk))
            wall += time.perf_counter() - start
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(in_process, chunk))
            lwall += time.perf_counter() - start
        if args.kill:
            kill_thread.join()
        proc = server["proc"]
        out["rss_after_mib"] = rss_mib(proc.pid)
        out.update(http_wall_s=wall, http_per_s=args.requests / wall, http_p50_ms=1000 * pct(load.latency, 0.5),
                   http_p99_ms=1000 * pct(load.latency, 0.99), status_codes=load.codes,
                   lost_connections=load.lost_connections)
        out.update(local_wall_s=lwall, local_per_s=args.requests / lwall, local_p50_ms=1000 * pct(local_latency, 0.5),
                   local_p99_ms=1000 * pct(local_latency, 0.99))
        out["throughput_ratio_http_over_local"] = out["http_per_s"] / out["local_per_s"]
        # nothing lost or doubled
        answered = load.answers
        out["lost"] = sum(1 for it in items if it["request_id"] not in answered)
        out["duplicated"] = sum(1 for v in answered.values() if len(v) > 1)
        ledger = Ledger(home / LEDGER_FILE)
        stored = ledger.get_many([it["request_id"] for it in items])
        out["ledger_rows"] = len(stored)
        replay = Load(url, args.concurrency)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(replay.one, items))
        out["replay_wall_s"] = time.perf_counter() - start
        out["replay_p50_ms"] = 1000 * pct(replay.latency, 0.5)
        strip = lambda r: {k: v for k, v in r.items() if k != "replayed"}  # noqa: E731
        firsts = {rid: v[0] for rid, v in answered.items()}
        again = {rid: v[0] for rid, v in replay.answers.items()}
        out["replay_mismatch"] = sum(1 for it in items if not again[it["request_id"]]["replayed"]
                                     or strip(again[it["request_id"]]) != strip(firsts[it["request_id"]]))
        out["verdicts_agree"] = sum(1 for it in items if local[it["request_id"]] == firsts[it["request_id"]]["status"])

        # overhead per candidate at p50: one at a time, fresh ids, alternating arms
        probe = make_items(reward, args.probe, "probe")
        seq = Load(url, 1)
        local_latency.clear()
        local_by_id: dict[str, float] = {}
        for item in probe:
            seq.one(item)
            in_process(item)
            local_by_id[item["request_id"]] = local_latency[-1]
        out["probe_http_p50_ms"] = 1000 * statistics.median(seq.latency)
        out["probe_local_p50_ms"] = 1000 * statistics.median(local_latency)
        out["overhead_p50_ms"] = out["probe_http_p50_ms"] - out["probe_local_p50_ms"]
        # paired: each item's round trip minus the same item's in-process time (they alternate)
        out["overhead_paired_p50_ms"] = 1000 * statistics.median(
            seq.timing[i["request_id"]][0] - local_by_id[i["request_id"]] for i in probe)
        # where it goes: the wire (round trip minus the server's handler) and the handler's own work
        # besides the scorer (ledger, results); the scorer's time beside the in-process call's
        out["wire_p50_ms"] = 1000 * statistics.median(t[0] - t[2] for t in (seq.timing[i["request_id"]] for i in probe))
        out["handler_besides_scorer_p50_ms"] = 1000 * statistics.median(
            t[2] - t[1] for t in (seq.timing[i["request_id"]] for i in probe))
        out["server_scorer_p50_ms"] = 1000 * statistics.median(seq.timing[i["request_id"]][1] for i in probe)
        # the verifier's own time of each probe candidate, as each side measured it (Verdict.duration)
        out["probe_http_verify_p50_ms"] = 1000 * statistics.median(
            seq.answers[i["request_id"]][0]["verdict"]["duration"] for i in probe)
        out["probe_local_verify_p50_ms"] = 1000 * statistics.median(local_durations[i["request_id"]] for i in probe)
        # the same with a trainer's batch (one request of --probe-batch items, a GRPO group)
        k = min(args.probe_batch, args.max_inflight)
        groups = [make_items(reward, k, f"group{g}") for g in range(max(1, args.probe // k))]
        http_b, local_b, added_b = [], [], []
        for group in groups:
            t = time.perf_counter()
            r = seq.http.post("/v1/score", json=group)
            r.raise_for_status()
            http_b.append(time.perf_counter() - t)
            timing = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
            added_b.append(http_b[-1] - float(timing["score"]) / 1000)
            t = time.perf_counter()
            scorer.score_batch([ScoreItem(i["task_id"], i["completion"], name) for i in group])
            local_b.append(time.perf_counter() - t)
        out["probe_batch"] = k
        out["probe_batch_http_p50_ms"] = 1000 * statistics.median(http_b)
        out["probe_batch_local_p50_ms"] = 1000 * statistics.median(local_b)
        out["batch_overhead_per_candidate_ms"] = (out["probe_batch_http_p50_ms"] - out["probe_batch_local_p50_ms"]) / k
        # what serving adds on top of the scorer (round trip minus the server's scorer time), per candidate
        out["batch_added_per_candidate_ms"] = 1000 * statistics.median(added_b) / k
        out["single_added_p50_ms"] = 1000 * statistics.median(t[0] - t[1] for t in (seq.timing[i["request_id"]]
                                                                                      for i in probe))
        # the service's own cost: an id already answered (ledger read, no verification), one at a time
        replay_one = Load(url, 1)
        for item in probe:
            replay_one.one(item)
        out["replay_sequential_p50_ms"] = 1000 * statistics.median(replay_one.latency)
        out["load_after"] = os.getloadavg()[0]
        scorer.close()
        metrics = httpx.get(f"{url}/metrics").text
        out["server_verdicts"] = sum(float(ln.rsplit(" ", 1)[1]) for ln in metrics.splitlines()
                                     if ln.startswith("regrow_verdicts_total{"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        reward.close()

    print(json.dumps(out, indent=2))
    print(f"HTTP: {args.requests} requests, {args.concurrency} at once: p50 {out['http_p50_ms']:.1f} ms, "
          f"p99 {out['http_p99_ms']:.1f} ms, {out['http_per_s']:.1f}/s; in process {out['local_per_s']:.1f}/s "
          f"(ratio {out['throughput_ratio_http_over_local']:.2f}); lost {out['lost']}, duplicated "
          f"{out['duplicated']}, ledger {out['ledger_rows']}/{args.requests}, replay mismatches "
          f"{out['replay_mismatch']}; 429s {out['status_codes'].get(429, 0)}; overhead per candidate at p50 "
          f"{out['overhead_paired_p50_ms']:.2f} ms one at a time (wire {out['wire_p50_ms']:.2f}, handler "
          f"{out['handler_besides_scorer_p50_ms']:.2f}), {out['batch_overhead_per_candidate_ms']:.2f} ms in "
          f"batches of {out['probe_batch']}; added on top of the scorer: {out['single_added_p50_ms']:.2f} ms a "
          f"single candidate, {out['batch_added_per_candidate_ms']:.2f} ms a candidate in batches; a replayed id "
          f"{out['replay_sequential_p50_ms']:.2f} ms; server RSS {out['rss_before_mib']:.0f} -> "
          f"{out['rss_after_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
