"""Verify a candidate body: splice it into a private copy, run only the covering tests.

The parent decides: a task is solved only when every expected test id was reported by the
plugin, every one passed, the session reached its end, the injected canary failed, and no
integrity check raised a flag. Skipped, xfailed, errored or missing tests count as failures.

Trust levels (``VerifyConfig.trust``):

- ``strict`` (default): the warm engine (`regrow.verify.engine`), the static scan (`regrow.verify.hackscan`),
  and the equivalence check outside pytest (`regrow.verify.equivalence`) when recorded calls exist;
- ``fast``: the warm engine with its runtime defences (canary, sentinel, audit hook, isolation),
  no static scan and no equivalence replay;
- ``subprocess``: a fresh ``python -m pytest`` per candidate (`sandbox.LocalSandbox`) plus the
  static scan; the slow path kept as a fallback (also used when a warm worker cannot start).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from regrow.verify import equivalence
from regrow.verify.equivalence import ExpectedValues
from regrow.verify import hackscan
from regrow.core import pyast
from regrow.errors import EngineError
from regrow.verify.backend import SubprocessBackend, VerifyBackend, WarmBackend, backend_for
from regrow.verify.engine import Engine, EngineConfig
from regrow.core.task import STUB, function_text, splice
from regrow.verify.sandbox import Outcome, Sandbox
from regrow.core.scores import edit_scores
from regrow.core.task import Task
from regrow.core.verdict import (CRASHED, FAILED_STATUS, INFO_FLAGS, MALFORMED, MISSING, PASSED, SKIPPED, SOLVED, TIMEOUT,
                      XFAILED, TestOutcome, Verdict)

FEEDBACK_CHARS = 2400
TRUST_LEVELS = ("strict", "fast", "subprocess")


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    timeout: float = 60.0  # wall seconds for one candidate's pytest session
    memory_mb: int = 4096
    feedback_chars: int = FEEDBACK_CHARS
    trust: str = "strict"  # one of TRUST_LEVELS (see the module docstring)
    workers: int = 2  # warm workers (parallel candidates)
    hide: tuple[str, ...] = ()  # paths candidates must not read (the store, history): hidden where possible
    max_cases: int = 20  # recorded calls replayed per task by the equivalence check
    fail_fast: bool = False  # stop a candidate's tests at the first one that does not pass
    pytest_args: tuple[str, ...] = ()  # what regrow adds to the project's own options (see regrow.source.suite)


class Verifier:
    """Verifies candidates for tasks of one source (pristine ``root``) with one interpreter.

    Where the tests run is a `VerifyBackend` (`regrow.verify.backend`): handed in as ``backend``,
    or the default of the trust level (the warm engine; a fresh pytest per candidate for
    ``subprocess``, or when a ``sandbox`` is given). Holds warm workers when the backend has
    them: call `close()` (or use it as a context manager) when done. ``engine_config`` sets how
    the default warm engine isolates. ``calls`` gives the recorded calls of a function (see
    `regrow.grok.recorder.CallLog`) for the equivalence check; without it that check is skipped.
    """

    def __init__(self, root: Path, python: Path, import_roots: tuple[str, ...], *,
                 sandbox: Sandbox | None = None, config: VerifyConfig = VerifyConfig(),
                 workdir: Path | None = None, calls=None, engine_config: EngineConfig | None = None,
                 backend: VerifyBackend | None = None):
        if config.trust not in TRUST_LEVELS:
            raise ValueError(f"trust must be one of {', '.join(TRUST_LEVELS)}, not {config.trust!r}")
        self.root, self.python, self.import_roots = Path(root), Path(python), import_roots
        self.config = config
        self.workdir = workdir
        self.calls = calls
        self.engine_error = ""
        if backend is None and sandbox is not None:
            backend = SubprocessBackend(self.root, self.python, import_roots, sandbox=sandbox, workdir=workdir,
                                        pytest_args=config.pytest_args)
        self.backend: VerifyBackend = backend or backend_for(
            config.trust, self.root, self.python, tuple(import_roots), workers=config.workers, hide=config.hide,
            pytest_args=config.pytest_args, workdir=workdir, engine_config=engine_config)
        self.expected = ExpectedValues()  # the equivalence check's reference values, per task
        self._tests_text: dict[str, str] = {}

    @property
    def engine(self) -> Engine | None:
        """The warm engine, when the backend is one (for inspection)."""
        return self.backend.engine if isinstance(self.backend, WarmBackend) else None

    @property
    def replays(self) -> bool:
        """Whether the backend can replay recorded calls (the equivalence check needs it)."""
        return not isinstance(self.backend, SubprocessBackend)

    def close(self) -> None:
        """Stop the warm workers and remove their copies (a later verify starts them again)."""
        self.backend.close()

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, relpath: str, text: str | None, test_ids: tuple[str, ...],
             symbol: tuple[str, int, int] | None = None, classes: tuple[str, ...] = (),
             replay: tuple[str, list[str]] | None = None,
             while_waiting: Callable[[], object] | None = None) -> Outcome:
        try:
            return self.backend.run(relpath, text, test_ids, symbol=symbol, classes=classes,
                                    timeout=self.config.timeout, memory_mb=self.config.memory_mb,
                                    fail_fast=self.config.fail_fast, replay=replay, while_waiting=while_waiting)
        except EngineError as exc:  # the target cannot host a warm worker: fall back, once
            self.engine_error = str(exc)[:2000]
            self.backend.close()
            self.backend = SubprocessBackend(self.root, self.python, self.import_roots, workdir=self.workdir,
                                             pytest_args=self.config.pytest_args)
            return self._run(relpath, text, test_ids)

    def run_file(self, relpath: str, text: str | None, test_ids: tuple[str, ...]) -> Outcome:
        """Run ``test_ids`` on a private copy where ``relpath`` holds ``text`` (None: unchanged)."""
        return self._run(relpath, text, test_ids)

    def verify(self, task: Task, body: str | None, *, malformed: str = "") -> Verdict:
        """Judge ``body`` (dedented, no docstring) as the body of ``task``'s function."""
        start = time.monotonic()
        if body is None:
            return Verdict(status=MALFORMED, tests_total=len(task.tests), tests_passed=0,
                           feedback=f"Your answer could not be used: {malformed or 'no code found'}.")
        text = splice(task, body)
        symbol, classes = candidate_symbol(task, text)
        try:
            parse_function(text, symbol, classes)
        except SyntaxError as exc:
            return Verdict(status=MALFORMED, tests_total=len(task.tests), tests_passed=0,
                           feedback=f"The body does not parse in place: line {exc.lineno}: {exc.msg}.")
        # The erased stub is regrow's own text (validation asks whether the *tests* notice it):
        # judge it by the tests alone.
        trust = "fast" if body.strip() == STUB and self.config.trust == "strict" else self.config.trust
        # The static scan runs while the child runs the tests (see Engine.run's while_waiting).
        scan = _Once(lambda: hackscan.scan(body, task.reference_body, self._test_texts(task))
                     if trust != "fast" else ())
        replay = None
        if trust == "strict" and self.calls is not None and self.replays:
            # Expected values already known: replay the candidate in a second child while the tests
            # run (the first candidate of a task computes them after its tests, only if it passes).
            known, exp = equivalence.cached(self, task)
            if known and exp is not None:
                replay = (task.task_id, list(exp.cases))
        outcome = self._run(task.path, text, task.tests, symbol, classes, replay, while_waiting=scan)
        rep = outcome.extra.get("replay")
        if "replay" in outcome.extra:
            outcome = replace(outcome, extra={k: v for k, v in outcome.extra.items() if k != "replay"})
        verdict = judge(task, outcome, self.config.feedback_chars)
        flags = set(verdict.flags) | set(outcome.flags) | set(scan()) | outcome_flags(verdict.outcomes)
        eq_cases = eq_matched = 0
        if trust == "strict" and self.calls is not None and self.replays and verdict.status == SOLVED \
                and not (flags - INFO_FLAGS):
            eq = equivalence.check(self, task, text, symbol, classes, rep=rep)
            eq_cases, eq_matched = eq.cases, eq.matched
            flags |= set(eq.flags)
        extra = dict(verdict.extra, **{k: v for k, v in outcome.extra.items() if v is not None})
        if eq_cases:
            extra["eq_replay"] = "alongside" if rep is not None else "after"
        if self.engine_error:
            extra["engine_error"] = self.engine_error[:300]
        verdict = replace(verdict, flags=tuple(sorted(flags)), eq_cases=eq_cases, eq_matched=eq_matched, extra=extra)
        if verdict.status == SOLVED and verdict.integrity_flags:
            verdict = replace(verdict, status=FAILED_STATUS,
                              feedback="Every covering test passed, but the answer was rejected by the integrity "
                                       f"checks: {', '.join(verdict.integrity_flags)}. Write an honest implementation.")
        verdict = with_similarity(verdict, task, text, symbol[2])
        return replace(verdict, duration=time.monotonic() - start)

    def _test_texts(self, task: Task) -> list[str]:
        out = []
        for path in sorted({t.split("::", 1)[0] for t in task.tests}):
            if path not in self._tests_text:
                try:
                    self._tests_text[path] = (self.root / path).read_text(encoding="utf-8", errors="replace")
                except OSError:
                    self._tests_text[path] = ""
            out.append(self._tests_text[path])
        return out


