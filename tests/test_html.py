"""The HTML pages in a real browser (headless Chromium from the system packages, driven by
Playwright): no console errors, tables sort, a row opens its diff, injected markup stays text.

Chromium is a requirement of this test, not an option: `make browser` installs it. A machine
without it fails here loudly instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from _repos import make_repo
from conftest import CALC_FILES, CALC_VALID
from regrow.api import open_store, run
from regrow.config import RunConfig
from regrow.report.html import compare_page, run_page

CHROMIUM = os.environ.get("REGROW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Markup planted in a docstring, a test name and a completion: each would set window.pwned if it ran.
DOC_XSS = "<script>window.pwned='docstring'</script><img src=x onerror=\"window.pwned='doc-img'\">"
TEST_XSS = "<img src=x onerror=window.pwned=1>"
COMPLETION_XSS = "</pre></td></tr></table><script>window.pwned='completion'</script>"
FAIL_XSS = "<script>window.pwned='feedback'</script>"

FILES = dict(CALC_FILES)
FILES["calc/ops.py"] = CALC_FILES["calc/ops.py"].replace('"""Add two numbers."""', f'"""Add two numbers. {DOC_XSS}"""')
FILES["tests/test_ops.py"] = CALC_FILES["tests/test_ops.py"].replace(
    "from calc import add", "import pytest\n        from calc import add", 1) + f'''

        @pytest.mark.parametrize("a", [1], ids=["{TEST_XSS}"])
        def test_add_marked(a):
            assert add(a, 1) == a + 1
'''
SCRIPT = {"format": "regrow-script/1", "answers": {
    "calc.ops:add": [f"```python\nresult = a + b  # {COMPLETION_XSS}\nreturn result\n```"],
    "calc.ops:clamp": [f"```python\nreturn \"{FAIL_XSS}\"\n```", "I do not know."],
    "*": [f"```python\nreturn \"{FAIL_XSS}\"\n```", "```python\nreturn None\n```"],
}}


def _chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make install` (it is in the dev extra)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    base = tmp_path_factory.mktemp("html")
    root = make_repo(base / "calc", FILES)
    script = base / "script.json"
    script.write_text(json.dumps(SCRIPT), encoding="utf-8")

    def cfg(**kw):
        return RunConfig(home=base / "home", python=Path(sys.executable), workers=2, timeout=30, **kw)

    ids = [run(str(root), cfg(solver="oracle")), run(str(root), cfg(solver="null")),
           run(str(root), cfg(solver=f"scripted:{script}", turns=2))]
    store = open_store(cfg())
    run_html, compare_html = base / "run.html", base / "compare.html"
    run_html.write_text(run_page(store, ids[2]), encoding="utf-8")
    compare_html.write_text(compare_page(store, ids), encoding="utf-8")
    return run_html, compare_html, ids


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def _open(browser, path: Path, **context):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900}, **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors


def _column(page, n: int) -> list[float | None]:
    values = page.eval_on_selector_all(f"table.tasks > tbody.task > tr.main > td:nth-child({n})",
                                       "cells => cells.map(c => c.dataset.v)")
    return [float(v) if v else None for v in values]


def _nothing_ran(page) -> None:
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("document.scripts.length") == 1  # the page's own script, nothing planted
    assert page.evaluate("document.querySelectorAll('[onerror], img').length") == 0


def test_run_page_sorts_opens_rows_and_keeps_planted_markup_as_text(pages, browser, tmp_path):
    run_html, _, _ = pages
    text = run_html.read_text(encoding="utf-8")
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    page, errors = _open(browser, run_html)
    _nothing_ran(page)
    body = page.text_content("body")
    for planted in (COMPLETION_XSS, FAIL_XSS, DOC_XSS, TEST_XSS):
        assert planted in body  # shown as text: the diff, the feedback, the docstring, the covering tests

    tasks = page.locator("table.tasks > tbody.task")
    assert tasks.count() == len(CALC_VALID)
    header = page.locator("table.tasks > thead th", has_text="similarity")
    header.click()
    sims = _column(page, 6)
    known = [v for v in sims if v is not None]
    assert len(set(known)) > 1 and None in sims  # clamp's last turn was malformed: no similarity
    assert sims == sorted(known) + [None] * sims.count(None)  # unknown values sort last either way
    header.click()
    assert _column(page, 6) == sorted(known, reverse=True) + [None] * sims.count(None)
    page.locator("table.tasks > thead th", has_text="task").first.click()
    names = page.eval_on_selector_all("table.tasks > tbody.task > tr.main > td:first-child",
                                      "cells => cells.map(c => c.textContent.trim())")
    assert names == sorted(names, key=str.lower)

    add = page.locator("table.tasks > tbody.task", has_text="calc.ops:add")
    detail = add.locator("tr.detail")
    assert not detail.is_visible()
    add.locator("tr.main").click()
    assert detail.is_visible()
    diff = detail.locator("table.diff").first
    assert diff.is_visible()
    assert "result = a + b" in diff.inner_text() and COMPLETION_XSS in diff.text_content()
    assert detail.locator(".badge", has_text="solved").count() >= 1
    clamp = page.locator("table.tasks > tbody.task", has_text="calc.ops:clamp")
    clamp.locator("tr.main").click()
    clamp_detail = clamp.locator("tr.detail")
    assert clamp_detail.locator("section.turn").count() == 2  # both turns, each with its feedback
    assert FAIL_XSS in clamp_detail.locator("pre.feedback").first.text_content()
    assert "could not be used" in clamp_detail.inner_text() or "no usable body" in clamp_detail.inner_text()
    assert page.locator("svg.chart").count() >= 4
    _nothing_ran(page)
    shot = tmp_path / "run.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []


def test_run_page_reads_without_javascript(pages, browser):
    run_html, _, _ = pages
    page, errors = _open(browser, run_html, java_script_enabled=False)
    assert page.locator("table.tasks tr.detail").first.is_visible()  # every row shown open
    assert page.locator("table.tasks tr.detail table.diff").count() > 0
    assert errors == []


def test_compare_page_has_the_experiment_table_matrix_and_scatter(pages, browser, tmp_path):
    _, compare_html, ids = pages
    page, errors = _open(browser, compare_html)
    _nothing_ran(page)
    assert page.locator("table.runs > tbody > tr").count() == 3
    solvers = page.eval_on_selector_all("table.runs > tbody > tr > td:nth-child(2)", "c => c.map(x => x.textContent)")
    assert solvers[:2] == ["oracle", "null"] and solvers[2].startswith("scripted:")
    marks = page.eval_on_selector_all("table.matrix > tbody > tr", "rows => rows.map(r => "
                                      "Array.from(r.cells).map(c => c.textContent.trim()))")
    assert {m[0] for m in marks} == CALC_VALID
    assert all(m[1] == "✓" and m[2] == "✗" for m in marks)
    assert {m[0] for m in marks if m[3] == "✓"} == {"calc.ops:add"}
    page.locator("table.matrix > thead th").nth(3).click()  # by the scripted run: its one solved task first
    first = page.locator("table.matrix > tbody > tr").first.locator("td").first.text_content()
    assert first == "calc.ops:add"
    assert page.locator("svg.chart circle").count() == 3 * len(CALC_VALID) - 1  # less clamp's malformed last turn
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert errors == []


def test_strength_shows_when_measured_and_a_dash_otherwise():
    from types import SimpleNamespace
    from regrow.report.html import strength
    assert strength(SimpleNamespace(extra={"strength": {"strength": 0.75, "killed": 3}})) == 0.75
    assert strength(SimpleNamespace(extra={})) is None and strength(None) is None
    assert strength(SimpleNamespace(extra={"strength": {"strength": None}})) is None
