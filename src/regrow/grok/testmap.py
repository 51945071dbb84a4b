"""The test map: which tests execute each function, measured with coverage.py.

The whole suite runs once on a private copy of the unmodified source, under coverage.py with
regrow's plugin switching the dynamic context to each test's node id. A function is covered by
a test when that test executed at least one line of the function's body.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coverage import CoverageData

from regrow.verify.sandbox import Job, LocalSandbox, Outcome, Sandbox
from regrow.core.symbol import Symbol
from regrow.source.workspace import private_copy, remove_tree, scratch_dir


@dataclass(frozen=True, slots=True)
class TestMap:
    tests: dict  # test id -> (outcome, duration)
    lines: dict  # relpath -> {line: frozenset(test ids)}
    outcome: Outcome  # the suite run itself
    seconds: float

    __test__ = False

    def covering(self, symbol: Symbol, passed_only: bool = True) -> tuple[str, ...]:
        by_line = self.lines.get(symbol.path, {})
        found: set[str] = set()
        for line in range(symbol.body_start, symbol.end + 1):
            found.update(by_line.get(line, ()))
        if passed_only:
            found = {t for t in found if self.tests.get(t, ("",))[0] == "passed"}
        return tuple(sorted(found))


def _rcfile(dest: Path, data_file: Path, sources: list[str]) -> Path:
    rc = dest / "regrow-coverage.rc"
    rc.write_text(
        "[run]\n"
        f"data_file = {data_file}\n"
        "branch = false\n"
        "parallel = false\n"
        "source =\n" + "".join(f"    {s}\n" for s in sources)
    )
    return rc


def run_test_map(root: Path, python: Path, import_roots: tuple[str, ...], *, timeout: float = 1800.0,
                 sandbox: Sandbox | None = None, workdir: Path | None = None,
                 targets: tuple[str, ...] = (), pytest_args: tuple[str, ...] = (),
                 test_timeout: float = 0.0) -> TestMap:
    """Run the whole suite (or only ``targets``) once under coverage on a private copy of ``root``."""
    sandbox = sandbox or LocalSandbox()
    tmp = scratch_dir("testmap", workdir)
    try:
        copy = private_copy(root, tmp / "src")
        data_file = tmp / "coverage.sqlite"
        sources = [str(copy / r) if r not in (".", "") else str(copy) for r in import_roots]
        rc = _rcfile(tmp, data_file, sources)
        job = Job(cwd=copy, python=python, pythonpath=tuple(sources), timeout=timeout, coverage_rc=rc,
                  memory_mb=8192, test_ids=targets, pytest_args=pytest_args, grok=True, test_timeout=test_timeout)
        outcome = sandbox.run(job)
        tests = {tid: (o.outcome, o.duration) for tid, o in outcome.results.items()}
        lines: dict[str, dict[int, frozenset[str]]] = {}
        if data_file.exists():
            data = CoverageData(basename=str(data_file))
            data.read()
            prefix = str(copy) + "/"
            for measured in data.measured_files():
                if not measured.startswith(prefix):
                    continue
                rel = measured[len(prefix):]
                by_line = data.contexts_by_lineno(measured)
                lines[rel] = {ln: frozenset(c for c in ctxs if c in tests) for ln, ctxs in by_line.items()}
        return TestMap(tests=tests, lines=lines, outcome=outcome, seconds=outcome.duration)
    finally:
        remove_tree(tmp)