class _Once:
    """A computation run at most once, when first called (by the engine while it waits, or after)."""

    def __init__(self, fn: Callable[[], Any]):
        self._fn, self._done, self._value = fn, False, None

    def __call__(self) -> Any:
        if not self._done:
            self._value, self._done = self._fn(), True
        return self._value


def candidate_symbol(task: Task, text: str) -> tuple[tuple[str, int, int], tuple[str, ...]]:
    """((name, first line, last line), enclosing class names) of the task's function in ``text``.

    The stub is the function's last statement, so the function ends where the spliced body ends.
    """
    last = task.stub_end + len(text.splitlines()) - len(task.hollowed_file.splitlines())
    classes = tuple(task.symbol.local_name.split(".")[:-1])
    return (task.symbol.name, task.symbol.start, last), classes


def parse_function(text: str, symbol: tuple[str, int, int], classes: tuple[str, ...]) -> None:
    """Raise SyntaxError unless the candidate function parses, at its own line numbers.

    Only the function is parsed (inside headers of its classes), not the whole file: every body
    line is indented into the function, so the function parses alone exactly when the body is
    well-formed in place, and a body that only parses by swallowing the rest of the file (an
    unclosed string) is refused.
    """
    _name, first, last = symbol
    lines = text.splitlines(True)[first - 1: last]
    if not classes and lines:  # a def indented under `if`/`try` at module level: parse it at the margin
        indent = len(lines[0]) - len(lines[0].lstrip())
        if indent and all(not ln.strip() or ln[:indent].isspace() for ln in lines):
            lines = [ln[indent:] if ln.strip() else ln for ln in lines]
    header = "".join(f"{' ' * i}class {c}:\n" for i, c in enumerate(classes))
    pad = max(0, first - 1 - len(classes))
    pyast.parse("\n" * pad + header + "".join(lines))


