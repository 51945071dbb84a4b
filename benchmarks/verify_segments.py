"""Where a warm verification's time goes, segment by segment, over the benchmark's candidates.

The same 50 candidates as `benchmarks/verify.py` (a reference body and ``return None`` for each
of 25 seeded valid tasks), verified one at a time by the engine at strict trust, each request
asking for the worker's and the child's timestamps (``"trace": true``; all on one monotonic
clock). Candidates that timed out or took the fresh-import path are left out. Printed: median,
25th and 75th percentile of each segment, in ms:

  pre_send         parent: splice, parse, request built (before the request is written)
  hop_in           request written -> worker starts serving it
  worker_to_child  worker hands it to a spare -> the child starts
  child_setup      child: bind mount, sandbox, code swap, canary -> first test
  loop             the test loop (durs: the tests' own setup+call+teardown; per_test_over:
                   (loop - durs) / tests)
  ran_to_drained   last test -> the worker has every record (session end, stop)
  drained_to_done  worker: reap, leftover and tamper checks, answer built
  hop_out          answer written -> parent has it
  post             parent: parse, judge, equivalence comparison, similarity

    PYTHONPATH=src python benchmarks/verify_segments.py --home /tmp/vh pypi:cachetools==5.3.3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import regrow.verify.engine as engine_mod
from regrow.verify.equivalence import expected
from regrow.grok.recorder import CallLog
from regrow.verify.verifier import Verifier, VerifyConfig
from verify import BROKEN, bench_tasks  # benchmarks/verify.py: the same candidates


class Tracing:
    """Wraps the engine's request so each asks for timestamps, and stamps send and answer."""

    def __init__(self):
        self.sent = self.got = 0.0
        self.resp: dict | None = None
        self._orig = engine_mod._Worker.request

    def __enter__(self):
        tracer = self

        def request(worker, req, timeout, while_waiting=None):
            req["trace"] = True
            tracer.sent = time.monotonic()
            tracer.resp = tracer._orig(worker, req, timeout, while_waiting)
            tracer.got = time.monotonic()
            return tracer.resp

        engine_mod._Worker.request = request
        return self

    def __exit__(self, *exc):
        engine_mod._Worker.request = self._orig


def segments(t0: float, t1: float, tracer: Tracing) -> dict | None:
    resp = tracer.resp
    if not resp or not resp.get("trace"):
        return None
    w = dict(resp["trace"])
    records = resp.get("records", [])
    m = {r["name"]: r["t"] for r in records if r.get("event") == "mark"}
    if not {"child", "tests", "ran"} <= set(m):
        return None
    durs = sum(r.get("duration", 0.0) for r in records if "test" in r)
    n = sum(1 for r in records if "test" in r)
    loop = m["ran"] - m["tests"]
    ms = 1000.0
    return {"total": (t1 - t0) * ms, "pre_send": (tracer.sent - t0) * ms, "hop_in": (w["start"] - tracer.sent) * ms,
            "worker_to_child": (m["child"] - w["start"]) * ms, "child_setup": (m["tests"] - m["child"]) * ms,
            "loop": loop * ms, "durs": durs * ms, "per_test_over": (loop - durs) * ms / max(n, 1), "tests": n,
            "ran_to_drained": (w["drained"] - m["ran"]) * ms, "drained_to_done": (w["done"] - w["drained"]) * ms,
            "hop_out": (tracer.got - w["done"]) * ms, "post": (t1 - tracer.got) * ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec")
    ap.add_argument("--home", type=Path, default=Path("/tmp/regrow-bench"))
    ap.add_argument("-n", type=int, default=50, help="candidates")
    ap.add_argument("--gap", type=float, default=0.3, help="idle seconds before each candidate")
    args = ap.parse_args()
    name = args.spec.split(":")[-1].split("==")[0]
    prep, tasks = bench_tasks(args.spec, args.home / name, args.n)
    src, env = prep.source, prep.env
    v = Verifier(src.root, env.python, src.import_roots, calls=CallLog(prep.store, src.key),
                 config=VerifyConfig(trust="strict", workers=1, timeout=10.0))
    rows = []
    with v, Tracing() as tracer:
        v.engine.start()
        for task in tasks:
            expected(v, task)
        for task in tasks:
            for body in (task.reference_body, BROKEN):
                time.sleep(args.gap)
                tracer.resp = None
                t0 = time.monotonic()
                verdict = v.verify(task, body)
                row = segments(t0, time.monotonic(), tracer) if verdict.status != "timeout" else None
                if row is not None and verdict.extra.get("path") == "warm":
                    rows.append(row)
    print(f"{args.spec}: {len(rows)} warm candidates (timeouts and fresh-import ones left out)")
    print(f"{'segment':16} {'median':>8} {'p25':>8} {'p75':>8}  ms")
    for key in rows[0]:
        xs = sorted(r[key] for r in rows)
        print(f"{key:16} {statistics.median(xs):8.2f} {xs[len(xs) // 4]:8.2f} {xs[3 * len(xs) // 4]:8.2f}")


if __name__ == "__main__":
    main()
