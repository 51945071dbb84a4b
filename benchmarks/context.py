"""Benchmark of the context engine: what a hidden body needs, found or not, beside aider's repo map.

Quality, per package (``SPEC``: a directory or pypi:NAME==VER; grok runs its test suite once):

* targets: functions hollow would make tasks of (eligible, covered by a passing test) whose
  original body uses a repository definition *in another file* according to the gold resolver
  (``--any-gold``: any definition); ``--tasks`` of them, chosen by a seeded hash of the qualname;
* gold (``--gold jedi``, the default): every name and attribute loaded in the *original* body
  resolved by jedi (``Script.goto(follow_imports=True)``), an independent static resolver that
  shares nothing with `regrow.grok.graph`; kept when it lands on a repository definition
  (function, method, class, module constant, class attribute; test code, the target itself and
  what is nested in it left out). ``--gold regrow`` uses regrow's own resolver instead (the
  figure docs/context.md reported before issue 14; it flatters the engine, which ranks with
  the same resolver);
* cross-file EDR@B: the share of the gold definitions in *other* files present in the pack of
  budget B (mean over targets that have any); ``fn`` the same for functions and methods only;
  in-file EDR@B: the same for gold in the target's own file; file recall@B: the share of the
  gold's other files that the pack shows anything of;
* own@B: the share of the pack's tokens spent on the target's own file;
* aider@B (``--aider-python PY``): aider's RepoMap in its own interpreter, the same targets, the
  target's file in the chat with the body erased, ``mentioned_idents`` from the target's name,
  class, signature and docstring, ``map_tokens=B`` counted with the same tokenizer, the map cut
  at B tokens by whole lines; a definition is present when its ``def``/``class``/assignment line
  is in the map under its file. aider's chat file (the whole target file) is outside B.

Speed, on one larger source (``--speed SPEC``): cold static grok (symbols + graph) into an
empty store, engine load, warm context query (median of ``--queries`` targets at 4k), an
incremental static re-grok after one file changed, peak RSS of the process.

    python benchmarks/context.py pypi:marshmallow==3.23.1 pypi:tomlkit==0.13.2 ... \
        --aider-python /tmp/aider-venv/bin/python --tasks 40 --speed pypi:NAME==VER
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from regrow.config import resolve_config
from regrow.context.engine import ContextEngine, build_context, ranking_summary
from regrow.errors import RegrowError
from regrow.grok.graph import is_test_definition
from regrow.grok.build import grok_static_part
from regrow.tasks.hollow import HollowConfig, eligibility
from regrow.api import Hooks, prepare
from regrow.source.resolve import resolve_source
from regrow.store import Store
from regrow.context.tokenizers import get_tokenizer

BUDGETS = (1000, 4000, 16000)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------- gold sets


def regrow_gold(engine: ContextEngine, qualname: str) -> set[str]:
    g = engine.graph
    return {q for q in g.uses(qualname) if not is_test_definition(g.defs[q])}


class JediGold:
    """The repository definitions a body's names resolve to, according to jedi."""

    def __init__(self, engine: ContextEngine, import_roots: tuple[str, ...]):
        import jedi

        self.jedi = jedi
        self.engine = engine
        self.root = Path(engine.root).resolve()
        # The source's import roots first and no site-packages: a copy of the same package
        # installed in this interpreter must not be where its names resolve.
        stdlib = [p for p in sys.path if p and "site-packages" not in p and "dist-packages" not in p]
        self.project = jedi.Project(path=str(self.root), smart_sys_path=False,
                                    sys_path=[str(self.root / r) for r in import_roots or (".",)] + stdlib)
        self.by_line: dict[tuple[str, int], list[str]] = {}
        for q, d in engine.graph.defs.items():
            self.by_line.setdefault((d.path, self._name_line(d)), []).append(q)

    def _name_line(self, d) -> int:
        sym = self.engine.index.symbols.get(d.qualname)
        if sym is not None:
            return sym.def_line
        if d.kind == "class":
            lines = self.engine.lines(d.path)
            for n in range(d.line, min(len(lines), d.line + 40) + 1):
                if lines[n - 1].lstrip().startswith("class "):
                    return n
        return d.line

    def __call__(self, qualname: str) -> set[str]:
        sym = self.engine.index.symbols[qualname]
        path = self.root / sym.path
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        node = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.lineno == sym.def_line), None)
        if node is None:
            return set()
        positions: dict[str, tuple[int, int]] = {}
        for stmt in node.body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                    positions.setdefault(n.id, (n.lineno, n.col_offset))
                elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and n.end_lineno == n.lineno:
                    key = ast.unparse(n)
                    positions.setdefault(key, (n.end_lineno, n.end_col_offset - len(n.attr)))
        script = self.jedi.Script(text, path=str(path), project=self.project)
        found: set[str] = set()
        for line, col in sorted(set(positions.values())):
            try:
                names = script.goto(line, col, follow_imports=True)
            except Exception:  # jedi gives up on some constructs; the name is then not gold
                continue
            for name in names:
                if name.module_path is None or name.line is None:
                    continue
                try:
                    rel = Path(name.module_path).resolve().relative_to(self.root).as_posix()
                except ValueError:
                    continue  # outside the repository
                for q in self.by_line.get((rel, name.line), ()):
                    if q.rsplit(".", 1)[-1].rsplit(":", 1)[-1] == name.name:
                        found.add(q)
        g = self.engine.graph
        return {q for q in found if q != qualname and not q.startswith(qualname + ".")
                and not is_test_definition(g.defs[q])}


