"""`Verdict`: what verification concluded about one candidate. Never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field

# Outcome of one expected test id, as the parent read it.
PASSED = "passed"
FAILED = "failed"
ERROR = "error"
SKIPPED = "skipped"
XFAILED = "xfailed"
MISSING = "missing"

# Verdict statuses.
SOLVED = "solved"
FAILED_STATUS = "failed"
MALFORMED = "malformed"
TIMEOUT = "timeout"
CRASHED = "crashed"

# Flags that describe a failure without accusing the candidate of anything.
INFO_FLAGS = frozenset({"session-did-not-finish", "global-state", "monkeypatch", "recursion"})


@dataclass(frozen=True, slots=True)
class TestOutcome:
    test_id: str
    outcome: str  # one of PASSED, FAILED, ERROR, SKIPPED, XFAILED, MISSING
    duration: float = 0.0
    message: str = ""  # short failure text (assertion message, trimmed traceback)

    __test__ = False  # not a pytest class


@dataclass(frozen=True, slots=True)
class Verdict:
    """The parent's judgement of one candidate.

    ``solved`` holds only when every expected test id is present and passed and no
    integrity flag was raised.
    """

    status: str
    tests_total: int
    tests_passed: int
    outcomes: tuple[TestOutcome, ...] = ()
    flags: tuple[str, ...] = ()
    feedback: str = ""
    duration: float = 0.0
    # Similarity to the original (filled by scores.compare); None when not computed.
    func_distance: int | None = None
    func_similarity: float | None = None
    func_error: float | None = None
    file_distance: int | None = None
    file_similarity: float | None = None
    file_error: float | None = None
    extra: dict = field(default_factory=dict)
    # Equivalence outside pytest: recorded calls replayed on the candidate (see regrow.verify.equivalence).
    eq_cases: int = 0  # stable recorded calls compared
    eq_matched: int = 0  # of those, calls whose result (and arguments after the call) matched exactly

    @property
    def solved(self) -> bool:
        return self.status == SOLVED

    @property
    def pass_fraction(self) -> float:
        return self.tests_passed / self.tests_total if self.tests_total else 0.0

    @property
    def integrity_flags(self) -> tuple[str, ...]:
        """The flags that withhold the reward (everything but the informational ones)."""
        return tuple(f for f in self.flags if f not in INFO_FLAGS)

    @property
    def reward(self) -> float:
        """1.0 when solved and no integrity flag was raised, else 0.0. Partial credit is reported, never rewarded."""
        return 1.0 if self.solved and not self.integrity_flags else 0.0
