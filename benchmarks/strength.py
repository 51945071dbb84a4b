"""Task strength: regrow's mutation testing against mutmut 3, on the same real packages.

For each package (an sdist that ships its tests), side by side in one run:

  regrow  `regrow strength` (`regrow.api.measure_strength`, measured again): every valid task's
          reference mutated with libcst, each mutant verified by the warm engine with fail-fast,
          fastest and latest-killing tests first, ``--workers`` at a time. The environment, test
          map and validation are built first and not timed (they are cached, like any later run's);
          their time is printed apart.
  mutmut  ``mutmut run --max-children W`` in its own virtual environment (made here, under the
          work dir, with pip) on a fresh copy of the same sdist; its whole wall time (mutant
          generation, its stats and clean runs, the mutants). Counts from ``mutmut results --all true``.

Printed per package and tool: mutants, killed, survived, timeout, no tests (mutmut: mutants of
functions no test runs; regrow only mutates covered, validated tasks), wall seconds, mutants per
second, and the ratio of regrow's mutants per second to mutmut's; and the load average before and
after (the machine may be shared). The two tools do not mutate the same set of functions or use the
same operators: compare rates and kill counts, not individual mutants.

    PYTHONPATH=src python benchmarks/strength.py --work /tmp/regrow-strength-bench pypi:toolz==1.0.0

``--max-tasks N`` limits regrow to N tasks (chosen by seed); ``--mutmut-cap S`` stops mutmut after
S seconds (its partial results are read). One run of the default stays under 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from regrow.api import measure_strength, prepare
from regrow.config import RunConfig
from regrow.source.resolve import resolve_source

# How mutmut is pointed at each package: its config file, the lines to append, extra test deps.
# toolz: its tests live in the package; test_curried_namespace lists the module's names and fails
# on mutmut's trampoline helpers (not a mutant's doing), so mutmut deselects it.
MUTMUT = {
    "toolz": {"file": "setup.cfg", "deps": [], "config": """
[mutmut]
source_paths=toolz/
do_not_mutate=toolz/tests/*
    toolz/sandbox/tests/*
    toolz/curried/*
pytest_add_cli_args_test_selection=toolz/tests/
also_copy=tlz/
pytest_add_cli_args=--deselect=toolz/tests/test_curried.py::test_curried_namespace
"""},
    "humanize": {"file": "pyproject.toml", "deps": ["freezegun", "pytest-cov"], "config": """
[tool.mutmut]
source_paths = ["src/humanize/"]
pytest_add_cli_args_test_selection = ["tests/"]
"""},
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} CPUs"


def mutmut_venv(work: Path, deps: list[str]) -> Path:
    venv = work / "mutmut-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "mutmut>=3,<4", "pytest", *deps], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return venv


def run_regrow(spec: str, home: Path, workers: int, max_tasks: int | None, seed: int) -> dict:
    config = RunConfig(home=home, workers=workers, seed=seed, solver="oracle")
    t0 = time.perf_counter()
    prepare(spec, config).close()  # environment, test map, validation: cached for the timed call
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    tasks = measure_strength(spec, config, tasks=max_tasks, again=True)
    wall = time.perf_counter() - t1
    recs = [t.extra["strength"] for t in tasks if t.extra.get("strength")]
    total = lambda k: sum(r.get(k) or 0 for r in recs)  # noqa: E731
    return {"tool": "regrow", "mutants": total("mutants"), "killed": total("killed"), "survived": total("survived"),
            "timeout": total("timeout"), "no_tests": 0, "wall": wall, "setup": setup, "tasks": len(recs),
            "equivalent": total("equivalent")}


def run_mutmut(source_root: Path, name: str, work: Path, workers: int, cap: float) -> dict:
    conf = MUTMUT.get(name)
    if conf is None:
        return {"tool": "mutmut", "error": f"no mutmut configuration for {name} in this benchmark"}
    venv = mutmut_venv(work, conf["deps"])
    tree = work / "mutmut" / source_root.name
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(source_root, tree)
    with open(tree / conf["file"], "a", encoding="utf-8") as fh:
        fh.write(conf["config"])
    mutmut = str(venv / "bin" / "mutmut")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([mutmut, "run", "--max-children", str(workers)], cwd=tree, env=env,
                              capture_output=True, text=True, timeout=cap)
        out, capped = proc.stdout + proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        got = exc.stdout or ""
        out, capped = got.decode(errors="replace") if isinstance(got, bytes) else got, True
    wall = time.perf_counter() - t0
    res = subprocess.run([mutmut, "results", "--all", "true"], cwd=tree, env=env, capture_output=True, text=True)
    counts = Counter(m.group(1) for m in re.finditer(r":\s*([a-z ]+?)\s*$", res.stdout, re.M))
    if not counts:
        tail = [ln for ln in out.replace("\r", "\n").splitlines() if ln.strip()][-1:]
        return {"tool": "mutmut", "error": f"no results ({tail[0][:160] if tail else 'no output'})", "wall": wall}
    rate = re.findall(r"([\d.]+) mutations/second", out.replace("\r", "\n"))
    return {"tool": "mutmut", "mutants": sum(counts.values()), "killed": counts.get("killed", 0),
            "survived": counts.get("survived", 0), "timeout": counts.get("timeout", 0),
            "no_tests": counts.get("no tests", 0), "wall": wall, "capped": capped,
            "own_rate": float(rate[-1]) if rate else None, "other": dict(counts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", default=["pypi:toolz==1.0.0"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/regrow-strength-bench"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-tasks", type=int, default=None, help="regrow: at most this many tasks")
    ap.add_argument("--mutmut-cap", type=float, default=480.0, help="seconds before mutmut is stopped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = args.work.resolve()
    home = work / "regrow-home"
    rows = []
    for spec in args.specs:
        src = resolve_source(spec, home=home)
        before = load()
        rg = run_regrow(spec, home, args.workers, args.max_tasks, args.seed)
        mid = load()
        mm = run_mutmut(src.root, src.name, work, args.workers, args.mutmut_cap)
        rows.append({"spec": spec, "regrow": rg, "mutmut": mm, "load": [before, mid, load()]})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    cols = ("tool", "mutants", "killed", "survived", "timeout", "no tests", "wall s", "mutants/s")
    for r in rows:
        print(f"\n{r['spec']}   load before/between/after: {' | '.join(r['load'])}")
        print("  ".join(f"{c:>10}" for c in cols))
        rates = {}
        for tool in ("regrow", "mutmut"):
            d = r[tool]
            if "error" in d:
                print(f"{tool:>10}  failed: {d['error']}")
                continue
            rates[tool] = d["mutants"] / d["wall"] if d["wall"] else 0.0
            print("  ".join(f"{v:>10}" for v in (tool, d["mutants"], d["killed"], d["survived"], d["timeout"],
                                                  d["no_tests"], f"{d['wall']:.1f}", f"{rates[tool]:.2f}")))
        rg, mm = r["regrow"], r["mutmut"]
        print(f"regrow: {rg['tasks']} valid tasks, setup (environment, test map, validation) {rg['setup']:.1f}s "
              f"not timed, {rg['equivalent']} equivalent mutants not run")
        if "error" not in mm:
            print(f"mutmut: its own rate {mm['own_rate']} mutations/s"
                  + (" (stopped at the cap: partial)" if mm["capped"] else "") + f"; statuses {mm['other']}")
        if len(rates) == 2 and rates["mutmut"]:
            print(f"ratio regrow/mutmut mutants per second: {rates['regrow'] / rates['mutmut']:.2f}x; "
                  f"killed {rg['killed']} vs {mm['killed']}")


if __name__ == "__main__":
    main()