def targets(engine: ContextEngine, gold, n: int, seed: int, cross: bool = True) -> list[tuple[str, set[str]]]:
    """Up to ``n`` task targets (seeded hash order) whose gold set is not empty; with ``cross``,
    whose gold set has a definition in another file (what this benchmark is about)."""
    cfg = HollowConfig()
    pool = [s.qualname for s in engine.index.symbols.values()
            if eligibility(s, cfg) is None and engine.index.covering(s.qualname)]
    pool.sort(key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    out = []
    for q in pool:
        gs = gold(q)
        path = engine.index.symbols[q].path
        if gs and (not cross or any(engine.graph.defs[g].path != path for g in gs)):
            out.append((q, gs))
            if len(out) >= n:
                break
    return out


# --------------------------------------------------------------------------- aider's repo map

_AIDER_CLIENT = textwrap.dedent('''
    import json, sys
    proto_out = sys.stdout
    sys.stdout = sys.stderr  # aider's own prints never reach the protocol
    from aider.repomap import RepoMap

    def ask(msg):
        proto_out.write(json.dumps(msg) + "\\n"); proto_out.flush()
        return json.loads(sys.stdin.readline())

    class Model:  # token counts come from the benchmark process: the same tokenizer as regrow
        def token_count(self, text):
            return ask({"op": "count", "text": text})["n"]

    class IO:
        def read_text(self, fname):
            try:
                with open(fname, encoding="utf-8") as f:
                    return f.read()
            except (OSError, UnicodeDecodeError):
                return None
        def tool_output(self, *a, **k): pass
        def tool_warning(self, *a, **k): pass
        def tool_error(self, *a, **k): pass

    root = sys.argv[1]
    maps = {}
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        req = json.loads(line)
        rm = maps.get(req["tokens"])
        if rm is None:
            rm = maps[req["tokens"]] = RepoMap(map_tokens=req["tokens"], root=root, main_model=Model(), io=IO(),
                                               refresh="always")
        text = rm.get_repo_map(req["chat"], req["other"], mentioned_idents=set(req["idents"])) or ""
        proto_out.write(json.dumps({"op": "map", "text": text}) + "\\n"); proto_out.flush()
''')


class AiderMap:
    """aider's RepoMap over a copy of the repository, driven line by line from this process."""

    def __init__(self, python: str, root: Path, tok):
        self.tok = tok
        self.work = Path(tempfile.mkdtemp(prefix="regrow-aider-"))
        self.root = self.work / "repo"
        shutil.copytree(root, self.root, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", ".tox"))
        (self.work / "client.py").write_text(_AIDER_CLIENT)
        self.files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.py") if p.is_file())
        self.proc = subprocess.Popen([python, str(self.work / "client.py"), str(self.root)], cwd=self.root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)

    def repo_map(self, sym, budget: int, idents: set[str]) -> str:
        path = self.root / sym.path
        original = path.read_text(encoding="utf-8")
        lines = original.splitlines(keepends=True)
        indent = re.match(r"\s*", lines[sym.body_start - 1]).group(0) if sym.body_start <= len(lines) else "    "
        erased = lines[: sym.body_start - 1] + [f"{indent}...\n"] + lines[sym.end:]
        path.write_text("".join(erased), encoding="utf-8")
        try:
            other = [str(self.root / f) for f in self.files if f != sym.path]
            self.proc.stdin.write(json.dumps({"tokens": budget, "chat": [str(path)], "other": other,
                                              "idents": sorted(idents)}) + "\n")
            self.proc.stdin.flush()
            while True:
                msg = json.loads(self.proc.stdout.readline())
                if msg["op"] == "count":
                    self.proc.stdin.write(json.dumps({"n": self.tok.count(msg["text"])}) + "\n")
                    self.proc.stdin.flush()
                else:
                    break
        finally:
            path.write_text(original, encoding="utf-8")
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # aider's caches key on mtime
        text = msg["text"]
        if self.tok.count(text) > budget:  # cut at B, by whole lines
            kept = text.splitlines(keepends=True)
            lo, hi = 0, len(kept)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.tok.count("".join(kept[:mid])) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            text = "".join(kept[:lo])
        return text

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.work, ignore_errors=True)


def map_sections(text: str, files: set[str]) -> dict[str, set[str]]:
    """file -> the stripped source lines aider's map shows of it."""
    out: dict[str, set[str]] = {}
    cur = None
    for line in text.splitlines():
        head = line.rstrip(":")
        if head in files and not line.startswith(("│", "⋮")):
            cur = out.setdefault(head, set())
            continue
        if cur is not None and line.startswith("│"):
            cur.add(line[1:].strip())
    return out


def _def_line_text(engine: ContextEngine, gold: JediGold, q: str) -> str:
    d = engine.graph.defs[q]
    lines = engine.lines(d.path)
    n = gold._name_line(d) if isinstance(gold, JediGold) else d.line
    return lines[n - 1].strip()[:60] if 0 < n <= len(lines) else ""


# --------------------------------------------------------------------------- measures


def _shares(found: set[str], wanted: set[str]) -> float | None:
    return len(found & wanted) / len(wanted) if wanted else None


def measure(engine: ContextEngine, q: str, gs: set[str], budget: int, tok) -> dict:
    sym = engine.index.symbols[q]
    pack = build_context(engine, q, budget=budget, tokenizer=tok, mode="task")
    assert pack.tokens <= budget, (q, budget, pack.tokens)
    defs = engine.graph.defs
    cross = {g for g in gs if defs[g].path != sym.path}
    infile = gs - cross
    fns = {g for g in cross if defs[g].kind in ("function", "method")}
    shown = pack.covered
    files = {i.path for i in pack.items if i.form != "facts"}
    item_tokens = sum(i.tokens for i in pack.items) or 1
    return {"cross": _shares(shown, cross), "fn": _shares(shown, fns), "in": _shares(shown, infile),
            "files": _shares(files, {defs[g].path for g in cross}),
            "own": sum(i.tokens for i in pack.items if i.path == sym.path) / item_tokens}


def measure_aider(engine: ContextEngine, aider: AiderMap, gold, q: str, gs: set[str], budget: int) -> dict:
    sym = engine.index.symbols[q]
    idents = set(_IDENT.findall(f"{sym.name} {sym.class_name or ''} {sym.signature} {sym.docstring or ''}"))
    text = aider.repo_map(sym, budget, idents)
    sections = map_sections(text, set(aider.files))
    defs = engine.graph.defs
    cross = {g for g in gs if defs[g].path != sym.path}
    fns = {g for g in cross if defs[g].kind in ("function", "method")}
    shown = set()
    for g in cross:
        want = _def_line_text(engine, gold, g)
        if want and any(line[:60] == want or (len(line) >= 20 and want.startswith(line[:60]))
                        for line in sections.get(defs[g].path, ())):
            shown.add(g)
    return {"cross": _shares(shown, cross), "fn": _shares(shown, fns),
            "files": _shares(set(sections), {defs[g].path for g in cross})}


def _mean(ms: list[dict], key: str) -> tuple[float, int]:
    vals = [m[key] for m in ms if m.get(key) is not None]
    return (statistics.mean(vals) if vals else float("nan")), len(vals)


def quality(spec: str, args, tok) -> dict:
    config = resolve_config({"home": args.home})
    prep = prepare(spec, config, Hooks(log=lambda m: print(f"  · {m}", file=sys.stderr)), validate=False)
    t0 = time.perf_counter()
    engine = ContextEngine.load(prep.store, prep.source.key, prep.source.root, prep.index)
    load_s = time.perf_counter() - t0
    hand = ContextEngine.load(prep.store, prep.source.key, prep.source.root, prep.index, learned=False) \
        if args.hand else None
    gold = JediGold(engine, prep.source.import_roots) if args.gold == "jedi" else \
        (lambda q: regrow_gold(engine, q))
    t0 = time.perf_counter()
    cache = Path(args.gold_cache) / f"{prep.source.name}-{prep.source.version}-{args.gold}-{args.tasks}-" \
        f"{args.seed}-{'any' if args.any_gold else 'cross'}.json" if args.gold_cache else None
    if cache is not None and cache.exists():  # the same targets and gold as a run before (jedi is slow)
        chosen = [(q, set(gs)) for q, gs in json.loads(cache.read_text())]
    else:
        chosen = targets(engine, gold, args.tasks, args.seed, cross=not args.any_gold)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps([(q, sorted(gs)) for q, gs in chosen]))
    gold_s = time.perf_counter() - t0
    row = {"source": f"{prep.source.name} {prep.source.version or ''}".strip(), "targets": len(chosen),
           "gold": statistics.mean(len(g) for _, g in chosen) if chosen else 0.0, "gold_s": gold_s,
           "load_s": load_s, "ranking": ranking_summary(engine)}
    # how much of the independent gold regrow's own resolver finds (cross-file)
    agree = [_shares(regrow_gold(engine, q), {g for g in gs if engine.graph.defs[g].path != engine.index.symbols[q].path})
             for q, gs in chosen]
    row["resolver_agrees"] = _mean([{"a": a} for a in agree], "a")[0]
    aider = AiderMap(args.aider_python, Path(prep.source.root), tok) if args.aider_python else None
    row["per_target"] = {}
    try:
        for b in BUDGETS:
            t0 = time.perf_counter()
            ms = [measure(engine, q, gs, b, tok) for q, gs in chosen]
            row[f"query_s@{b}"] = (time.perf_counter() - t0) / max(1, len(chosen))
            for k in ("cross", "fn", "in", "files", "own"):
                row[f"{k}@{b}"], row[f"n_{k}"] = _mean(ms, k)
            row["per_target"][b] = ms
            if hand is not None:
                hm = [measure(hand, q, gs, b, tok) for q, gs in chosen]
                for k in ("cross", "fn", "in"):
                    row[f"hand_{k}@{b}"], _ = _mean(hm, k)
                row["per_target"][f"hand{b}"] = hm
            if aider is not None:
                am = [measure_aider(engine, aider, gold, q, gs, b) for q, gs in chosen]
                for k in ("cross", "fn", "files"):
                    row[f"aider_{k}@{b}"], _ = _mean(am, k)
                row["per_target"][f"aider{b}"] = am
    finally:
        if aider is not None:
            aider.close()
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


