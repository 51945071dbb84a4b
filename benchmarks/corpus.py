"""Breadth as a measured figure: grok → hollow → oracle → null on a corpus of real packages.

Each package runs in its own subprocess (``--one SPEC``) under a wall timeout, so a hang or a
crash is one row of the table, not the end of the corpus. Before regrow's own run, the
package's suite is run plainly (``python -m pytest -q -p no:cacheprovider`` on a private copy,
in the environment regrow built, with the same PYTHONPATH), and a package whose suite does not
pass there is counted apart, with the reason.

    python benchmarks/corpus.py [--home DIR] [--only toolz,click] [--json out.json]
                                [--workers 2] [--timeout 900] [--tasks N]

``--home`` defaults to a fresh temporary folder (as a new user would start); give an existing
one to re-run on the environments and store already built there. ``--tasks N`` gives oracle
and null N valid tasks each (chosen by seed) instead of all of them; validation always covers
every hollowed function.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = [  # small to large, so a partial run still covers many packages
    "inflection==0.5.1", "iniconfig==2.3.0", "xmltodict==0.14.2", "docopt-ng==0.9.0", "webcolors==24.11.1",
    "humanize==4.12.1", "cachetools==5.5.0", "pathspec==0.12.1", "funcy==2.0", "toolz==1.0.0",
    "natsort==8.4.0", "sqlparse==0.5.3", "glom==24.11.0", "packaging==24.2", "pluggy==1.5.0",
    "requests==2.32.3", "click==8.1.8", "pyparsing==3.2.3", "jinja2==3.1.6", "werkzeug==3.1.3",
]
SUITE_TIMEOUT_S = 600
_SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed|warnings?)\b.*?)\s*=*$")


def _module(*names: str):
    """The first of ``names`` that imports (regrow's layout moved from flat modules to subpackages)."""
    import importlib
    for name in names[:-1]:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return importlib.import_module(names[-1])


def one_line(text: object, limit: int = 240) -> str:
    """The first non-empty line of ``text``, whitespace squeezed, cut to ``limit``."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return re.sub(r"\s+", " ", line)[:limit]


def telling_line(output: str) -> str:
    """The line of pytest output most likely to say why (an E-line, an ERROR/FAILED line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for pattern in (r"^E\s+\w+(Error|Exception|Warning)\b", r"^[\w.]+(Error|Exception|Warning): ",
                    r"^(ERROR|FAILED) ", r"^E\s+", r"Error|error"):
        hit = next((ln for ln in lines if re.search(pattern, ln)), None)
        if hit:
            return one_line(hit)
    return ""


def plain_suite(source, env) -> dict:
    """The package's own suite, plainly, on a private copy: exit status, summary, why it failed."""
    ws = _module("regrow.source.workspace", "regrow.workspace")
    private_copy, remove_tree = ws.private_copy, ws.remove_tree
    tmp = Path(tempfile.mkdtemp(prefix="regrow-corpus-suite-"))
    try:
        copy = private_copy(source.root, tmp / "src")
        paths = [str(copy / r) if r not in (".", "") else str(copy) for r in source.import_roots]
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "TMPDIR": str(tmp),
                   "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        start = time.perf_counter()
        try:
            proc = subprocess.run([str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=copy,
                                  env=environ, capture_output=True, text=True, errors="replace",
                                  timeout=SUITE_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"rc": None, "passes": False, "summary": f"timed out after {SUITE_TIMEOUT_S}s", "why": "",
                    "seconds": SUITE_TIMEOUT_S}
        output = proc.stdout + proc.stderr
        summary = next((m.group(1) for ln in reversed(output.splitlines()) if (m := _SUMMARY.match(ln.strip()))), "")
        passes = proc.returncode == 0
        return {"rc": proc.returncode, "passes": passes, "summary": summary or (output.strip().splitlines() or [""])[-1][:240],
                "why": "" if passes else telling_line(output), "seconds": time.perf_counter() - start}
    finally:
        remove_tree(tmp)


def run_one(spec: str, home: Path, workers: int, tasks: int | None, save=lambda row: None) -> dict:
    """One package, in this process: environment, plain suite, then regrow with oracle and null."""
    from regrow.config import RunConfig
    ensure_environment = _module("regrow.source.envs", "regrow.envs").ensure_environment
    HollowConfig = _module("regrow.tasks.hollow", "regrow.hollow").HollowConfig
    build_report = _module("regrow.report.runs", "regrow.report").build_report
    api = _module("regrow.api", "regrow.runner")
    Hooks, open_store, run = api.Hooks, api.open_store, api.run
    resolve_source = _module("regrow.source.resolve", "regrow.source").resolve_source
    tasks_mod = _module("regrow.tasks.build", "regrow.tasks")
    load_tasks, summarize = tasks_mod.load_tasks, tasks_mod.summarize

    row: dict = {"spec": spec, "error": None, "phase": "source"}
    t0 = time.perf_counter()
    hooks = Hooks(log=lambda msg: print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True))
    config = RunConfig(home=home, solver="oracle", workers=workers, tasks=tasks)
    try:
        source = resolve_source(f"pypi:{spec}", home=home)
        row["phase"] = "environment"
        env = ensure_environment(source, home=home, log=hooks.log)
        row["environment_s"] = time.perf_counter() - t0
        row["phase"] = "plain suite"
        row["suite"] = plain_suite(source, env)
        hooks.log(f"plain suite: rc={row['suite']['rc']} {row['suite']['summary']}")
        row["phase"] = "grok/hollow/oracle"
        save(row)  # what a timed-out package reached
        store = open_store(config)
        try:
            oracle = build_report(store, run(f"pypi:{spec}", config, hooks))
            row["oracle"] = oracle.pass_at.get(1)
            row["phase"] = "null"
            null = build_report(store, run(f"pypi:{spec}", config.model_copy(update={"solver": "null"}), hooks))
            row["null"], row["chosen"] = null.pass_at.get(1), oracle.chosen
            row["oracle_statuses"], row["null_statuses"] = oracle.statuses, null.statuses
        finally:
            tasks_, excluded = load_tasks(store, source.key, HollowConfig(min_statements=config.min_statements).key())
            row["tasks"] = summarize(tasks_, excluded)
            # One full reason per kind of lost task, for diagnosis (the summary cuts them at ':').
            examples: dict[str, str] = {}
            for t in tasks_:
                if t.status != "valid" and t.status not in examples:
                    examples[t.status] = f"{t.task_id}: {t.reason}"
            row["lost_examples"] = examples
            row["facts"] = json.loads((store.one("SELECT facts FROM sources WHERE source_key=?", (source.key,))
                                       or {"facts": "{}"})["facts"])
            row["facts"].pop("file_hashes", None)
        row["phase"] = "done"
    except Exception as exc:  # one line, never a traceback
        row["error"] = f"{type(exc).__name__}: {one_line(exc)}"
        row["error_detail"] = telling_line(str(exc))
    row["wall_s"] = time.perf_counter() - t0
    return row


def _descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (regrow's pytest and pip run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def run_isolated(spec: str, args, logs: Path) -> dict:
    """``--one SPEC`` in a subprocess with a wall timeout; a hang or a crash becomes the row's error."""
    result = logs / f"{spec}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", spec, "--home", str(args.home),
           "--workers", str(args.workers), "--result", str(result)] + (["--tasks", str(args.tasks)] if args.tasks else [])
    start = time.perf_counter()
    with open(logs / f"{spec}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            below = _descendants(proc.pid)
            proc.send_signal(signal.SIGINT)  # let regrow stop its own workers first
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            for pid in [proc.pid, *below, *_descendants(proc.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
            partial = json.loads(result.read_text()) if result.is_file() else {}
            return {**partial, "spec": spec, "error": f"timed out after {args.timeout:g}s (package wall limit)",
                    "wall_s": time.perf_counter() - start, **_partial(logs / f"{spec}.log")}
    row = json.loads(result.read_text()) if result.is_file() else None
    if row is not None and (row.get("phase") == "done" or row.get("error")):
        return row
    tail = (logs / f"{spec}.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
    return {**(row or {}), "spec": spec, "wall_s": time.perf_counter() - start,
            "error": f"crashed (exit {proc.returncode}) in {(row or {}).get('phase', 'source')}: {one_line(tail[0])}"}


def _partial(log: Path) -> dict:
    """What a timed-out package's log says it reached (its last line)."""
    lines = log.read_text(errors="replace").strip().splitlines()
    return {"last_log": one_line(lines[-1]) if lines else ""}


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def render(rows: list[dict]) -> str:
    head = (f"{'package':22} {'tests':>11} {'funcs':>5} {'hollow':>6} {'valid':>5} {'oracle':>6} {'null':>5} "
            f"{'wall s':>7}  suite")
    out = [head, "-" * len(head)]
    for r in rows:
        t, s = r.get("tasks") or {}, r.get("suite") or {}
        suite = "—" if not s else ("passes" if s["passes"] else f"FAILS (rc {s['rc']})")
        f = r.get("facts") or {}
        tests = f"{f['n_tests_passed']}/{f['n_tests']}" if "n_tests" in f else "—"
        out.append(f"{r['spec']:22} {tests:>11} {t.get('functions', '—'):>5} {t.get('hollowed', '—'):>6} {t.get('valid', '—'):>5} "
                   f"{pct(r.get('oracle')):>6} {pct(r.get('null')):>5} {r.get('wall_s', 0):7.0f}  {suite}")
    out.append("")
    for r in rows:
        t, s = r.get("tasks") or {}, r.get("suite") or {}
        notes = [f"  exclusions: " + "; ".join(f"{k} {v}" for k, v in t.get("by_reason", {}).items())] if t else []
        if s and not s["passes"]:
            notes.append(f"  suite: {s['summary']} | {s['why']}")
        notes += [f"  lost: {v}" for v in (r.get("lost_examples") or {}).values()]
        if r.get("error"):
            notes.append(f"  error: {r['error']}" + (f" | {r['error_detail']}" if r.get("error_detail") else "")
                         + (f" | last log: {r['last_log']}" if r.get("last_log") else ""))
        if notes:
            out += [r["spec"], *notes]
    return "\n".join(out)


def summarize_corpus(rows: list[dict]) -> str:
    passing = [r for r in rows if (r.get("suite") or {}).get("passes")]
    apart = [r for r in rows if r.get("suite") and r not in passing]
    unknown = [r for r in rows if not r.get("suite")]
    with_valid = [r for r in passing if (r.get("tasks") or {}).get("valid", 0) > 0]
    exact = [r for r in with_valid if r.get("oracle") == 1.0 and r.get("null") == 0.0]
    hollowed = sum((r.get("tasks") or {}).get("hollowed", 0) for r in passing)
    valid = sum((r.get("tasks") or {}).get("valid", 0) for r in passing)
    lines = [
        f"packages: {len(rows)}; own suite passes: {len(passing)}; counted apart, suite fails: {len(apart)} "
        f"({', '.join(r['spec'] for r in apart) or 'none'}); stopped before the plain suite: {len(unknown)} "
        f"({', '.join(r['spec'] for r in unknown) or 'none'})",
        f"packages (suite passes) with >=1 valid task: {len(with_valid)}/{len(passing)}"
        f" = {pct(len(with_valid) / len(passing) if passing else None)}",
        f"oracle 100 % and null 0 % on every one of them: "
        f"{'—' if not with_valid else 'yes' if len(exact) == len(with_valid) else 'no'} "
        f"({len(exact)}/{len(with_valid)}"
        + (f"; not: {', '.join(r['spec'] for r in with_valid if r not in exact)})" if len(exact) != len(with_valid) else ")"),
        f"valid/hollowed overall (suite passes): {valid}/{hollowed} = {pct(valid / hollowed if hollowed else None)}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--only", default="", help="comma-separated names (or NAME==VER) to run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0, help="wall seconds per package")
    ap.add_argument("--tasks", type=int, default=None)
    ap.add_argument("--render", type=Path, default=None, help="print the table of an earlier --json file")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        save = lambda r: args.result.write_text(json.dumps(r, indent=1, default=str))  # noqa: E731
        row = run_one(args.one, args.home, args.workers, args.tasks, save)
        save(row)
        return
    if args.render:
        rows = json.loads(args.render.read_text())
        print(render(rows) + "\n\n" + summarize_corpus(rows))
        return
    args.home = (args.home or Path(tempfile.mkdtemp(prefix="regrow-corpus-"))).resolve()
    logs = args.home / "corpus-logs"
    logs.mkdir(parents=True, exist_ok=True)
    wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    specs = [s for s in CORPUS if not wanted or s.lower() in wanted or s.split("==")[0].lower() in wanted]
    print(f"home {args.home}; {len(specs)} packages; logs in {logs}", flush=True)
    rows = []
    for spec in specs:
        row = run_isolated(spec, args, logs)
        rows.append(row)
        t = row.get("tasks") or {}
        print(f"{spec}: {t.get('valid', '—')}/{t.get('hollowed', '—')} valid, oracle {pct(row.get('oracle'))}, "
              f"null {pct(row.get('null'))}, {row.get('wall_s', 0):.0f}s"
              + (f", error: {row['error']}" if row.get("error") else ""), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
    print("\n" + render(rows) + "\n\n" + summarize_corpus(rows))


if __name__ == "__main__":
    main()
