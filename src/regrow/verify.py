"""Verify a candidate body: splice it into a private copy, run only the covering tests.

The parent decides: a task is solved only when every expected test id was reported by the
plugin, every one passed, and the session reached its end. Skipped, xfailed, errored or
missing tests count as failures.
"""

from __future__ import annotations

import ast
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import pyast
from .hollow import function_text, splice
from .sandbox import Job, LocalSandbox, Outcome, Sandbox
from .scores import edit_scores
from .task import Task
from .verdict import (CRASHED, FAILED_STATUS, MALFORMED, MISSING, PASSED, SOLVED, TIMEOUT, TestOutcome,
                      Verdict)
from .workspace import private_copy, remove_tree, replace_file

FEEDBACK_CHARS = 2400


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    timeout: float = 60.0  # wall seconds for one candidate's pytest session
    memory_mb: int = 4096
    feedback_chars: int = FEEDBACK_CHARS


class Verifier:
    """Verifies candidates for tasks of one source (pristine ``root``) with one interpreter."""

    def __init__(self, root: Path, python: Path, import_roots: tuple[str, ...], *,
                 sandbox: Sandbox | None = None, config: VerifyConfig = VerifyConfig(),
                 workdir: Path | None = None):
        self.root, self.python, self.import_roots = Path(root), Path(python), import_roots
        self.sandbox = sandbox or LocalSandbox()
        self.config = config
        self.workdir = workdir

    def run_file(self, relpath: str, text: str | None, test_ids: tuple[str, ...]) -> Outcome:
        """Run ``test_ids`` on a private copy where ``relpath`` holds ``text`` (None: unchanged)."""
        tmp = Path(tempfile.mkdtemp(prefix="regrow-verify-", dir=self.workdir))
        try:
            copy = private_copy(self.root, tmp / "src")
            if text is not None:
                replace_file(copy, relpath, text)
            paths = tuple(str(copy / r) if r not in (".", "") else str(copy) for r in self.import_roots)
            job = Job(cwd=copy, python=self.python, test_ids=test_ids, pythonpath=paths,
                      timeout=self.config.timeout, memory_mb=self.config.memory_mb)
            return self.sandbox.run(job)
        finally:
            remove_tree(tmp)

    def verify(self, task: Task, body: str | None, *, malformed: str = "") -> Verdict:
        """Judge ``body`` (dedented, no docstring) as the body of ``task``'s function."""
        if body is None:
            return Verdict(status=MALFORMED, tests_total=len(task.tests), tests_passed=0,
                           feedback=f"Your answer could not be used: {malformed or 'no code found'}.")
        text = splice(task, body)
        try:
            pyast.parse(text)
        except SyntaxError as exc:
            return Verdict(status=MALFORMED, tests_total=len(task.tests), tests_passed=0,
                           feedback=f"The body does not parse in place: line {exc.lineno}: {exc.msg}.")
        outcome = self.run_file(task.path, text, task.tests)
        verdict = judge(task, outcome, self.config.feedback_chars)
        return with_similarity(verdict, task, text)


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


def with_similarity(verdict: Verdict, task: Task, regenerated_file: str) -> Verdict:
    """Add function- and file-level edit distance to the original (see docs/metrics.md)."""
    f_dist, f_sim, f_err = edit_scores(function_text(task.original_file, task.symbol),
                                       function_text(regenerated_file, task.symbol))
    d_dist, d_sim, d_err = edit_scores(task.original_file, regenerated_file)
    return replace(verdict, func_distance=f_dist, func_similarity=f_sim, func_error=f_err,
                   file_distance=d_dist, file_similarity=d_sim, file_error=d_err)
