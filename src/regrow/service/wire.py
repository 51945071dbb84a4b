"""What travels over HTTP: the request and response bodies (pydantic), and a `Verdict` as JSON.

Shared by the server (`app.py`, which publishes them as its OpenAPI schema) and the client
(`client.py`, which reads them back into `Verdict`s). Every result carries a format tag.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from regrow.core.verdict import TestOutcome, Verdict

SCORE_FORMAT = "regrow-score/1"  # one scored item
BATCH_FORMAT = "regrow-score-batch/1"  # the answer of POST /v1/score
TASKS_FORMAT = "regrow-task-list/1"  # the answer of GET /v1/tasks

_ID = Field(min_length=1, max_length=255)


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable word: unauthorized, too_large, overloaded, deadline, "
                                  "shutting_down, invalid, not_found, unknown_task, conflict, ...")
    message: str = Field(description="One line for a person")


class ErrorBody(BaseModel):
    """Every error response of the service has this shape."""

    error: ErrorDetail


# ---------------------------------------------------------------------------------- scoring


class ScoreRequestItem(BaseModel):
    """One completion to score as the body of ``task_id``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"task_id": "calc.ops:add", "completion": "```python\nreturn a + b\n```", "request_id": "step7-0"}]})

    task_id: str = Field(min_length=1, max_length=1000, description="A valid task's id (GET /v1/tasks)")
    completion: str = Field(description="The model's raw answer: a fenced block, prose around code, or the body")
    request_id: str | None = Field(default=None, min_length=1, max_length=255,
                                   description="Retrying with the same id returns the stored result, "
                                               "verified once")
    source: str | None = Field(default=None, max_length=1000,
                               description="The source's name or spec, when two sources have the task id")


class OutcomeBody(BaseModel):
    test_id: str
    outcome: str
    duration: float = 0.0
    message: str = ""


class VerdictBody(BaseModel):
    """A `Verdict` (docs/verification.md) as JSON."""

    status: str
    tests_total: int
    tests_passed: int
    flags: list[str] = []
    feedback: str = ""
    duration: float = 0.0
    func_distance: int | None = None
    func_similarity: float | None = None
    func_error: float | None = None
    file_distance: int | None = None
    file_similarity: float | None = None
    file_error: float | None = None
    eq_cases: int = 0
    eq_matched: int = 0
    outcomes: list[OutcomeBody] = []


class ScoreResult(BaseModel):
    format: Literal["regrow-score/1"] = SCORE_FORMAT
    request_id: str | None = None
    task_id: str
    source: str | None = Field(default=None, description="The name of the source that has the task")
    reward: float | None = Field(default=None, description="The server's RewardSpec value of the verdict")
    solved: bool | None = None
    status: str | None = Field(default=None, description="The verdict's status, or 'error'")
    flags: list[str] = []
    tests_passed: int | None = None
    tests_total: int | None = None
    similarity: float | None = Field(default=None, description="Of the body to the reference, 0..1")
    verdict: VerdictBody | None = None
    replayed: bool = Field(default=False, description="True when this result was stored for the request_id "
                                                      "before this request")
    error: ErrorDetail | None = Field(default=None, description="Why this item has no verdict")


class ScoreResponse(BaseModel):
    format: Literal["regrow-score-batch/1"] = BATCH_FORMAT
    results: list[ScoreResult]


class TaskInfo(BaseModel):
    task_id: str
    source: str
    module: str
    path: str
    tests: int
    strength: float | None = None


class TasksResponse(BaseModel):
    format: Literal["regrow-task-list/1"] = TASKS_FORMAT
    total: int
    tasks: list[TaskInfo]


# ------------------------------------------------------------------- environment (OpenEnv shape)


class RegrowAction(BaseModel):
    """The model's answer for the episode's task, read like a completion (fenced block or body)."""

    model_config = ConfigDict(extra="forbid")

    completion: str = Field(description="The function's body, or an answer containing it")
    metadata: dict[str, Any] = Field(default_factory=dict)


class RegrowObservation(BaseModel):
    done: bool = False
    reward: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    task_id: str
    prompt: str = Field(description="At reset: the task's prompt (system and user messages joined); "
                                    "after a step: the failing tests' feedback, empty when solved")
    messages: list[dict[str, str]] = Field(default_factory=list, description="At reset: the prompt as chat messages")
    turn: int = 0
    status: str | None = None
    tests_passed: int | None = None
    tests_total: int | None = None


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"task_id": "calc.ops:add"}, {}]})

    seed: int | None = Field(default=None, ge=0, description="Draw the task with this seed")
    episode_id: str | None = Field(default=None, min_length=1, max_length=255,
                                   description="Name the episode (default: a fresh id)")
    task_id: str | None = Field(default=None, max_length=1000, description="The task (default: a seeded draw)")
    source: str | None = Field(default=None, max_length=1000)


class EpisodeResponse(BaseModel):
    observation: RegrowObservation
    reward: float | None = None
    done: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict, description="episode_id, turn, max_turns, flags")


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    action: RegrowAction
    episode_id: str = Field(min_length=1, max_length=255, description="The id /reset returned")
    timeout_s: float | None = Field(default=None, gt=0, le=86400, description="This step's deadline")
    request_id: str | None = Field(default=None, min_length=1, max_length=255,
                                   description="A retried step with the same id is not taken twice")


class EpisodeState(BaseModel):
    episode_id: str
    step_count: int = Field(ge=0)
    task_id: str
    source: str
    done: bool
    solved: bool
    max_turns: int
    reward: float | None = None


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded"] = Field(description="degraded while shutting down")


class SchemaResponse(BaseModel):
    action: dict[str, Any]
    observation: dict[str, Any]
    state: dict[str, Any]


class SourceInfo(BaseModel):
    name: str
    spec: str
    version: str | None = None
    tasks: int


class MetadataResponse(BaseModel):
    name: str = "regrow"
    description: str
    version: str
    max_turns: int
    sources: list[SourceInfo]
    documentation_url: str | None = None


# ---------------------------------------------------------------------------------- verdicts


def verdict_body(verdict: Verdict) -> VerdictBody:
    return VerdictBody(
        status=verdict.status, tests_total=verdict.tests_total, tests_passed=verdict.tests_passed,
        flags=list(verdict.flags), feedback=verdict.feedback, duration=verdict.duration,
        func_distance=verdict.func_distance, func_similarity=verdict.func_similarity, func_error=verdict.func_error,
        file_distance=verdict.file_distance, file_similarity=verdict.file_similarity, file_error=verdict.file_error,
        eq_cases=verdict.eq_cases, eq_matched=verdict.eq_matched,
        outcomes=[OutcomeBody(test_id=o.test_id, outcome=o.outcome, duration=o.duration, message=o.message)
                  for o in verdict.outcomes])


def verdict_of(body: VerdictBody | dict) -> Verdict:
    """The `Verdict` a `VerdictBody` (or its JSON) describes."""
    b = body if isinstance(body, VerdictBody) else VerdictBody.model_validate(body)
    return Verdict(status=b.status, tests_total=b.tests_total, tests_passed=b.tests_passed,
                   outcomes=tuple(TestOutcome(o.test_id, o.outcome, o.duration, o.message) for o in b.outcomes),
                   flags=tuple(b.flags), feedback=b.feedback, duration=b.duration,
                   func_distance=b.func_distance, func_similarity=b.func_similarity, func_error=b.func_error,
                   file_distance=b.file_distance, file_similarity=b.file_similarity, file_error=b.file_error,
                   eq_cases=b.eq_cases, eq_matched=b.eq_matched)
