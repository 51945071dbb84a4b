"""A Gymnasium environment: one task per episode, the model's code as the action, the
verifier's feedback as the next observation (needs the `train` extra: ``gymnasium``).

    from regrow.integrations.gym import RegrowEnv
    env = RegrowEnv("pypi:toolz==1.0.0", max_turns=3)
    obs, info = env.reset(options={"task_id": "toolz.itertoolz:frequencies"})
    obs, reward, terminated, truncated, info = env.step(model(obs))

``reset`` shows the task's prompt (system and user messages as `regrow export --format grpo`
builds them, joined as text; ``info["messages"]`` has them as chat messages); without a
``task_id`` it draws one of the source's valid tasks with the env's seeded generator. ``step``
verifies the action as the body (read like a model's answer: a fenced block or plain code):
the reward is ``Reward.value(verdict)`` (1.0 when solved, else 0.0, under the default spec);
``terminated`` when solved, otherwise the feedback becomes the observation; ``truncated``
once ``max_turns`` answers were given. ``info`` carries the verdict's figures.
"""

from __future__ import annotations

import re
import string

import gymnasium
from gymnasium import spaces

from regrow.config import RunConfig
from regrow.integrations._shared import cached_reward
from regrow.reward import Reward
from regrow.solve.prompt import build_messages

__all__ = ["RegrowEnv"]

MAX_CHARS = 1 << 16
REPLACEMENT = "\ufffd"  # what a character outside the observation's charset reads as
# A traceback in the feedback names the warm worker's private copy (a fresh temporary folder per
# worker); shown relative to the copy, the same answer gives the same observation on any worker.
_WORKER_COPY = re.compile(r"[^\s\"']*?regrow-engine-[A-Za-z0-9_]+[/\\]src[/\\]")


def _messages_text(messages: list[dict]) -> str:
    return "\n\n".join(m["content"] for m in messages)


class RegrowEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(self, source: str | Reward, config: RunConfig | None = None, *, home=None,
                 max_turns: int = 3, max_chars: int = MAX_CHARS):
        self.reward = source if isinstance(source, Reward) else cached_reward(source, home, config)
        self.task_ids = sorted(self.reward.tasks)
        if not self.task_ids:
            raise ValueError(f"{self.reward.prepared.source.name} has no valid task")
        self.max_turns = max_turns
        self.max_chars = max_chars
        self._prompts = {tid: build_messages(self.reward.tasks[tid]) for tid in self.task_ids}
        # The charset is printable ASCII plus every character the prompts use, so a prompt is
        # shown exactly; a feedback character outside it reads as U+FFFD.
        chars = set(string.printable) | {REPLACEMENT}
        for messages in self._prompts.values():
            chars.update(_messages_text(messages))
        charset = "".join(sorted(chars))
        self.observation_space = spaces.Text(max_length=max_chars, min_length=0, charset=charset)
        self.action_space = spaces.Text(max_length=max_chars, min_length=0, charset=charset)
        self.task_id: str | None = None
        self.turn = 0

    def _fit(self, text: str) -> str:
        cs = self.observation_space.character_set
        text = _WORKER_COPY.sub("", text)[: self.max_chars]
        return "".join(c if c in cs else REPLACEMENT for c in text)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            task_id = self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        if task_id not in self.reward.tasks:
            raise KeyError(f"no valid task {task_id!r} in {self.reward.prepared.source.name}")
        self.task_id, self.turn = task_id, 0
        messages = self._prompts[task_id]
        return self._fit(_messages_text(messages)), {"task_id": task_id, "messages": messages}

    def step(self, action):
        if self.task_id is None:
            raise RuntimeError("call reset() before step()")
        self.turn += 1
        verdict = self.reward.score(self.task_id, str(action))
        terminated = bool(verdict.solved)
        truncated = not terminated and self.turn >= self.max_turns
        obs = "" if terminated else self._fit(verdict.feedback or f"Not solved ({verdict.status}).")
        info = {"task_id": self.task_id, "turn": self.turn, "status": verdict.status,
                "solved": verdict.solved, "tests_passed": verdict.tests_passed,
                "tests_total": verdict.tests_total, "similarity": verdict.func_similarity,
                "flags": list(verdict.flags)}
        return obs, float(self.reward.value(verdict)), terminated, truncated, info
