"""The reward: one call from a completion to a `Verdict`, for every trainer adapter.

    from regrow.reward import Reward
    with Reward("pypi:toolz==1.0.0") as reward:
        verdict = reward.score("toolz.itertoolz:frequencies", completion_text)
        verdict.reward  # 1.0 when every covering test passed and no integrity check fired

The source is prepared once (environment, grok, validated tasks, warm workers); each `score`
extracts the body from the completion the way a model's answer is read in a run (a fenced
block, prose around code, or a plain continuation of the function) and verifies it in the
sandbox. How the reward is computed is in docs/metrics.md.
"""

from __future__ import annotations

from regrow.api import Hooks, Prepared, prepare
from regrow.config import RunConfig, resolve_config
from regrow.core.task import Task
from regrow.core.verdict import Verdict
from regrow.errors import ConfigError
from regrow.solve.loop import extract
from regrow.solve.types import Completion

__all__ = ["Reward"]


class Reward:
    """Scores completions for the valid tasks of one source."""

    def __init__(self, source: str, config: RunConfig | None = None, hooks: Hooks = Hooks()):
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

    def close(self) -> None:
        self.prepared.close()

    def __enter__(self) -> "Reward":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
