"""Soak: many candidates in a row through one warm Verifier, a third of them hostile.

Afterwards it checks that nothing leaked: processes (our descendants and anything still running
under a worker's sandbox uid), this process's open file descriptors, regrow temporary
directories, and that each worker's resident memory grew by less than ``--rss-mb`` over its
life; and that every candidate got a verdict (zero lost).

    PYTHONPATH=src:. python benchmarks/soak.py -n 1000
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.redteam.corpus import CORPUS  # noqa: E402
from tests.redteam.fixture import prepare_fixture  # noqa: E402

SLOW = {"infinite-loop", "sleep-past-timeout", "huge-output", "read-store"}


def idle_spare(pid: int) -> bool:
    """A worker's forked child waiting for its next request: named so, and still the worker's user
    (a candidate's process runs as the sandbox uid and cannot rename itself: ctypes is blocked)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    return name == "regrow-spare" and uid == os.geteuid()


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            data = open(stat, "rb").read()
            ppid = int(data[data.rindex(b")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(stat.split("/")[2]))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _sandbox_uid_processes(uids: set[int]) -> list[int]:
    """Processes running as one of ``uids``: the sandbox uids of this soak's own workers (each
    worker's is 300000 + its pid), so another regrow job on the machine is not counted."""
    found = []
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            for line in open(status):
                if line.startswith("Uid:"):
                    if int(line.split()[1]) in uids:
                        found.append(int(status.split("/")[2]))
                    break
        except (OSError, ValueError):
            continue
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _temp_dirs(work: Path) -> set[str]:
    return {str(p) for p in work.iterdir()}


def soak(n: int, seed: int = 0, rss_bound_mb: float = 64.0, log=print) -> dict:
    random.seed(seed)
    from regrow.grok.recorder import CallLog
    from regrow.verify.verifier import Verifier, VerifyConfig

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    prep, tasks = prepare_fixture(tmp, timeout=2.0)
    prep.verifier.close()
    work = tmp / "work"  # the engine's copies and sandbox dirs go here: checked empty at the end
    work.mkdir()
    for p in (tmp, work):
        p.chmod(0o755)
    verifier = Verifier(prep.source.root, prep.env.python, prep.source.import_roots, workdir=work,
                        calls=CallLog(prep.store, prep.source.key), config=VerifyConfig(timeout=2.0, workers=1))
    hostile = [c for c in CORPUS if c[0] not in SLOW]
    slow = [c for c in CORPUS if c[0] in SLOW]
    honest = [(t.task_id, t.reference_body) for t in tasks.values()] + [(t.task_id, "return None") for t in tasks.values()]
    verifier.verify(next(iter(tasks.values())), "return None")  # start the worker
    fds0 = len(os.listdir("/proc/self/fd"))
    rss: dict[int, list[float]] = {}
    verdicts, wrong, start = 0, [], time.perf_counter()
    uids: set[int] = set()  # the sandbox uids of this soak's workers
    for i in range(n):
        if i % 3 == 2:
            name, _family, task_id, body, expected = random.choice(slow if i % 150 == 2 else hostile)
        else:
            (task_id, body), name, expected = random.choice(honest), "honest", None
        v = verifier.verify(tasks[task_id], body)
        verdicts += v.status is not None
        if expected is not None and (v.reward != 0 or not set(v.flags) & expected):
            wrong.append((i, name, v.status, v.flags))
        if expected is None and body != "return None" and v.reward != 1.0:
            wrong.append((i, "honest", task_id, v.status, v.flags))
        for w in verifier.engine._all:
            if w.alive:
                rss.setdefault(w.proc.pid, []).append(_rss_mb(w.proc.pid))
                if isinstance(w.facts.get("uid"), int):
                    uids.add(w.facts["uid"])
        if (i + 1) % 100 == 0:
            log(f"{i + 1}/{n} in {time.perf_counter() - start:.0f}s, {len(rss)} worker(s) so far, wrong {len(wrong)}")
    elapsed = time.perf_counter() - start
    growth = max((max(v) - v[0] for v in rss.values() if v), default=0.0)
    live = [p for p in _descendants(os.getpid()) if any(w.alive and w.proc.pid == p for w in verifier.engine._all)]
    stray = [p for p in _descendants(os.getpid()) if p not in live and not idle_spare(p)]
    if stray:  # a spare forked a moment ago is named a few instructions after fork: look again
        time.sleep(0.5)
        stray = [p for p in stray if p in _descendants(os.getpid()) and not idle_spare(p)]
    worker_pids = [w.proc.pid for w in verifier.engine._all if w.alive]
    verifier.close()
    time.sleep(0.2)
    result = {
        "candidates": n, "verdicts": verdicts, "lost": n - verdicts, "wrong": wrong, "seconds": elapsed,
        "workers_used": len(rss), "rss_growth_mb": growth, "rss_bound_mb": rss_bound_mb,
        "stray_processes_during": stray, "processes_after_close": _descendants(os.getpid()),
        "sandbox_uid_processes_after": _sandbox_uid_processes(uids),
        "fds_before": fds0, "fds_after": len(os.listdir("/proc/self/fd")),
        "temp_dirs_left": sorted(_temp_dirs(work)), "worker_pids_at_end": worker_pids,
    }
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--rss-mb", type=float, default=64.0)
    args = ap.parse_args()
    r = soak(args.n, rss_bound_mb=args.rss_mb, log=lambda m: print(m, file=sys.stderr))
    for k, v in r.items():
        print(f"{k:30} {v}")
    ok = (r["lost"] == 0 and not r["wrong"] and not r["stray_processes_during"] and not r["processes_after_close"]
          and not r["sandbox_uid_processes_after"] and r["fds_after"] <= r["fds_before"] and not r["temp_dirs_left"]
          and r["rss_growth_mb"] < r["rss_bound_mb"])
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