def _fmt(v) -> str:
    return str(v) if isinstance(v, (str, int)) else ("—" if v != v else f"{v:.2f}")


def _pooled(rows: list[dict], key: str, b: int) -> float:
    """Mean over every target of every package (targets without that kind of gold left out)."""
    kind, _, who = key.partition(":")
    vals = [m[kind] for r in rows for m in r["per_target"].get(f"{who}{b}" if who else b, [])
            if m.get(kind) is not None]
    return statistics.mean(vals) if vals else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", help="sources for the quality part")
    ap.add_argument("--speed", help="a large source for the speed part")
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default="smollm2")
    ap.add_argument("--gold", choices=("jedi", "regrow"), default="jedi")
    ap.add_argument("--any-gold", action="store_true",
                    help="targets with any gold (default: only those with a gold definition in another file)")
    ap.add_argument("--aider-python", help="an interpreter with aider-chat installed: its repo map side by side")
    ap.add_argument("--json", help="write every row (per-target figures included) here")
    ap.add_argument("--hand", action="store_true", help="also rank with the hand weights (an ablation of the learning)")
    ap.add_argument("--home", default="/tmp/regrow-bench")
    ap.add_argument("--gold-cache", help="a folder: each source's targets and gold are kept there and read back")
    args = ap.parse_args(argv)
    tok = get_tokenizer(args.tokenizer)
    rows = []
    for spec in args.specs:
        try:
            rows.append(quality(spec, args, tok))
        except RegrowError as exc:  # e.g. an sdist without its tests
            print(f"skipping {spec}: {str(exc).splitlines()[0]}", file=sys.stderr)
    if rows:
        print(f"\nquality (task mode, gold {args.gold}, tokenizer {tok.name}; budgets in tokens)")
        cols = ["source", "targets", "gold", "resolver_agrees"]
        print("| " + " | ".join(cols) + " | query s@4k |")
        print("|" + "---|" * (len(cols) + 1))
        for r in rows:
            print("| " + " | ".join(_fmt(r[c]) for c in cols) + f" | {r['query_s@4000']:.3f} |")
        kinds = [("cross", "cross-file EDR"), ("fn", "cross-file functions"), ("files", "file recall"),
                 ("in", "in-file EDR"), ("own", "own-file share")]
        for b in BUDGETS:
            print(f"\nB = {b}")
            head = ["source"] + [f"regrow {t}" + (f" | aider {t}" if args.aider_python and k in ("cross", "fn", "files")
                                                  else "") for k, t in kinds]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * sum(h.count("|") + 1 for h in head))
            for r in [*rows, None]:
                cells = [r["source"] if r else "**all targets**"]
                for k, _ in kinds:
                    cells.append(_fmt(r[f"{k}@{b}"] if r else _pooled(rows, k, b)))
                    if args.aider_python and k in ("cross", "fn", "files"):
                        cells.append(_fmt(r[f"aider_{k}@{b}"] if r else _pooled(rows, f"{k}:aider", b)))
                print("| " + " | ".join(cells) + " |")
        print("\nsummary (all targets pooled)")
        print("| budget | regrow cross-file EDR | aider | regrow cross-file functions | aider | "
              "regrow file recall | aider | regrow in-file EDR |")
        print("|---|---|---|---|---|---|---|---|")
        for b in BUDGETS:
            cells = [f"{b // 1000}k"]
            for k in ("cross", "fn", "files"):
                cells += [_fmt(_pooled(rows, k, b)),
                          _fmt(_pooled(rows, f"{k}:aider", b)) if args.aider_python else "—"]
            cells.append(_fmt(_pooled(rows, "in", b)))
            print("| " + " | ".join(cells) + " |")
        if args.hand:
            print("\nablation: hand weights (same packer, same targets), all targets pooled")
            print("| budget | learned cross-file EDR | hand | learned cross-file functions | hand | learned in-file | hand |")
            print("|---|---|---|---|---|---|---|")
            for b in BUDGETS:
                print(f"| {b // 1000}k | " + " | ".join(_fmt(_pooled(rows, f"{k}:{w}", b)) for k in ("cross", "fn", "in")
                                                       for w in ("", "hand")) + " |")
        print("\nlearned weights (mean over the folds that learned; other files' candidates)")
        for r in rows:
            rk = r["ranking"]
            print(f"- {r['source']}: {rk.get('learned_folds', 0)} of {rk.get('folds', 0)} folds learned from "
                  f"{rk.get('examples', 0)} examples (engine load with fitting {r['load_s']:.1f} s), own share "
                  f"{rk.get('own_share', '—')}: " + ", ".join(f"{k} {v}" for k, v in rk["weights"].items()))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if args.speed:
        s = speed(args.speed, args, tok)
        print(f"\nspeed (tokenizer {tok.name})")
        for k, v in s.items():
            print(f"| {k} | {_fmt(v)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
