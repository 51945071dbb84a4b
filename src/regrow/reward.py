"""The reward: one call from a completion to a `Verdict`, for every trainer adapter.

    from regrow.reward import Reward
    with Reward("pypi:toolz==1.0.0") as reward:
        verdict = reward.score("toolz.itertoolz:frequencies", completion_text)
        verdict.reward  # 1.0 when every covering test passed and no integrity check fired

The source is prepared once (environment, grok, validated tasks, warm workers); each `score`
extracts the body from the completion the way a model's answer is read in a run (a fenced
block, prose around code, or a plain continuation of the function) and verifies it in the
sandbox. `Reward.value(verdict)` turns a verdict into the trainer's number under the reward's
`RewardSpec` (binary solved by default; partial credit, similarity and quality weights are
opt-in). The formula is in docs/metrics.md ("Reward formula").
"""

from __future__ import annotations

from dataclasses import dataclass

from regrow.api import Hooks, Prepared, prepare
from regrow.config import RunConfig, resolve_config
from regrow.core.task import Task
from regrow.core.verdict import Verdict
from regrow.errors import ConfigError
from regrow.solve.loop import extract
from regrow.solve.types import Completion

__all__ = ["Reward", "RewardSpec"]


@dataclass(frozen=True, slots=True)
class RewardSpec:
    """The weights of the reward formula (docs/metrics.md, "Reward formula").

    Any integrity flag gives 0. Otherwise, solved gives ``solved`` plus ``similarity`` times
    the function-level similarity plus ``quality`` times the share of recorded calls that
    matched; not solved gives ``partial`` times the share of covering tests passed. The default
    is the binary reward, the same number as ``Verdict.reward``.
    """

    solved: float = 1.0
    partial: float = 0.0
    similarity: float = 0.0
    quality: float = 0.0

    def __post_init__(self) -> None:
        for name in ("solved", "partial", "similarity", "quality"):
            if getattr(self, name) < 0:
                raise ConfigError(f"RewardSpec.{name} must be >= 0 (got {getattr(self, name)})")

    def value(self, verdict: Verdict) -> float:
        if verdict.integrity_flags:
            return 0.0
        if not verdict.solved:
            return self.partial * verdict.pass_fraction
        similarity = verdict.func_similarity or 0.0
        # Unmeasured (no stable recorded call) reads as matching: nothing recorded disagrees.
        quality = verdict.eq_matched / verdict.eq_cases if verdict.eq_cases else 1.0
        return self.solved + self.similarity * similarity + self.quality * quality


class Reward:
    """Scores completions for the valid tasks of one source."""

    def __init__(self, source: str, config: RunConfig | None = None, hooks: Hooks = Hooks(),
                 spec: RewardSpec | None = None):
        self.spec = spec or RewardSpec()
        self.prepared: Prepared = prepare(source, config or resolve_config({}), hooks)
        self.tasks: dict[str, Task] = {t.task_id: t for t in self.prepared.valid}

    def score(self, task_id: str, completion: str) -> Verdict:
        """The verdict of ``completion`` (a model's raw answer) as the body of ``task_id``."""
        task = self.tasks.get(task_id)
        if task is None:
            raise ConfigError(f"no valid task {task_id!r} in {self.prepared.source.name} "
                              f"({len(self.tasks)} valid tasks; `regrow hollow` lists them)")
        body, why = extract(Completion(text=completion), task)
        return self.prepared.verifier.verify(task, body, malformed=why)

    def value(self, verdict: Verdict) -> float:
        """The trainer's number for ``verdict`` under this reward's `RewardSpec`."""
        return self.spec.value(verdict)

    def close(self) -> None:
        self.prepared.close()

    def __enter__(self) -> "Reward":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
