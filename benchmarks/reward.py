"""Benchmark of the trainer reward: one GRPO-shaped batch scored through `RegrowReward` (warm
workers, the sandbox, integrity checks) beside a fresh ``python -m pytest <covering ids>`` per
completion (the naive reward a trainer script would write), on the same completions.

The batch: ``--tasks`` valid tasks × ``--per-task`` completions of mixed quality made from the
reference bodies: right (fenced), right (a plain continuation), wrong (``return None``), a
mutated reference (its first ``+``/``<``/``return`` changed), and prose with no code. Both arms
read a completion with the same extraction (`regrow.solve.loop.extract`) and run ``--workers``
candidates at once (the naive arm on that many private copies of the tree); a completion with
no code scores 0 in both without running anything. Printed: batch wall, completions/s, the
ratio, and how often the two rewards agree (they can differ only where regrow's integrity
checks fire; none of these completions should trip one).

Measured on the calc fixture, 8 x 16 = 128 completions, 2 workers, 2 shared cores (load average
2-4 from other work): warm 4.71 s (27.2 completions/s), fresh pytest 135 s (0.9/s), 28.7x; the
rewards agreed on 128/128. (Under a load of 4-7 the same batch took 5.5 s, 26x.)

    python benchmarks/reward.py                      # the calc fixture of tests/conftest.py
    python benchmarks/reward.py pypi:toolz==1.0.0 --tasks 8 --per-task 16 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from regrow.config import resolve_config
from regrow.core.task import splice
from regrow.integrations.trl import RegrowReward
from regrow.reward import Reward
from regrow.solve.loop import extract
from regrow.solve.types import Completion
from _batch import calc_fixture, completions_for  # noqa: E402  (benchmarks/ is on sys.path when run)


def naive_arm(reward: Reward, batch: list[tuple[str, str]], workers: int, base: Path) -> list[float]:
    """A fresh pytest per completion, ``workers`` at once, each on its own copy of the tree."""
    root = Path(reward.prepared.source.root)
    python = str(reward.prepared.env.python)
    copies = []
    for i in range(workers):
        dst = base / f"copy{i}"
        shutil.copytree(root, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", ".regrow"))
        copies.append(dst)
    free = list(copies)

    def one(item) -> float:
        task_id, text = item
        task = reward.tasks[task_id]
        body, _ = extract(Completion(text=text), task)
        if body is None:
            return 0.0
        copy = free.pop()
        target = copy / task.path
        try:
            target.write_text(splice(task, body), encoding="utf-8")
            proc = subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *task.tests],
                                  cwd=copy, capture_output=True, timeout=120)
            return 1.0 if proc.returncode == 0 else 0.0
        except subprocess.TimeoutExpired:
            return 0.0
        finally:
            target.write_text(task.original_file, encoding="utf-8")
            free.append(copy)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, batch))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", nargs="?", help="a source spec (default: the calc test fixture)")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--per-task", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--home", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="regrow-bench-reward-") as tmp:
        base = Path(tmp)
        spec = args.spec or calc_fixture(base)
        flags = {"workers": args.workers, "home": args.home or str(base / "home")}
        if not args.spec:
            flags["python"] = sys.executable  # the fixture runs in this interpreter, as the tests do
        t0 = time.perf_counter()
        reward = Reward(spec, resolve_config(flags))
        prepare_s = time.perf_counter() - t0
        try:
            ids = sorted(reward.tasks)[: args.tasks]
            batch = [(tid, text) for tid in ids for text in completions_for(reward.tasks[tid], args.per_task)]
            fn = RegrowReward(None, reward)
            fn.score_batch([ids[0]], ["```python\nreturn None\n```"])  # the workers are warm, as in training
            fn.counts.clear()
            t0 = time.perf_counter()
            ours = asyncio.run(fn(prompts=[""] * len(batch), completions=[t for _, t in batch],
                                  task_id=[tid for tid, _ in batch]))
            ours_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            naive = naive_arm(reward, batch, args.workers, base)
            naive_s = time.perf_counter() - t0
            fn.close()
        finally:
            reward.close()
    n = len(batch)
    agree = sum(a == b for a, b in zip(ours, naive))
    print(f"source {spec if args.spec else 'calc fixture'}: {len(ids)} tasks x {args.per_task} = {n} completions, "
          f"{args.workers} workers (prepare {prepare_s:.1f}s, not counted)")
    print(f"{'arm':<28}{'batch wall s':>14}{'completions/s':>16}{'solved':>8}")
    print(f"{'RegrowReward (warm)':<28}{ours_s:>14.2f}{n / ours_s:>16.1f}{sum(ours):>8.0f}")
    print(f"{'fresh pytest per completion':<28}{naive_s:>14.2f}{n / naive_s:>16.1f}{sum(naive):>8.0f}")
    print(f"ratio (fresh / warm): {naive_s / ours_s:.1f}x; rewards agree on {agree}/{n}; "
          f"regrow counts {dict(fn.counts)}")


if __name__ == "__main__":
    main()