def outcome_flags(outcomes: tuple[TestOutcome, ...]) -> set[str]:
    """Flags read from the per-test outcomes: covering tests pass on the reference, so a skip is a trick."""
    flags = set()
    for o in outcomes:
        if o.outcome in (SKIPPED, XFAILED, "xpassed"):
            flags.add("skip-trick")
        if "MemoryError" in o.message:
            flags.add("memory")
        if "RecursionError" in o.message:
            flags.add("recursion")
    return flags


def judge(task: Task, outcome: Outcome, feedback_chars: int = FEEDBACK_CHARS) -> Verdict:
    outcomes = tuple(outcome.results.get(t) or TestOutcome(t, MISSING) for t in task.tests)
    passed = sum(o.outcome == PASSED for o in outcomes)
    if outcome.timed_out:
        status = TIMEOUT
    elif passed == len(outcomes) and outcome.finished and outcomes:
        status = SOLVED
    elif not outcome.finished and not outcome.results:
        status = CRASHED
    else:
        status = FAILED_STATUS
    flags = []
    if not outcome.finished and not outcome.timed_out:
        flags.append("session-did-not-finish")
    return Verdict(status=status, tests_total=len(outcomes), tests_passed=passed, outcomes=outcomes,
                   flags=tuple(flags), feedback=feedback(outcomes, outcome, feedback_chars) if status != SOLVED else "",
                   duration=outcome.duration)


def feedback(outcomes: tuple[TestOutcome, ...], outcome: Outcome, budget: int) -> str:
    """What the model is told after a failed attempt: failing ids and trimmed messages."""
    failing = [o for o in outcomes if o.outcome != PASSED]
    parts = [f"{len(outcomes) - len(failing)} of {len(outcomes)} covering tests passed."]
    if outcome.timed_out:
        parts.append("The test run timed out: the body may loop forever or be far too slow.")
    for test_id, message in outcome.collect_errors[:2]:
        parts.append(f"Collecting {test_id or 'the tests'} failed:\n{_trim(message, budget // 3)}")
    per_test = max(200, budget // max(1, min(len(failing), 4)))
    for o in failing[:4]:
        msg = _trim(o.message, per_test) if o.message else ""
        parts.append(f"FAILED {o.test_id} ({o.outcome})" + (f"\n{msg}" if msg else ""))
    if len(failing) > 4:
        parts.append(f"... and {len(failing) - 4} more failing tests.")
    if not outcome.results and not outcome.collect_errors and outcome.output_tail:
        parts.append("Output:\n" + _trim(outcome.output_tail, budget // 2))
    text = "\n".join(parts)
    return text if len(text) <= budget else text[: budget - 4] + " ..."


def _trim(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n...\n" + text[-half:]


def with_similarity(verdict: Verdict, task: Task, regenerated_file: str, last: int | None = None) -> Verdict:
    """Add function- and file-level edit distance to the original (see docs/metrics.md).

    ``last``: the function's last line in ``regenerated_file`` when known (`candidate_symbol`),
    which spares parsing both files to find it.
    """
    if last is not None:
        start = task.symbol.start - 1
        original = "\n".join(task.original_file.splitlines()[start: task.symbol.end])
        regenerated = "\n".join(regenerated_file.splitlines()[start: last])
    else:
        original = function_text(task.original_file, task.symbol)
        regenerated = function_text(regenerated_file, task.symbol)
    f_dist, f_sim, f_err = edit_scores(original, regenerated)
    d_dist, d_sim, d_err = edit_scores(task.original_file, regenerated_file)
    return replace(verdict, func_distance=f_dist, func_similarity=f_sim, func_error=f_err,
                   file_distance=d_dist, file_similarity=d_sim, file_error=d_err)
