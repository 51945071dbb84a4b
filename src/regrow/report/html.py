"""Self-contained HTML pages: one run (`run_page`) and several side by side (`compare_page`).

One file each, readable offline and without JavaScript: the figures come from `build_report`,
the charts are inline SVG (`regrow.report.svg`), every table is plain HTML. The one inline
script only sorts tables and opens a task's row; a Content-Security-Policy allows that script
alone (by its hash), and every text from a repository, a model or a test is escaped anyway.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
from dataclasses import dataclass
from html import escape

from regrow.core.attempt import Attempt
from regrow.core.task import Task
from regrow.report import svg
from regrow.report.page_assets import CSS, SCRIPT
from regrow.report.runs import RunReport, build_report
from regrow.store import Store
from regrow.store.runs import attempt_rows, run_row
from regrow.tasks.build import load_tasks
from regrow.tasks.hollow import HollowConfig

RANK = {"solved": 0, "failed": 1, "timeout": 2, "crashed": 3, "malformed": 4}  # best verdict first
DASH = "—"


@dataclass(frozen=True)
class Turn:
    sample: int
    turn: int
    status: str
    attempt: Attempt
    verdict: dict

    @property
    def tests_fraction(self) -> float:
        total = self.verdict.get("tests_total") or 0
        return (self.verdict.get("tests_passed") or 0) / total if total else 0.0


@dataclass
class RunData:
    report: RunReport
    tasks: dict[str, Task]  # every hollowed task of the run's source, by id
    chains: dict[str, dict[int, list[Turn]]]  # task id -> sample -> turns in order

    def shown(self, task_id: str) -> tuple[list[Turn], Turn] | None:
        """The chain and attempt a task's row stands for: the first solved one, else sample 0's last."""
        samples = self.chains.get(task_id)
        if not samples:
            return None
        for s in sorted(samples):
            for t in samples[s]:
                if t.status == "solved":
                    return samples[s], t
        first = samples[min(samples)]
        return first, first[-1]

    def best(self, task_id: str) -> str | None:
        turns = [t for ch in self.chains.get(task_id, {}).values() for t in ch]
        return min((t.status for t in turns), key=lambda s: RANK.get(s, 9)) if turns else None

    def finals(self) -> list[tuple[str, Turn]]:
        return [(task_id, ch[-1]) for task_id, samples in self.chains.items() for ch in samples.values()]


def load_run(store: Store, run_id: str) -> RunData:
    rep = build_report(store, run_id)  # raises UnknownRunError for an unknown id
    run = run_row(store, run_id)
    config = json.loads(run["config"])
    hollow_key = HollowConfig(min_statements=int(config.get("min_statements", 2))).key()
    tasks, _ = load_tasks(store, run["source_key"], hollow_key)
    chains: dict[str, dict[int, list[Turn]]] = {}
    for r in attempt_rows(store, run_id):
        turn = Turn(r["sample"], r["turn"], r["status"], Attempt.from_json(r["attempt"]), json.loads(r["verdict"]))
        chains.setdefault(r["task_id"], {}).setdefault(r["sample"], []).append(turn)
    return RunData(rep, {t.task_id: t for t in tasks}, chains)


# ------------------------------------------------------------------ formatting

def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def pct(x) -> str:
    return DASH if x is None else f"{100 * x:.1f}%"


def num(x, digits: int = 0) -> str:
    return DASH if x is None else f"{x:,.{digits}f}"


def strength(task: Task | None):
    value = (task.extra.get("strength") or {}).get("strength") if task is not None else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def badge(status: str | None) -> str:
    if status is None:
        return f'<span class="badge none">{DASH}</span>'
    return f'<span class="badge" style="background:{svg.status_color(status)}">{escape(status)}</span>'


def page(title: str, body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f'<link rel="icon" href="data:,"><title>{escape(title)}</title>'
            f'<style>{CSS}</style><script>{SCRIPT}</script></head>\n<body>{body}</body></html>\n')


def cards(items: list[tuple[str, str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{escape(value)}</div>'
        f'<div class="sub">{escape(sub)}</div></div>' for label, value, sub in items) + "</div>"


def figure(caption: str, chart: str) -> str:
    return f'<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>'


# ------------------------------------------------------------------ the diff

def _intraline(a: str, b: str) -> tuple[str, str]:
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(escape(a[i1:i2]))
            right.append(escape(b[j1:j2]))
        else:
            if i2 > i1:
                left.append(f"<del>{escape(a[i1:i2])}</del>")
            if j2 > j1:
                right.append(f"<ins>{escape(b[j1:j2])}</ins>")
    return "".join(left), "".join(right)


def side_by_side(original: str, regrown: str) -> str:
    """The original body (left) beside the regrown one (right), line by line, escaped."""
    a, b = original.rstrip("\n").splitlines(), regrown.rstrip("\n").splitlines()
    rows = []

    def row(i, left, j, right, kind_l, kind_r):
        rows.append(f'<tr><td class="ln">{i or ""}</td><td class="code {kind_l}">{left}</td>'
                    f'<td class="ln">{j or ""}</td><td class="code {kind_r}">{right}</td></tr>')

    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                row(i1 + k + 1, escape(a[i1 + k]), j1 + k + 1, escape(b[j1 + k]), "", "")
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            left = a[i1 + k] if i1 + k < i2 else None
            right = b[j1 + k] if j1 + k < j2 else None
            if left is not None and right is not None:
                l_html, r_html = _intraline(left, right)
                row(i1 + k + 1, l_html, j1 + k + 1, r_html, "del", "ins")
            elif left is not None:
                row(i1 + k + 1, escape(left), None, "", "del", "empty")
            else:
                row(None, "", j1 + k + 1, escape(right), "empty", "ins")
    same = ' <span class="same">identical</span>' if a == b else ""
    return (f'<table class="diff"><thead><tr><th colspan="2">original{same}</th><th colspan="2">regrown</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>')


# ------------------------------------------------------------------ the run page

def _turn_html(task: Task | None, t: Turn) -> str:
    v, a = t.verdict, t.attempt
    head = (f'<div class="turnhead">turn {t.turn + 1} {badge(t.status)} '
            f'<span>tests {v.get("tests_passed") or 0}/{v.get("tests_total") or 0}</span>'
            f'<span>similarity {pct(v.get("func_similarity"))}</span>'
            f'<span>verify {num((v.get("duration") or 0) * 1000)} ms</span>'
            + (f'<span>flags {escape(", ".join(v.get("flags") or []))}</span>' if v.get("flags") else "")
            + "</div>")
    parts = [head]
    if a.body is not None and task is not None:
        parts.append(side_by_side(task.reference_body, a.body))
    elif a.body is not None:
        parts.append(f'<pre class="code">{escape(a.body)}</pre>')
    else:
        parts.append('<p class="note">no usable body</p>' if v.get("feedback") else
                     f'<p class="note">no usable body: {escape(a.malformed or "no code found")}</p>')
    if v.get("feedback"):
        parts.append(f'<div class="sub">feedback</div><pre class="feedback">{escape(v["feedback"])}</pre>')
    if a.context:
        parts.append(f'<details><summary>context items ({len(a.context):,} chars)</summary>'
                     f'<pre class="context">{escape(a.context)}</pre></details>')
    parts.append(f'<details><summary>raw completion</summary><pre class="context">{escape(a.completion)}</pre>'
                 f'</details>')
    return '<section class="turn">' + "".join(parts) + "</section>"


def _task_detail(data: RunData, task_id: str, task: Task | None) -> str:
    parts = []
    if task is not None:
        header = task.symbol.signature + (f'\n    """{task.symbol.docstring}"""' if task.symbol.docstring else "")
        parts.append(f'<div class="sub">{escape(task.path)}, lines {task.symbol.start}–{task.symbol.end}</div>'
                     f'<pre class="code sig">{escape(header)}</pre>')
        parts.append(f'<details><summary>{len(task.tests)} covering tests</summary><ul class="tests">'
                     + "".join(f"<li>{escape(test)}</li>" for test in task.tests) + "</ul></details>")
    for sample, turns in sorted(data.chains.get(task_id, {}).items()):
        if data.report.samples > 1:
            parts.append(f'<h4>sample {sample + 1}</h4>')
        parts.extend(_turn_html(task, t) for t in turns)
    return "".join(parts)


TASK_COLUMNS = ["task", "covering tests", "strength", "best verdict", "tests passed", "similarity", "turns"]


def _task_table(data: RunData) -> str:
    bodies = []
    for task_id in [p["task"] for p in data.report.per_task]:
        task = data.tasks.get(task_id)
        shown = data.shown(task_id)
        best = data.best(task_id)
        chain, turn = shown if shown else ([], None)
        sim = turn.verdict.get("func_similarity") if turn else None
        frac = turn.tests_fraction if turn else None
        st = strength(task)
        n_tests = len(task.tests) if task is not None else None
        cells = [
            (escape(task_id), f'<span class="caret"></span><code>{escape(task_id)}</code>'),
            ("" if n_tests is None else str(n_tests), num(n_tests)),
            ("" if st is None else repr(float(st)), DASH if st is None else f"{st:.2f}"),
            (str(RANK.get(best, 9)), badge(best)),
            ("" if frac is None else repr(frac), pct(frac)),
            ("" if sim is None else repr(sim), pct(sim)),
            (str(len(chain)), str(len(chain))),
        ]
        row = "".join(f'<td data-v="{v}">{h}</td>' for v, h in cells)
        bodies.append(f'<tbody class="task"><tr class="main">{row}</tr><tr class="detail">'
                      f'<td colspan="{len(TASK_COLUMNS)}">{_task_detail(data, task_id, task)}</td></tr></tbody>')
    head = "".join(f"<th>{escape(c)}</th>" for c in TASK_COLUMNS)
    return f'<table class="sortable tasks"><thead><tr>{head}</tr></thead>{"".join(bodies)}</table>'


def _header_cards(rep: RunReport) -> str:
    k_max = max(rep.pass_at) if rep.pass_at else 1
    verdicts = ", ".join(f"{s} {n}" for s, n in sorted(rep.statuses.items(), key=lambda kv: RANK.get(kv[0], 9)))
    return cards([
        ("pass@1", pct(rep.pass_at.get(1)), f"first turn only {pct(rep.pass_at_first_turn)}"),
        (f"pass@{k_max}", pct(rep.pass_at.get(k_max)), f"{rep.solved_tasks} of {rep.chosen} tasks solved"),
        ("tests passed", pct(rep.tests_passed), "mean share of covering tests, last attempt"),
        ("function error", pct(rep.func_error), f"similarity {pct(rep.func_similarity)}"),
        ("file error", pct(rep.file_error), f"similarity {pct(rep.file_similarity)}, {rep.files_scored} files"),
        ("verdicts", str(rep.attempts), verdicts or "no attempts"),
        ("verify ms", num(rep.verify_ms.get("median")),
         f"median; p90 {num(rep.verify_ms.get('p90'))}, max {num(rep.verify_ms.get('max'))}"),
        ("tokens", f"{rep.tokens_in + rep.tokens_out:,}", f"in {rep.tokens_in:,}, out {rep.tokens_out:,}; "
                                                           f"cost ${rep.cost:.4f}"),
    ])


def _funnel(rep: RunReport) -> str:
    t = rep.tasks
    chart = svg.funnel([("functions", t.get("functions", 0)), ("hollowed", t.get("hollowed", 0)),
                        ("valid", t.get("valid", 0)), ("in this run", rep.chosen)], title="task funnel")
    rows = "".join(f'<tr><td>{escape(reason)}</td><td data-v="{n}" class="num">{n}</td></tr>'
                   for reason, n in sorted(t.get("by_reason", {}).items(), key=lambda kv: -kv[1]))
    reasons = (f'<table class="sortable reasons"><thead><tr><th>excluded, by reason</th><th>functions</th></tr>'
               f'</thead><tbody>{rows}</tbody></table>') if rows else '<p class="note">nothing excluded</p>'
    rejected = t.get("rejected") or []
    if rejected:
        reasons += (f'<details><summary>{len(rejected)} hollowed but not valid</summary><ul class="tests">'
                    + "".join(f'<li><code>{escape(r["task_id"])}</code> {escape(r["status"])}: {escape(r["reason"])}'
                              f'</li>' for r in rejected) + "</ul></details>")
    return f'<div class="split">{figure("functions → hollowed → valid", chart)}<div>{reasons}</div></div>'


def run_page(store: Store, run_id: str) -> str:
    """The HTML page of one run (see the module docstring)."""
    data = load_run(store, run_id)
    rep = data.report
    by_turn: dict[int, dict[str, int]] = {}
    for samples in data.chains.values():
        for chain in samples.values():
            for t in chain:
                counts = by_turn.setdefault(t.turn, {})
                counts[t.status] = counts.get(t.status, 0) + 1
    sims = [t.verdict["func_similarity"] for _, t in data.finals() if t.verdict.get("func_similarity") is not None]
    charts = "".join([
        figure("pass@k over k", svg.line_chart(sorted(rep.pass_at.items()), title="pass@k", x_title="k")),
        figure("function similarity, last attempt of each chain",
               svg.histogram(sims, title="similarity distribution", x_title="similarity to the original")),
        figure("verdicts by turn", svg.stacked_bars([(f"turn {n + 1}", c) for n, c in sorted(by_turn.items())],
                                                    title="verdicts by turn", x_title="turn")),
    ])
    legend = '<div class="legend">' + "".join(
        f'<span><i style="background:{svg.status_color(s)}"></i>{s}</span>' for s in RANK) + "</div>"
    body = (f'<header><h1>regrow · run <code>{escape(rep.run_id)}</code></h1>'
            f'<p class="meta">source <code>{escape(rep.source)}</code> · solver <code>{escape(rep.solver)}</code> · '
            f'{_n(rep.samples, "sample")} × {_n(rep.turns, "turn")} · {_n(rep.chains, "chain")}, '
            f'{_n(rep.attempts, "attempt")} · '
            f'{"finished" if rep.finished else "not finished"}</p></header>'
            f'<main>{_header_cards(rep)}<h2>Tasks</h2>{_funnel(rep)}'
            f'<h2>Charts</h2><div class="charts">{charts}</div>{legend}'
            f'<h2>Per task</h2><p class="note">Click a header to sort, a row to open the regrown body beside the '
            f'original, each turn\'s feedback and the context it was given.</p>{_task_table(data)}</main>')
    return page(f"regrow run {rep.run_id}", body)


# ------------------------------------------------------------------ the comparison page

def compare_page(store: Store, run_ids: list[str]) -> str:
    """The HTML page putting runs side by side: figures, who solved what, similarity vs tests passed."""
    runs = [load_run(store, r) for r in run_ids]
    ks = sorted({k for d in runs for k in d.report.pass_at})
    cols = ["run", "solver", "tasks", *[f"pass@{k}" for k in ks], "tests passed", "func error", "func sim",
            "file error", "file sim", "verify ms"]
    rows = []
    for d in runs:
        r = d.report
        values = [(r.run_id, f"<code>{escape(r.run_id)}</code>"), (r.solver, escape(r.solver)),
                  (r.chosen, str(r.chosen)), *[(r.pass_at.get(k), pct(r.pass_at.get(k))) for k in ks],
                  (r.tests_passed, pct(r.tests_passed)), (r.func_error, pct(r.func_error)),
                  (r.func_similarity, pct(r.func_similarity)), (r.file_error, pct(r.file_error)),
                  (r.file_similarity, pct(r.file_similarity)), (r.verify_ms.get("median"),
                                                                num(r.verify_ms.get("median")))]
        rows.append("<tr>" + "".join(f'<td data-v="{escape("" if v is None else str(v))}">{h}</td>'
                                     for v, h in values) + "</tr>")
    summary = (f'<table class="sortable runs"><thead><tr>{"".join(f"<th>{escape(c)}</th>" for c in cols)}'
               f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    names = [f"{d.report.solver} ({d.report.run_id})" for d in runs]
    series = [(name, [(t.tests_fraction, t.verdict["func_similarity"], f"{name}: {task_id}")
                      for task_id, t in d.finals() if t.verdict.get("func_similarity") is not None])
              for name, d in zip(names, runs)]
    chart = svg.scatter(series, title="similarity vs tests passed", x_title="covering tests passed",
                        y_title="function similarity")
    task_ids = list(dict.fromkeys(t for d in runs for t in (p["task"] for p in d.report.per_task)))
    head = "<th>task</th>" + "".join(f'<th>{escape(d.report.solver)}<br><small>{escape(d.report.run_id)}</small>'
                                     f'</th>' for d in runs)
    matrix = []
    for task_id in task_ids:
        cells = []
        for d in runs:
            best = d.best(task_id)
            mark = {"solved": "✓", None: DASH}.get(best, "✗")
            title = escape(best or "not in this run")
            cells.append(f'<td data-v="{RANK.get(best, 9)}" class="mark {escape(best or "none")}" title="{title}">'
                         f'{mark}</td>')
        matrix.append(f'<tr><td data-v="{escape(task_id)}"><code>{escape(task_id)}</code></td>{"".join(cells)}</tr>')
    totals = "".join(f"<td>{d.report.solved_tasks}/{d.report.chosen}</td>" for d in runs)
    matrix_html = (f'<table class="sortable matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(matrix)}</tbody>'
                   f'<tfoot><tr><td>solved</td>{totals}</tr></tfoot></table>')
    sources = sorted({d.report.source for d in runs})
    body = (f'<header><h1>regrow · {len(runs)} runs side by side</h1><p class="meta">source '
            f'{", ".join(f"<code>{escape(s)}</code>" for s in sources)}</p></header>'
            f'<main><h2>Runs</h2>{summary}<h2>Similarity vs tests passed</h2>'
            f'<div class="split">{figure("last attempt of each chain", chart)}<div>{svg.legend(names)}'
            f'<p class="note">Each point is one chain\'s last attempt: how many of its covering tests passed '
            f'(x) and how close its text is to the original (y).</p></div></div>'
            f'<h2>Who solved what</h2>{matrix_html}</main>')
    return page("regrow compare " + " ".join(run_ids), body)
