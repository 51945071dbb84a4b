"""Grok cost next to the plain test suite, measured side by side in one run.

For each package: the static part (parse every module), the test map (the suite under
coverage.py with one dynamic context per test), the call recording for the equivalence check
(a second suite run), and the plain suite (`python -m pytest` in the
same environment, on the same private copy) — each repeated, medians printed, and the ratio
test map / plain suite (goal: about 3x or less).

    python benchmarks/grok.py [pypi:toolz==1.0.0 pypi:cachetools==5.5.0 ...] [--repeats 5] [--home DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from regrow.source.envs import ensure_environment
from regrow.grok.build import grok_static
from regrow.grok.recorder import record_calls
from regrow.verify.sandbox import PLUGIN_DIR
from regrow.store import Store
from regrow.source.resolve import resolve_source
from regrow.grok.testmap import run_test_map
from regrow.source.workspace import private_copy, remove_tree

DEFAULT = ["pypi:toolz==1.0.0", "pypi:cachetools==5.5.0"]


def plain_suite(root: Path, python: Path, import_roots: tuple[str, ...]) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="regrow-bench-"))
    try:
        copy = private_copy(root, tmp / "src")
        paths = [str(copy / r) if r not in (".", "") else str(copy) for r in import_roots]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(paths), "PYTHONDONTWRITEBYTECODE": "1",
               "HOME": str(tmp)}
        start = time.perf_counter()
        subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=copy, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
        return time.perf_counter() - start
    finally:
        remove_tree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="*", default=DEFAULT)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--home", type=Path, default=Path(".regrow"))
    args = ap.parse_args()
    assert PLUGIN_DIR.exists()
    rows = []
    for spec in args.sources:
        source = resolve_source(spec, home=args.home)
        env = ensure_environment(source, home=args.home)
        static, tmap, plain, record = [], [], [], []
        scratch = Store(Path(tempfile.mkdtemp(prefix="regrow-bench-store-")) / "s.sqlite")
        n_tests = n_covered = 0
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits all three alike
            t = time.perf_counter()
            _, _, symbols = grok_static(source)
            static.append(time.perf_counter() - t)
            t = time.perf_counter()
            tm = run_test_map(source.root, env.python, source.import_roots)
            tmap.append(time.perf_counter() - t)
            n_tests = len(tm.tests)
            n_covered = sum(1 for s in symbols if not s.is_test and tm.covering(s))
            plain.append(plain_suite(source.root, env.python, source.import_roots))
            covered = {s.qualname for s in symbols if not s.is_test and tm.covering(s)}
            t = time.perf_counter()
            record_calls(source.root, env.python, source.import_roots, scratch, source.key, qualnames=covered)
            record.append(time.perf_counter() - t)
        med = statistics.median
        rows.append((spec, len(symbols), n_tests, n_covered, med(static), med(tmap), med(plain), med(record)))
    print(f"{'source':28} {'funcs':>6} {'tests':>6} {'covered':>8} {'static s':>9} {'testmap s':>10} "
          f"{'record s':>9} {'plain suite s':>14} {'testmap/plain':>14} {'(map+record)/plain':>19}")
    for spec, nf, nt, nc, s, tm, p, rec in rows:
        print(f"{spec:28} {nf:6d} {nt:6d} {nc:8d} {s:9.3f} {tm:10.3f} {rec:9.3f} {p:14.3f} {tm / p:14.2f} "
              f"{(tm + rec) / p:19.2f}")
    print(f"(medians of {args.repeats} interleaved repeats; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
