"""Verification latency, three ways side by side, on real packages.

For each package, N candidates (a reference body and a broken one for each of N/2 valid tasks)
are verified three ways (and a fourth, below), interleaved so that machine load hits all alike:

  (a) fresh   a new ``python -m pytest <covering test ids>`` process per candidate (trust=subprocess)
  (b) suite   a new ``python -m pytest`` of the whole suite per candidate
  (c) engine  regrow's warm engine, strict trust (static scan, canary, equivalence replay when
              recorded calls exist)
  (d) engine with fail-fast: as (c), stopping a candidate's tests at the first one that does not
              pass (`--fail-fast`, for a binary reward; not the default, and not what the goal
              is measured on)

Tasks are drawn at random (seeded) from the valid ones. Before timing, the engine's worker is
started and each chosen task's expected values for the equivalence check are computed (two
replays of the reference, done once per task and cached for every later candidate), as a
training run would have them after its first candidate of each task. (c)'s "fresh" count says
how many candidates needed a fresh import because their function runs at import time.

Printed per package: median and p90 milliseconds per candidate for each way, the ratio of the
medians (a)/(c), and (c)'s overhead above the floor: per candidate, (c)'s wall time minus the
covering tests' own in-process time (pytest's setup+call+teardown durations as (c) reported
them), median and p90.

    PYTHONPATH=src python benchmarks/verify.py --home /tmp/regrow-bench pypi:toolz==1.0.0 pypi:cachetools==5.3.3
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from regrow.config import RunConfig
from regrow.grok.recorder import CallLog, record_calls
from regrow.api import prepare
from regrow.verify.equivalence import expected
from regrow.verify.verifier import Verifier, VerifyConfig
from regrow.core.task import splice

BROKEN = "return None"


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_tasks(spec: str, home: Path, n: int, seed: int = 0):
    """(prepared source, the n/2 tasks drawn with ``seed``): the benchmark's candidates are each
    task's reference and `BROKEN`. Calls for the equivalence check are recorded if missing.
    Shared with `benchmarks/verify_segments.py`, so both time the same candidates."""
    prep = prepare(spec, RunConfig(home=home, solver="oracle", workers=1))
    src, env = prep.source, prep.env
    if prep.store.one("SELECT 1 FROM calls WHERE source_key=?", (src.key,)) is None:
        record_calls(src.root, env.python, src.import_roots, prep.store, src.key, qualnames=set(prep.index.coverage))
    prep.verifier.close()
    tasks = sorted(prep.valid, key=lambda t: t.task_id)
    random.Random(seed).shuffle(tasks)
    return prep, tasks[: max(1, n // 2)]


def bench(spec: str, home: Path, n: int, seed: int = 0, timeout: float = 10.0) -> dict:
    prep, tasks = bench_tasks(spec, home, n, seed)
    src, env = prep.source, prep.env
    candidates = [(t, b) for t in tasks for b in (t.reference_body, BROKEN)][:n]
    cold = Verifier(src.root, env.python, src.import_roots, config=VerifyConfig(trust="subprocess", timeout=timeout))
    warm = Verifier(src.root, env.python, src.import_roots, calls=CallLog(prep.store, src.key),
                    config=VerifyConfig(trust="strict", workers=1, timeout=timeout))
    t0 = time.perf_counter()
    warm.engine.start()
    start_s = time.perf_counter() - t0
    ff = Verifier(src.root, env.python, src.import_roots, calls=CallLog(prep.store, src.key),
                  config=VerifyConfig(trust="strict", workers=1, timeout=timeout, fail_fast=True))
    ff.engine.start()
    for task in tasks:
        expected(warm, task)
        expected(ff, task)
    a, b, c, d, over, agree, fresh = [], [], [], [], [], 0, 0
    for i, (task, body) in enumerate(candidates):
        # a, c, b, d: each engine run follows a fresh-process run, so both engines meet the same
        # conditions (the other engine's spares refill in the background of a subprocess run).
        t0 = time.perf_counter()
        va = cold.verify(task, body)
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vc = warm.verify(task, body)
        c.append(time.perf_counter() - t0)
        over.append(c[-1] - sum(o.duration for o in vc.outcomes))
        t0 = time.perf_counter()
        cold.run_file(task.path, splice(task, body), ())  # the whole suite
        b.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vd = ff.verify(task, body)
        d.append(time.perf_counter() - t0)
        agree += va.solved == vc.solved == vd.solved
        fresh += vc.extra.get("path") != "warm"
        print(f"  {i + 1}/{len(candidates)} {task.task_id} a={a[-1]*1000:.0f} b={b[-1]*1000:.0f} "
              f"c={c[-1]*1000:.0f} d={d[-1]*1000:.0f} ms  {vc.status} {','.join(vc.flags)}", file=sys.stderr)
    warm.close()
    ff.close()
    ms = lambda xs, q: pct(xs, q) * 1000  # noqa: E731
    return {"spec": spec, "candidates": len(candidates), "tasks": len(tasks), "engine_start_s": start_s,
            "a": (statistics.median(a) * 1000, ms(a, 0.9)), "b": (statistics.median(b) * 1000, ms(b, 0.9)),
            "c": (statistics.median(c) * 1000, ms(c, 0.9)), "overhead": (statistics.median(over) * 1000, ms(over, 0.9)),
            "ratio": statistics.median(a) / statistics.median(c), "agree": agree, "fresh": fresh,
            "d": (statistics.median(d) * 1000, ms(d, 0.9)), "ratio_d": statistics.median(a) / statistics.median(d)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--home", type=Path, default=Path("/tmp/regrow-bench"))
    ap.add_argument("-n", type=int, default=50, help="candidates per package")
    ap.add_argument("--timeout", type=float, default=10.0, help="wall seconds per candidate, all three ways")
    args = ap.parse_args()
    rows = []
    for spec in args.specs:
        name = spec.split(":")[-1].split("==")[0]
        rows.append(bench(spec, args.home / name, args.n, timeout=args.timeout))
    print(f"{'package':28} {'n':>3} {'(a) fresh med/p90':>18} {'(b) suite med/p90':>18} {'(c) engine med/p90':>19} "
          f"{'(a)/(c)':>8} {'(c)-floor med/p90':>18} {'a=c=d':>5} {'fresh':>5} {'(d) fail-fast med/p90':>22} {'(a)/(d)':>8}")
    for r in rows:
        print(f"{r['spec']:28} {r['candidates']:>3} {r['a'][0]:>8.0f}/{r['a'][1]:<8.0f} {r['b'][0]:>8.0f}/{r['b'][1]:<8.0f} "
              f"{r['c'][0]:>8.1f}/{r['c'][1]:<9.1f} {r['ratio']:>8.1f} {r['overhead'][0]:>8.1f}/{r['overhead'][1]:<8.1f} "
              f"{r['agree']:>5} {r['fresh']:>5} {r['d'][0]:>11.1f}/{r['d'][1]:<10.1f} {r['ratio_d']:>8.1f}")
    print("ms per candidate; (c)-floor: engine wall time minus the covering tests' own durations; "
          "a=c=d: candidates where (a), (c) and (d) agree on solved")


if __name__ == "__main__":
    main()
