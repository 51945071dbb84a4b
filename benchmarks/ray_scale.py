"""Benchmark of verification scale-out: one candidate batch on threads, on Ray with one node and
on Ray with two nodes, side by side in one run (docs/scaling.md).

The batch: ``--tasks`` valid tasks x ``--per-task`` completions of mixed quality made from the
reference bodies (right, a plain continuation, wrong, a mutated reference). Arms:

- ``threads``: one `regrow.reward.Reward` in this process, ``--workers`` candidates at once on
  threads (what `regrow serve` does without Ray);
- ``ray x1``: `regrow.service.cluster.ClusterScorer` on a local cluster of one node
  (``ray start --head``), ``--workers`` candidates in flight on it;
- ``ray x2``: the same after a second node process joins (``ray start --address``), so each node
  holds its own warm engine and takes ``--workers`` candidates at once;
- ``threads, again``: the first arm once more at the end, to tell the arms from the order they ran
  in (the machine's load drifts; the engine's workers warm up).

Each arm scores the batch ``--repeats`` times after its engines are warm; printed: the warm-up
(building the engines, once per node), the median batch wall, completions/s, and whether the
verdicts agree with the threads arm. The cluster is started under a short temp folder and every
one of its processes is ended by id at the end.

What a 2-core machine can show: that the Ray path gives the same verdicts, what dispatch through
actors costs beside threads, and that a second node takes half the batch with its own warm
engine. What it cannot show: a speed-up, since two "nodes" on one machine share the same two
cores (two nodes' workers compete for them); on real machines each node brings its own cores.

    python benchmarks/ray_scale.py                       # the calc fixture of tests/conftest.py
    python benchmarks/ray_scale.py --tasks 8 --per-task 8 --workers 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from regrow.config import RunConfig
from regrow.reward import Reward
from regrow.service.cluster import ClusterScorer, ScoreItem
from _batch import calc_fixture, completions_for  # noqa: E402  (benchmarks/ is on sys.path when run)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _raycluster import LocalCluster  # noqa: E402  (the tests' cluster: ray start, ended by pid)

def _time(fn, repeats: int) -> tuple[float, list]:
    walls, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", help="source spec (default: the calc fixture)")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--per-task", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="candidates at once (threads; per node on Ray)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="regrow-ray-bench-"))
    spec = args.source or calc_fixture(base)
    config = RunConfig(home=base / "home", python=Path(sys.executable), workers=args.workers, timeout=30)
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} cores")

    t0 = time.perf_counter()
    reward = Reward(spec, config)
    prep_s = time.perf_counter() - t0
    tasks = sorted(reward.tasks.values(), key=lambda t: t.task_id)[: args.tasks]
    name = reward.prepared.source.name
    batch = [ScoreItem(task_id=t.task_id, completion=c, source=name)
             for t in tasks for c in completions_for(t, args.per_task, prose=False)]
    print(f"{name}: {len(batch)} completions ({len(tasks)} tasks x {args.per_task}); prepared in {prep_s:.1f} s")

    rows = []
    pool = ThreadPoolExecutor(max_workers=args.workers)

    def threads():
        return list(pool.map(lambda it: reward.score(it.task_id, it.completion), batch))

    threads()  # warm the workers like the Ray arms are warmed
    wall, base_verdicts = _time(threads, args.repeats)
    expected = [v.status for v in base_verdicts]
    rows.append(("threads", 1, 0.0, wall, True, {}))

    cluster = LocalCluster()
    try:
        cluster.start()
        import ray
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        for nodes in (1, 2):
            if nodes == 2:
                cluster.add_node()
            t0 = time.perf_counter()
            with ClusterScorer(cluster.address, sources=[spec], config=config) as scorer:
                warm_s = time.perf_counter() - t0
                scorer.score_batch(batch[: args.workers * nodes])
                wall, verdicts = _time(lambda: scorer.score_batch(batch), args.repeats)
                share = {n[:6]: c for n, c in scorer.last.per_node.items()}
                rows.append((f"ray x{nodes}", len(scorer.cluster.nodes()), warm_s, wall,
                             [v.status for v in verdicts] == expected, share))
    finally:
        try:
            import ray
            ray.shutdown()
        finally:
            cluster.stop()

    # threads once more, after the Ray arms: the same engine, later load; tells order from arm
    wall, verdicts = _time(threads, args.repeats)
    rows.append(("threads, again", 1, 0.0, wall, [v.status for v in verdicts] == expected, {}))
    pool.shutdown()
    reward.close()
    shutil.rmtree(base, ignore_errors=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1-min)")
    print(f"\n{'arm':<14} {'nodes':>5} {'warm-up s':>9} {'median batch s':>14} {'completions/s':>13}  same verdicts  "
          f"per node (last batch)")
    for arm, n, warm_s, wall, same, share in rows:
        print(f"{arm:<14} {n:>5} {warm_s:>9.1f} {wall:>14.2f} {len(batch) / wall:>13.1f}  {str(same):<13}  {share or ''}")


if __name__ == "__main__":
    main()
