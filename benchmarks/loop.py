"""Overlap of model calls and verification in `regrow run`, and the local model's speed.

Part 1: a scripted OpenAI-compatible server on loopback answers every request after a fixed
delay (a slow model); verification is real (the package's covering tests). The same tasks run
twice in one go: sequentially (one model call or verification at a time) and overlapped
(model calls and verifications in their own pools). It prints wall time next to the summed
model time and verification time: overlapped wall time should approach the larger of the two,
not their sum.

Part 2: the embedded model (local:smollm2, llama.cpp) proposes bodies for a few tasks; prints
load time and the median tokens per second (tokens counted by the model's own tokenizer).

    python benchmarks/loop.py [--source pypi:toolz==1.0.0] [--tasks 16] [--delay 1.0] [--home DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from openai_stub_server import OpenAIStub, Reply  # noqa: E402  (a real HTTP server, OpenAI wire protocol)

from regrow.config import RunConfig  # noqa: E402
from regrow.api import Hooks, choose_tasks, prepare, run  # noqa: E402
from regrow.solve.solvers import make_solver  # noqa: E402
from regrow.solve.solvers.base import SolveRequest  # noqa: E402

WRONG = "```python\nreturn None\n```"  # a usable body that fails its tests: every answer is verified


def timed_run(spec: str, home: Path, url: str, *, tasks: int, model_concurrency: int, workers: int,
              run_id: str) -> dict:
    stats: dict = {}

    def log(msg: str) -> None:
        if msg.startswith("wall "):
            stats["line"] = msg

    config = RunConfig(home=home, solver=f"openai:bench@{url}", tasks=tasks, turns=2, workers=workers,
                       model_concurrency=model_concurrency, cache=False, run_id=run_id, context="simple")
    start = time.perf_counter()
    run(spec, config, Hooks(log=log))
    stats["wall"] = time.perf_counter() - start
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="pypi:toolz==1.0.0")
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--delay", type=float, default=1.0, help="seconds the scripted model takes per answer")
    ap.add_argument("--home", type=Path, default=Path(".regrow"))
    ap.add_argument("--local-tasks", type=int, default=4)
    args = ap.parse_args()
    prep = prepare(args.source, RunConfig(home=args.home, solver="oracle"))
    stamp = int(time.time())
    with OpenAIStub(lambda body: Reply(texts=(WRONG,), delay=args.delay)) as server:
        seq = timed_run(args.source, args.home, server.base_url, tasks=args.tasks, model_concurrency=1, workers=1,
                        run_id=f"bench-seq-{stamp}")
        ovl = timed_run(args.source, args.home, server.base_url, tasks=args.tasks, model_concurrency=4, workers=2,
                        run_id=f"bench-overlap-{stamp}")
    print(f"part 1: {args.tasks} tasks x 2 turns of {args.source}; scripted model answers after {args.delay:.1f} s")
    print(f"  sequential (1 model call, 1 verification at a time): wall {seq['wall']:.1f} s; {seq['line']}")
    print(f"  overlapped (4 model calls, 2 verifications):          wall {ovl['wall']:.1f} s; {ovl['line']}")
    print(f"  speed-up {seq['wall'] / ovl['wall']:.2f}x")

    solver = make_solver("local:smollm2")
    chosen = choose_tasks(prep.valid, args.local_tasks, 0)
    rates, latencies, load = [], [], None
    for i, task in enumerate(chosen):
        comp = solver.propose(SolveRequest(task=task, seed=i, source_root=str(prep.source.root)))[0]
        load = comp.meta.get("load_seconds", load)
        if i == 0:
            continue  # the first call pays for warming up the model
        rates.append(comp.tokens_out / comp.latency if comp.latency else 0.0)
        latencies.append(comp.latency)
    print(f"part 2: local:smollm2 ({comp.meta.get('backend')}, tokenizer {comp.meta.get('tokenizer')}), "
          f"load {load:.2f} s; median {statistics.median(rates):.1f} tokens/s over {len(rates)} answers "
          f"(median answer {statistics.median(latencies):.1f} s)")


if __name__ == "__main__":
    main()
