"""grok: parse every module, map tests to functions, persist it all keyed by content.

A second grok of unchanged content reads the store and runs nothing.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

from regrow.grok import gitfacts
from regrow.grok import graph
from regrow.source.envs import Environment
from regrow.errors import NoTestsError
from regrow.core.index import Index
from regrow.grok.parse import is_test_path, parse_file
from regrow.grok.recorder import record_calls
from regrow.source.resolve import Source, iter_python_files
from regrow.store import Store
from regrow.store.gitfacts import save_git_facts
from regrow.store.index import copy_static, file_modules, file_statuses, load_index, save_static, save_testmap
from regrow.store.sources import add_source, previous_grok, update_facts
from regrow.source.suite import SuiteOptions, session_options, unusable_options
from regrow.grok.testmap import run_test_map

Log = Callable[[str], None]


def _upsert_source(store: Store, source: Source) -> dict:
    return add_source(store, source.key, spec=source.spec, name=source.name, version=source.version,
                      root=str(source.root), git_rev=source.git_rev,
                      facts={"import_roots": list(source.import_roots)})


def grok_static(source: Source) -> tuple[dict, dict, list]:
    """(file statuses, file modules, symbols) from parsing every Python file of ``source``."""
    files: dict[str, str] = {}
    modules: dict[str, str] = {}
    symbols = []
    for path in iter_python_files(source.root):
        rel = path.relative_to(source.root).as_posix()
        parsed = parse_file(source.root, rel, source.import_roots)
        files[rel] = parsed.error or "ok"
        modules[rel] = parsed.module
        symbols.extend(parsed.symbols)
    for rel, reason in source.skipped:
        if rel.endswith(".py"):
            files.setdefault(rel, reason)
    return files, modules, symbols


def _grok_changed_files(store: Store, source: Source, hashes: dict[str, str]) -> list[str] | None:
    """Incremental static grok: copy the last grok of the same directory, re-read changed files.

    Returns the changed files, or None when there is nothing to start from (or too much changed).
    """
    prev = previous_grok(store, str(source.root), source.key)
    old = prev[1].get("file_hashes") if prev else None
    if not old or not graph.has_graph(store, prev[0]) or prev[1].get("graph_version") != graph.GRAPH_VERSION:
        return None
    changed = sorted(p for p in set(old) | set(hashes) if old.get(p) != hashes.get(p))
    if len(changed) > max(20, len(hashes) // 10):
        return None
    prev_key, key = prev[0], source.key
    parsed = {rel: parse_file(source.root, rel, source.import_roots) for rel in changed if rel in hashes}
    old_modules = {p: m for p, m in file_modules(store, prev_key).items() if p in set(changed)}
    copy_static(store, key, prev_key, changed,
                {rel: (p.module, p.error or "ok", p.symbols) for rel, p in parsed.items()})
    graph.regrok_files(store, key, source.root,
                       {rel: (parsed[rel].module if rel in parsed and parsed[rel].error is None else None)
                        for rel in changed}, old_modules)
    return changed


def grok_static_part(store: Store, source: Source, row: dict | None = None, *, force: bool = False,
                     log: Log | None = None) -> None:
    """The static part of grok: symbols, the symbol graph and git facts; only changed files are
    re-read when an earlier grok of the same directory is in the store. A graph built by an
    older resolver (`graph.GRAPH_VERSION`) is built again on its own."""
    log = log or (lambda _msg: None)
    row = row or _upsert_source(store, source)
    if force or row["static_done"] is None:
        start = time.perf_counter()
        hashes = graph.file_hashes(source.root, (p.relative_to(source.root).as_posix()
                                                 for p in iter_python_files(source.root)))
        changed = None if force else _grok_changed_files(store, source, hashes)
        if changed is None:
            files, modules, symbols = grok_static(source)
            save_static(store, source.key, files, modules, symbols)
            graph.grok_graph(store, source.key, source.root, {p: m for p, m in modules.items() if files[p] == "ok"})
            skipped = sum(1 for s in files.values() if s != "ok")
            log(f"parsed {len(files)} files ({skipped} skipped), {len(symbols)} functions")
        else:
            files = file_statuses(store, source.key)
            skipped = sum(1 for s in files.values() if s != "ok")
            log(f"re-parsed {len(changed)} changed files")
        if source.git_rev:
            save_git_facts(store, source.key, gitfacts.collect(source.root))
        update_facts(store, source.key, "static_done", static_seconds=time.perf_counter() - start,
                      n_files=len(files), n_skipped_files=skipped, file_hashes=hashes,
                      static_changed_files=None if changed is None else len(changed),
                      graph_version=graph.GRAPH_VERSION)
    elif not graph.has_graph(store, source.key) or _facts(row).get("graph_version") != graph.GRAPH_VERSION:
        # grokked before the graph existed, or by an older resolver
        graph.grok_graph(store, source.key, source.root, file_modules(store, source.key, ok_only=True))
        update_facts(store, source.key, graph_version=graph.GRAPH_VERSION)
        log("symbol graph built again (the resolver changed since this source was grokked)")


def _facts(row: dict) -> dict:
    return json.loads(row.get("facts") or "{}")


def fallback_test_files(files: dict) -> tuple[str, ...]:
    """Files that look like tests although pytest's default patterns miss them (``test.py``,
    ``tests.py``, ``testing/*.py``): pytest collects a file named on its command line whatever
    its name."""
    out = []
    for rel, status in sorted(files.items()):
        name = rel.rsplit("/", 1)[-1]
        if status != "ok" or name in ("conftest.py", "__init__.py", "setup.py"):
            continue
        if name.startswith("test") or name.endswith("_test.py") or name.endswith("_tests.py") or is_test_path(rel):
            out.append(rel)
    return tuple(out)


# What regrow itself puts in a suite's output: its pytest plugins, and the coverage it runs.
_OWN_WARNINGS = ("regrow_pytest", "regrow_record", "regrow_worker", "regrow_child", "regrow_canon", "CoverageWarning")
# pytest's session header and closing counts: no news about why a suite gave nothing.
_BOILERPLATE = re.compile(r"=+ test session starts =+|(platform|rootdir|plugins|cachedir|configfile|testpaths)\b.*"
                          r"|collect(ing|ed) .*|(=+ )?[\w ,]*\bin [\d.]+s( \([^)]*\))?( =+)?")


def _pytest_said(tail: str, limit: int = 1500) -> str:
    """The end of pytest's output for an error message, without the warnings that regrow's own
    plugins (and the coverage it runs) caused: quoted, they read as the user's problem.

    A warning is a block: a line at the margin and the indented lines under it, as pytest's
    warnings summary and ``warnings.warn`` both print one. When only pytest's header and counts
    are left, the message says so instead of quoting them."""
    blocks: list[list[str]] = []
    for line in tail.splitlines():
        if blocks and line[:1].isspace() and line.strip() and blocks[-1][0].strip():
            blocks[-1].append(line)
        else:
            blocks.append([line])

    def regrows(block: list[str]) -> bool:
        text = "\n".join(block)
        return "Warning" in text and any(w in text for w in _OWN_WARNINGS)

    own = sum(map(regrows, blocks))
    lines = [ln for b in blocks if not regrows(b) for ln in b]
    head = next((i for i, ln in enumerate(lines) if re.fullmatch(r"=+ warnings summary =+", ln)), None)
    if head is not None:  # a warnings summary with none left in it goes too
        end = next((i for i in range(head + 1, len(lines)) if lines[i].startswith(("=", "-- Docs:"))), len(lines))
        if not any(ln.strip() for ln in lines[head + 1:end]):
            lines = lines[:head] + lines[end + (end < len(lines) and lines[end].startswith("-- Docs:")):]
    said = "\n".join(ln for i, ln in enumerate(lines) if ln.strip() or (i and lines[i - 1].strip())).strip("\n")
    left_out = " (warnings caused by regrow's own plugins and coverage left out)" if own else ""
    if not any(ln.strip() and not _BOILERPLATE.fullmatch(ln) for ln in lines):
        return f"pytest printed no error{left_out}." if tail.strip() else "pytest printed nothing."
    return f"pytest said{left_out}:\n{said[-limit:]}"


RECORD_MIN_S = 120.0  # the recording may always take this long
RECORD_FACTOR = 10.0  # ... or this many times the test map's duration


def _no_tests_reason(source: Source, files: dict, tmap) -> str:
    """Why a suite gave no test result, in the user's terms."""
    if tmap.outcome.timed_out:
        running = tmap.outcome.extra.get("running")
        where = f" while running {running}" if running else ""
        return (f"timed out after {tmap.outcome.duration:.0f} s{where}; a test that hangs past the "
                "per-test limit ignores signals: deselect it in the project's pytest configuration, "
                "or raise --suite-timeout")
    if not any(is_test_path(rel) or rel.rsplit("/", 1)[-1].startswith("test") for rel in files):
        return (f"ships no tests: no test files in {source.root} (source distributions often leave "
                "them out; use a checkout of the repository)")
    output = tmap.outcome.output_tail
    conftest = re.search(r"(PluginValidationError: Plugin '[^']*conftest\.py'[^\n]*|"
                         r"ImportError while loading conftest '[^']*')", output)
    if conftest:
        return (f"collected no tests: a conftest.py does not load with this pytest ({conftest.group(1)[:160]}); "
                "the project may need an older pytest: give an environment that has it with --python")
    return "collected no tests"


def _stable_ids(tests: dict, coverage: dict, keys: dict, seen_again: set[str] | None) -> tuple[dict, dict, list]:
    """Rename the parametrized test ids that a second session did not see again (a parameter id
    built from the clock, a random value or an address) to their stable keys (``path::test[#i]``,
    the position among the function's items), which every later session can find.

    Returns (tests, coverage, renamed ids)."""
    if seen_again is None:
        return tests, coverage, []
    rename = {t: keys[t] for t in tests if t not in seen_again and t in keys}
    if not rename:
        return tests, coverage, []
    tests = {rename.get(t, t): v for t, v in tests.items()}
    coverage = {q: tuple(sorted(rename.get(t, t) for t in ids)) for q, ids in coverage.items()}
    return tests, coverage, sorted(rename)


def _crashing_test_file(output: str, files: dict) -> str | None:
    """The test file whose import stopped the whole session (pytest's INTERNALERROR: a
    ``SystemExit`` or ``KeyboardInterrupt`` at module level is not a collection error)."""
    if "INTERNALERROR" not in output:
        return None
    for line in reversed(output.splitlines()):
        m = re.search(r'File "([^"]+\.py)", line \d+, in <module>', line)
        if m:
            path = m.group(1).replace("\\", "/")
            for rel in files:
                if path.endswith("/" + rel) and (is_test_path(rel) or rel.rsplit("/", 1)[-1].startswith("test")):
                    return rel
    return None


def _last_line(output: str) -> str:
    line = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip() and "INTERNALERROR" in ln), "")
    return line.replace("INTERNALERROR>", "").strip()[:120]


def _collect_errors(outcome) -> list[str]:
    """'file: last line of the error' for each test file that could not be collected."""
    out = []
    for test_id, message in outcome.collect_errors:
        last = next((ln.strip() for ln in reversed(message.splitlines()) if ln.strip()), "")
        out.append(f"{test_id or 'collection'}: {last[:160]}")
    return out


def grok(source: Source, env: Environment, store: Store, *, timeout: float = 1800.0, force: bool = False,
         workdir: Path | None = None, log: Log | None = None, test_timeout: float = 0.0) -> Index:
    """Static grok, then (once per content) the test map and the recorded calls.

    ``timeout`` bounds each whole-suite session; ``test_timeout`` (0: none) one test within it,
    so a test that hangs fails alone instead of stalling the suite.
    """
    log = log or (lambda _msg: None)
    row = _upsert_source(store, source)
    grok_static_part(store, source, row, force=force, log=log)
    if force or row["testmap_done"] is None:
        log("running the test suite under coverage to map tests to functions")
        start = time.perf_counter()
        options = session_options(source.root)
        if options.neutralised:
            log("left out of the project's pytest addopts (reporting, parallel or early-stop options): "
                + " ".join(options.neutralised))

        def test_map(targets: tuple[str, ...] = ()):
            return run_test_map(source.root, env.python, source.import_roots, timeout=timeout, workdir=workdir,
                                targets=targets, pytest_args=options.args, test_timeout=test_timeout)

        tmap = test_map()
        refused = unusable_options(tmap.outcome.output_tail) if not tmap.tests else set()
        if refused:
            options = session_options(source.root, refused)
            log(f"this environment cannot honour {' '.join(sorted(refused))} from the project's pytest "
                "configuration (a plugin it needs is not installed): running without")
            tmap = test_map()
        files = load_index(store, source.key).files
        crashed: list[str] = []
        while not tmap.tests and not tmap.outcome.timed_out and len(crashed) < 5:
            bad = _crashing_test_file(tmap.outcome.output_tail, files)
            if bad is None or bad in crashed:
                break
            crashed.append(bad)  # e.g. a script named like a test that exits at import
            log(f"importing {bad} stops pytest itself ({_last_line(tmap.outcome.output_tail)}): leaving it out")
            options = SuiteOptions((*options.args, f"--ignore={bad}"), options.neutralised)
            tmap = test_map()
        if not tmap.tests and not tmap.outcome.timed_out:
            targets = fallback_test_files(files)
            if targets:
                log(f"pytest's own configuration collected no tests; trying {len(targets)} test-like files directly")
                tmap = test_map(targets)
        seconds = time.perf_counter() - start
        passed = sum(1 for o, _ in tmap.tests.values() if o == "passed")
        if not tmap.tests:
            raise NoTestsError(f"the test suite of {source.name} {_no_tests_reason(source, files, tmap)}; "
                               f"nothing to score.\n{_pytest_said(tmap.outcome.output_tail)}")
        if passed == 0:
            raise NoTestsError(f"every test of {source.name} fails before any change; nothing to score.\n"
                               f"{_pytest_said(tmap.outcome.output_tail)}")
        uncollected = _collect_errors(tmap.outcome) + [f"{rel}: stops pytest when imported" for rel in crashed]
        if uncollected:
            log(f"{len(uncollected)} test file{'s' if len(uncollected) != 1 else ''} could not be collected "
                "and {} left out: ".format("are" if len(uncollected) != 1 else "is") + "; ".join(uncollected[:5])
                + (" ..." if len(uncollected) > 5 else ""))
        index = load_index(store, source.key)
        coverage = {}
        for sym in index.symbols.values():
            ids = tmap.covering(sym)
            if ids and not sym.is_test:
                coverage[sym.qualname] = ids
        # The recording (the suite once more, every call into the target logged) is bounded by
        # the test map's own time: a recorder slowed by huge values must not stall grok; the
        # calls recorded until then are kept.
        record_timeout = min(timeout, max(RECORD_MIN_S, RECORD_FACTOR * tmap.outcome.duration))
        log(f"running the suite once more to record calls for the equivalence check "
            f"(at most {record_timeout:.0f} s)")
        rec = record_calls(source.root, env.python, source.import_roots, store, source.key,
                           qualnames=set(coverage), timeout=record_timeout, workdir=workdir,
                           pytest_args=options.args, test_timeout=test_timeout)
        if rec.outcome.timed_out:
            log(f"the recording stopped at its limit; keeping the {rec.calls} calls recorded until then")
        log(f"recorded {rec.calls} call{'s' if rec.calls != 1 else ''} into {rec.functions} "
            f"function{'s' if rec.functions != 1 else ''} for the equivalence check")
        seen_again = set(rec.outcome.results) if rec.outcome.finished else None
        tests, coverage, renamed = _stable_ids(tmap.tests, coverage, tmap.outcome.extra.get("keys", {}), seen_again)
        if renamed:
            log(f"{len(renamed)} parametrized test id{'s' if len(renamed) != 1 else ''} changed between two runs "
                f"(e.g. {renamed[0]}): selected by position instead")
        save_testmap(store, source.key, tests, coverage)
        update_facts(store, source.key, "testmap_done", testmap_seconds=seconds, n_tests=len(tests),
                      n_tests_passed=passed, collect_errors=len(tmap.outcome.collect_errors),
                      uncollected=uncollected, unstable_ids=renamed, pytest_options=options.to_json(),
                      suite_timed_out=tmap.outcome.timed_out, recorded_calls=rec.calls,
                      record_seconds=rec.outcome.duration)
        log(f"test map: {len(tests)} tests ({passed} passed) in {seconds:.1f}s, "
            f"{len(coverage)} functions covered")
    return load_index(store, source.key)
