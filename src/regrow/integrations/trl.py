"""A reward function for TRL's `GRPOTrainer`: each completion verified in regrow's sandbox.

    from regrow.integrations.trl import RegrowReward
    reward = RegrowReward(".regrow", "pypi:toolz==1.0.0")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=grpo_rows, args=...)

The dataset is `regrow export ... --format grpo` (its ``task_id`` column reaches the function
as a keyword, as TRL passes every extra column). Standard (text) and conversational
completions are both read; of a conversational one, the last assistant message is the answer.
The call is ``async`` (TRL awaits async reward functions on its own event loop): the batch's
completions are verified concurrently over the verifier's warm workers. A completion of a task
none of the sources has gets ``None`` (TRL reads it as NaN, "no reward from this function").
Each batch's verdict counts go to TRL's ``log_metric`` (``regrow/solved`` ... as fractions of the
batch); the running totals stay in ``RegrowReward.counts``. Nothing of TRL is imported here.

With a reward service (`regrow serve`), ``RegrowReward(url="http://host:8000")`` (or the
``REGROW_REWARD_URL`` environment variable, when no prepared `Reward` is given) scores each batch
over HTTP instead of preparing the sources in the trainer; ``api_key`` (or ``REGROW_API_KEY``)
when the service needs one, ``spec`` the `RewardSpec` applied to the returned verdicts.

`RegrowToolEnv` is the multi-turn form, for ``GRPOTrainer(environment_factory=...)``: the model
answers by calling the ``submit`` tool with a body, reads the failing tests' feedback, and may
submit again (up to ``max_turns``); the episode's reward is ``get_reward()``. It is a
`RegrowEnv` (gym.py) underneath, so it needs the `train` extra's ``gymnasium``.

    from functools import partial
    from regrow.integrations.trl import RegrowToolEnv
    trainer = GRPOTrainer(model=..., environment_factory=partial(RegrowToolEnv, "pypi:toolz==1.0.0"),
                          train_dataset=grpo_rows, args=...)
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from regrow.config import RunConfig
from regrow.core.verdict import Verdict
from regrow.integrations._shared import KEY_ENV, cached_reward, completion_text, reward_url, workers_of
from regrow.reward import Reward, RewardSpec

__all__ = ["RegrowReward", "RegrowToolEnv"]


class RegrowReward:
    """``await reward(prompts, completions, task_id=[...]) -> list[float | None]``."""

    __name__ = "regrow"  # the name TRL logs the reward under (rewards/regrow/mean)

    def __init__(self, home: str | Path | None = None, *sources: str | Reward, config: RunConfig | None = None,
                 url: str | None = None, api_key: str | None = None, spec: RewardSpec | None = None):
        self.counts: Counter = Counter()
        self.calls = 0
        self._lock = threading.Lock()
        self.remote = None
        if url is None and not any(isinstance(s, Reward) for s in sources):
            url = reward_url()
        if url is not None:
            from regrow.service.client import RemoteReward  # httpx: the `serve` extra

            self.remote = RemoteReward(url, api_key or os.environ.get(KEY_ENV) or None, spec=spec)
            self.rewards: list[Reward] = []
            self._pool = None
            return
        if not sources:
            raise ValueError("RegrowReward needs at least one source (a spec, or a prepared Reward), or the "
                             "url of a reward service")
        self.rewards = [s if isinstance(s, Reward) else cached_reward(s, home, config) for s in sources]
        self._pool = ThreadPoolExecutor(max_workers=sum(workers_of(r) for r in self.rewards),
                                        thread_name_prefix="regrow-reward")

    def reward_for(self, task_id: str, source: str | None = None) -> Reward | None:
        """The `Reward` that has ``task_id`` (of the source named ``source`` when two have it)."""
        having = [r for r in self.rewards if task_id in r.tasks]
        if source is not None and len(having) > 1:
            having = [r for r in having if r.prepared.source.name == source] or having
        return having[0] if having else None

    def score_batch(self, task_ids, completions, sources=None) -> list[Verdict | None]:
        """The verdicts of a batch (None for a task no source has), verified concurrently."""
        sources = list(sources) if sources is not None else [None] * len(task_ids)
        if self.remote is not None:
            verdicts = self.remote.score_batch([{"task_id": str(tid), "completion": completion_text(c), "source": src}
                                                for tid, c, src in zip(task_ids, completions, sources, strict=True)])
            self._count(verdicts)
            return verdicts
        jobs = []
        for tid, completion, src in zip(task_ids, completions, sources, strict=True):
            reward = self.reward_for(str(tid), src)
            text = completion_text(completion)
            jobs.append(None if reward is None else self._pool.submit(reward.score, str(tid), text))
        verdicts = [None if j is None else j.result() for j in jobs]
        self._count(verdicts)
        return verdicts

    async def __call__(self, prompts, completions, task_id=None, log_metric=None, source=None,
                       **kwargs) -> list[float | None]:
        if task_id is None:
            raise ValueError("RegrowReward needs the dataset's `task_id` column (regrow export --format grpo)")
        verdicts = await asyncio.get_running_loop().run_in_executor(
            None, self.score_batch, list(task_id), list(completions), source)
        if log_metric is not None:
            n = max(1, len(verdicts))
            batch = _tally(verdicts)
            for key in ("solved", "failed", "malformed", "flagged", "unknown_task"):
                log_metric(f"regrow/{key}", batch.get(key, 0) / n)
        srcs = list(source) if source is not None else [None] * len(verdicts)
        return [None if v is None else float(self._value(v, str(t), s))
                for v, t, s in zip(verdicts, task_id, srcs, strict=True)]

    def _value(self, verdict: Verdict, task_id: str, source: str | None) -> float:
        if self.remote is not None:
            return self.remote.value(verdict)
        return self.reward_for(task_id, source).value(verdict)

    def _count(self, verdicts) -> None:
        with self._lock:
            self.calls += 1
            self.counts.update(_tally(verdicts))

    def close(self) -> None:
        """Stop the threads (the `Reward`s are the process's, closed at exit or by their owner)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        if self.remote is not None:
            self.remote.close()


def _tally(verdicts) -> Counter:
    counts: Counter = Counter()
    for v in verdicts:
        if v is None:
            counts["unknown_task"] += 1
            continue
        counts["scored"] += 1
        counts["solved" if v.solved else ("malformed" if v.status == "malformed" else "failed")] += 1
        if v.flags:
            counts["flagged"] += 1
    return counts


SUBMIT_NOTE = ("Answer by calling the `submit` tool with the function's body; it runs the tests and "
               "returns the failures, so you can submit again.")


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(str(m.get("content") or "") for m in prompt or () if isinstance(m, dict))


class RegrowToolEnv:
    """One rollout of one task for TRL's ``environment_factory``: ``reset(**row)``, the ``submit``
    tool, ``get_reward()``. TRL makes every public method a tool, so only ``submit`` is public
    besides those two."""

    def __init__(self, source: str | Reward, config: RunConfig | None = None, *, home=None,
                 max_turns: int = 3):
        from regrow.integrations.gym import RegrowEnv  # gymnasium: the `train` extra

        self._env = RegrowEnv(source, config, home=home, max_turns=max_turns)
        self._clear()

    def _clear(self) -> None:
        self._value = 0.0
        self._solved = False
        self._done = False

    def reset(self, task_id=None, prompt=None, **_) -> str:
        """Start a rollout of ``task_id`` (the dataset row's column, as TRL passes every column).
        Returns the task's prompt, or only how to answer when the row's prompt already shows it."""
        self._clear()
        observation, info = self._env.reset(options={"task_id": None if task_id is None else str(task_id)})
        user = info["messages"][-1]["content"]
        if prompt is not None and user.strip() and user.strip() in _prompt_text(prompt):
            return SUBMIT_NOTE
        return observation + "\n\n" + SUBMIT_NOTE

    def submit(self, body: str) -> str:
        """Submit the function's body; the covering tests run on it.

        Args:
            body: The body of the function (the code under its `def` line), as text.

        Returns:
            "solved" when every covering test passes, otherwise the failing tests' output.
        """
        if self._env.task_id is None:
            raise RuntimeError("call reset() before submit()")
        if self._done:
            return "solved" if self._solved else "No attempts left."
        feedback, value, terminated, truncated, _ = self._env.step(body)
        self._value, self._solved = value, terminated
        self._done = terminated or truncated
        if terminated:
            return "solved"
        return feedback + ("\n\nNo attempts left." if truncated else "")

    def get_reward(self) -> float:
        """The reward of the rollout's last submission (0.0 when nothing was submitted)."""
        return float(self._value)
