"""Benchmark of specialization and drift on one small real package (issue 12).

The package's releases become a git history (`regrow.specialize.corpus.release_history`: one
commit per sdist, dated as released); HEAD is the newest release. Then:

* solvers side by side on the same ``--tasks`` valid tasks of HEAD (seed 0, one sample, one
  turn), in the table the erase-and-regenerate experiment used: function and file Levenshtein
  error (mean edit distance to the original) and similarity (1 - normalised distance), pass@1
  (docs/metrics.md): ``null``, ``retrieval``, ``history@PREV`` (the release before HEAD), the
  base model (the embedded SmolLM2-135M GGUF, dequantised by transformers and saved as a folder,
  so it runs in the same runtime as the fine-tuned ones), and the base fine-tuned with LoRA for
  each of ``--epochs`` in both modes (``codebase``, ``held-out``; `regrow.specialize.finetune`);
* the fine-tuning's wall time and tokens/s, from each run's manifest;
* the drift: monthly churn of the package's code (mean, median month, quiet months, bursts)
  beside the experiment's 2-3 %/month, and the frozen-snapshot ladder (``history@REV`` for
  snapshots 1, 3, 6, 12, 24 months before HEAD).

    python benchmarks/specialize.py --package cachetools \
        --versions 5.0.0,5.1.0,5.2.0,5.2.1,5.3.0,5.3.1,5.3.2,5.3.3,5.4.0,5.5.0,5.5.1,5.5.2 \
        --tasks 12 --epochs 1 --code-only --work /tmp/spec --json results.json

Everything lands under ``--work`` (the history, the store, the models); a second run reuses the
stored runs and the finished models (a model folder with a manifest is not trained again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from regrow.api import Hooks, prepare
from regrow.config import RunConfig
from regrow.report.runs import build_report
from regrow.specialize import corpus, drift
from regrow.specialize import finetune as ft


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def step_logger(every: int = 10):
    def on_step(p: ft.TrainProgress) -> None:
        if p.step % every == 0 or p.step == p.total:
            log(f"  step {p.step}/{p.total} loss {p.loss} {p.tokens_per_second} tok/s eta {p.eta_seconds or 0:.0f}s")
    return on_step


def row(store, run_id: str, label: str, wall: float) -> dict:
    rep = build_report(store, run_id)
    return {"solver": label, "run_id": run_id, "tasks": rep.chosen, "pass_at_1": rep.pass_at.get(1),
            "func_error": rep.func_error, "func_similarity": rep.func_similarity,
            "file_error": rep.file_error, "file_similarity": rep.file_similarity, "wall_seconds": round(wall, 1)}


def save_base(folder: Path) -> Path:
    """The embedded GGUF dequantised by transformers, saved once as a Hugging Face folder."""
    if (folder / "config.json").is_file():
        return folder
    model, tokenizer = ft.load_base("smollm2")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package", default="cachetools")
    ap.add_argument("--versions", default="5.0.0,5.1.0,5.2.0,5.2.1,5.3.0,5.3.1,5.3.2,5.3.3,5.4.0,5.5.0,5.5.1,5.5.2")
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--epochs", default="1", help="comma-separated epoch counts to fine-tune for")
    ap.add_argument("--modes", default="codebase,held-out")
    ap.add_argument("--code-only", action="store_true", help="train on the package's code only (no tests)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-models", action="store_true")
    args = ap.parse_args()

    work = args.work.resolve()
    versions = [v for v in args.versions.split(",") if v]
    root = corpus.release_history(args.package, versions, work / args.package, downloads=work / "downloads", log=log)
    config = RunConfig(home=work / "home", python=Path(sys.executable), workers=2, timeout=60, tasks=args.tasks,
                       seed=0, max_tokens=args.max_tokens)
    results: dict = {"format": "regrow-specialize-bench/1", "package": args.package, "versions": versions,
                     "load_at_start": os.getloadavg(), "cpus": os.cpu_count()}

    t0 = time.perf_counter()
    churn = drift.churn(root)
    results["churn"] = churn.to_dict()
    log(f"churn: mean {churn.mean}, median {churn.median}, quiet {churn.quiet_share}")
    decay = drift.decay(str(root), config, hooks=Hooks(log=log))
    results["decay"] = decay.to_dict()
    log(f"decay ladder in {time.perf_counter() - t0:.0f}s")

    prep = prepare(str(root), config, Hooks(log=log))
    store = prep.store
    rows = []
    try:
        prev = f"v{versions[-2]}"
        for spec, label in (("null", "null"), ("retrieval", "retrieval"), (f"history@{prev}", f"history@{prev}")):
            t = time.perf_counter()
            rows.append(row(store, drift.solve_run(prep, str(root), config, spec, Hooks(log=log)), label,
                            time.perf_counter() - t))
            log(f"{label}: {rows[-1]}")
        if not args.skip_models:
            base = save_base(work / "models" / "smollm2-hf")
            t = time.perf_counter()
            rows.append(row(store, drift.solve_run(prep, str(root), config, f"local:{base}", Hooks(log=log)),
                            "SmolLM2-135M (base)", time.perf_counter() - t))
            log(f"base: {rows[-1]}")
            results["finetune"] = []
            for epochs in [float(e) for e in args.epochs.split(",")]:
                for mode in args.modes.split(","):
                    folder = work / "models" / f"{mode}-{epochs:g}ep"
                    options = ft.FinetuneOptions(mode=mode, epochs=epochs, code_only=args.code_only, save_steps=25)
                    if (folder / ft.MANIFEST).is_file():
                        manifest = ft.read_manifest(folder)
                    else:
                        log(f"fine-tuning {mode} {epochs:g} epochs")
                        manifest = ft.finetune_checkout(str(base), root, folder, options=options,
                                                        held_out=tuple(prep.valid) if mode == "held-out" else (),
                                                        hooks=Hooks(log=log), on_step=step_logger())
                    results["finetune"].append({k: manifest[k] for k in (
                        "mode", "epochs", "steps", "wall_seconds", "tokens_per_second", "tokens_seen", "train_loss",
                        "device", "bf16", "data")} | {"first_loss": manifest["loss_curve"][0]["loss"],
                                                      "last_loss": manifest["loss_curve"][-1]["loss"]})
                    log(f"manifest: {results['finetune'][-1]}")
                    t = time.perf_counter()
                    rows.append(row(store, drift.solve_run(prep, str(root), config, f"local:{folder}",
                                                           Hooks(log=log)),
                                    f"SmolLM2-135M + LoRA {mode} {epochs:g} ep", time.perf_counter() - t))
                    log(f"{mode} {epochs:g}: {rows[-1]}")
    finally:
        prep.close()
    results["solvers"] = rows
    results["load_at_end"] = os.getloadavg()
    print_tables(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def _f(x, fmt="{:.3f}"):
    return "-" if x is None else fmt.format(x)


def print_tables(results: dict) -> None:
    print(f"\n### {results['package']}: {results['solvers'][0]['tasks'] if results.get('solvers') else '?'} tasks\n")
    print("| solver | func error | func similarity | file error | file similarity | pass@1 | wall (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results.get("solvers", []):
        print(f"| {r['solver']} | {_f(r['func_error'])} | {_f(r['func_similarity'])} | "
              f"{_f(r['file_error'])} | {_f(r['file_similarity'])} | {_f(r['pass_at_1'], '{:.2f}')} | "
              f"{r['wall_seconds']} |")
    for m in results.get("finetune", []):
        print(f"\nfine-tune {m['mode']} {m['epochs']:g} ep: {m['steps']} steps, {m['data']['tokens']} tokens/epoch, "
              f"{m['wall_seconds']} s, {m['tokens_per_second']} tokens/s ({m['device']}, bf16={m['bf16']}), "
              f"loss {m['first_loss']} -> {m['last_loss']}")
    c = results["churn"]
    print(f"\nchurn: mean {_f(c['mean'] * 100, '{:.2f}')} %/month, median month {_f(c['median'] * 100, '{:.2f}')} %, "
          f"{_f(c['quiet_share'] * 100, '{:.0f}')} % of {len(c['months'])} months quiet; bursts: "
          + "; ".join(f"{b['date']} {b['kind']} {b['share'] * 100:.1f} %" for b in c["bursts"]))
    print("\n| months back | snapshot | age (days) | missing | pass@1 | func similarity | file similarity |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results["decay"]["rungs"]:
        print(f"| {r['months']} | {r['revision'] or '-'} {r['snapshot_date'] or ''} | {_f(r['age_days'], '{:.0f}')} | "
              f"{_f(r['missing'], '{}')} | {_f(r['pass_at_1'], '{:.2f}')} | {_f(r['func_similarity'])} | "
              f"{_f(r['file_similarity'])} |")


if __name__ == "__main__":
    main()
