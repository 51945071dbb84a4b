"""Benchmark of the context engine: dependency recall of packs, and speed. See docs/context.md.

Quality, per package (``SPEC``: a directory or pypi:NAME==VER; grok runs its test suite once):

* targets: functions hollow would make tasks of (eligible, covered by a passing test) whose
  original body references at least one repository definition; ``--tasks`` of them, chosen by
  a seeded hash of the qualname;
* EDR@B: the share of the gold set present in the task-mode pack of budget B, where the gold
  set is the repository definitions (functions, methods, classes, constants, class attributes;
  test code excluded) that the *original* body references, resolved statically by
  `regrow.grok.graph`; a definition is present when an item shows at least its signature;
* test recall@B: the share of the target's covering tests whose body is in the pack;
* noise@B: the share of the pack's item tokens spent on items that show no gold definition
  and are not a covering test.

Speed, on one larger source (``--speed SPEC``): cold static grok (symbols + graph) into an
empty store, engine load, warm context query (median of ``--queries`` targets at 4k), an
incremental static re-grok after one file changed, peak RSS of the process.

    python benchmarks/context.py pypi:toolz==1.0.0 pypi:attrs==24.2.0 ... --speed pypi:NAME==VER
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from regrow.config import resolve_config
from regrow.context.engine import ContextEngine, build_context
from regrow.errors import RegrowError
from regrow.grok.graph import is_test_definition
from regrow.grok.build import grok_static_part
from regrow.tasks.hollow import HollowConfig, eligibility
from regrow.api import Hooks, prepare
from regrow.source.resolve import resolve_source
from regrow.store import Store
from regrow.context.tokenizers import get_tokenizer

BUDGETS = (1000, 4000, 16000)


def gold(engine: ContextEngine, qualname: str) -> set[str]:
    g = engine.graph
    return {q for q in g.uses(qualname) if not is_test_definition(g.defs[q])}


def targets(engine: ContextEngine, n: int, seed: int) -> list[str]:
    cfg = HollowConfig()
    found = [s.qualname for s in engine.index.symbols.values()
             if eligibility(s, cfg) is None and engine.index.covering(s.qualname) and gold(engine, s.qualname)]
    found.sort(key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    return found[:n]


def measure(engine: ContextEngine, q: str, budget: int, tok) -> dict:
    pack = build_context(engine, q, budget=budget, tokenizer=tok, mode="task")
    assert pack.tokens <= budget, (q, budget, pack.tokens)
    g = gold(engine, q)
    tests = set(engine.index.covering(q))
    shown_tests = {i.subject for i in pack.items if i.channel == "test"}
    item_tokens = sum(i.tokens for i in pack.items) or 1
    noise = sum(i.tokens for i in pack.items if not (set(i.covers) & g) and i.subject not in tests)
    return {"edr": len(g & pack.covered) / len(g), "tests": len(tests & shown_tests) / len(tests) if tests else 0.0,
            "noise": noise / item_tokens, "tokens": pack.tokens}


def quality(spec: str, args, tok) -> dict:
    config = resolve_config({"home": args.home})
    prep = prepare(spec, config, Hooks(log=lambda m: print(f"  · {m}", file=sys.stderr)), validate=False)
    engine = ContextEngine.load(prep.store, prep.source.key, prep.source.root, prep.index)
    chosen = targets(engine, args.tasks, args.seed)
    row = {"source": f"{prep.source.name} {prep.source.version or ''}".strip(), "targets": len(chosen),
           "gold": statistics.mean(len(gold(engine, q)) for q in chosen) if chosen else 0.0}
    for b in BUDGETS:
        ms = [measure(engine, q, b, tok) for q in chosen]
        for k in ("edr", "tests", "noise"):
            row[f"{k}@{b}"] = statistics.mean(m[k] for m in ms) if ms else 0.0
    return row


def speed(spec: str, args, tok) -> dict:
    base = resolve_source(spec, home=Path(args.home))
    work = Path(args.home) / "speed"
    shutil.rmtree(work, ignore_errors=True)
    tree = work / "tree"
    shutil.copytree(base.root, tree, symlinks=True)
    store = Store(work / "regrow.sqlite")
    source = resolve_source(str(tree), home=Path(args.home))
    lines = sum(p.read_bytes().count(b"\n") for p in tree.rglob("*.py"))
    t0 = time.perf_counter()
    grok_static_part(store, source)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = ContextEngine.load(store, source.key, source.root)
    engine.nx_graph()
    engine.bm25()
    load = time.perf_counter() - t0
    cfg = HollowConfig()
    pool = sorted(s.qualname for s in engine.index.symbols.values() if eligibility(s, cfg) is None)
    pool.sort(key=lambda q: hashlib.sha256(f"{args.seed}:{q}".encode()).hexdigest())
    build_context(engine, pool[0], budget=4000, tokenizer=tok)
    times = []
    for q in pool[: args.queries]:
        t0 = time.perf_counter()
        build_context(engine, q, budget=4000, tokenizer=tok)
        times.append(time.perf_counter() - t0)
    victim = next(p for p in sorted(tree.rglob("*.py")) if p.stat().st_size > 2000 and "test" not in p.name)
    victim.write_text(victim.read_text() + "\n\ndef _regrow_bench_added(x):\n    return x\n")
    changed = resolve_source(str(tree), home=Path(args.home))
    t0 = time.perf_counter()
    grok_static_part(store, changed)
    incremental = time.perf_counter() - t0
    facts = store.one("SELECT facts FROM sources WHERE source_key=?", (changed.key,))[0]
    assert '"static_changed_files": 1' in facts, facts[-200:]
    return {"source": f"{base.name} {base.version or ''}".strip(), "py_lines": lines,
            "definitions": len(engine.graph.defs), "edges": len(engine.graph.edges),
            "cold_static_grok_s": cold, "engine_load_s": load,
            "warm_query_s_median": statistics.median(times), "warm_query_s_max": max(times),
            "incremental_regrok_s": incremental,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", help="sources for the quality part")
    ap.add_argument("--speed", help="a large source for the speed part")
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default="smollm2")
    ap.add_argument("--home", default="/tmp/regrow-bench")
    args = ap.parse_args(argv)
    tok = get_tokenizer(args.tokenizer)
    rows = []
    for spec in args.specs:
        try:
            rows.append(quality(spec, args, tok))
        except RegrowError as exc:  # e.g. an sdist without its tests
            print(f"skipping {spec}: {str(exc).splitlines()[0]}", file=sys.stderr)
    if rows:
        cols = ["source", "targets", "gold"] + [f"{k}@{b}" for k in ("edr", "tests", "noise") for b in BUDGETS]
        print(f"\nquality (task mode, tokenizer {tok.name}; budgets in tokens)")
        print("| " + " | ".join(c.replace("@", "@").replace("000", "k") for c in cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) if isinstance(r[c], (str, int)) else f"{r[c]:.2f}" for c in cols) + " |")
        n = len(rows)
        print("| mean | | | " + " | ".join(f"{sum(r[c] for r in rows) / n:.2f}" for c in cols[3:]) + " |")
    if args.speed:
        s = speed(args.speed, args, tok)
        print(f"\nspeed (tokenizer {tok.name})")
        for k, v in s.items():
            print(f"| {k} | {v if isinstance(v, (str, int)) else f'{v:.3f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
