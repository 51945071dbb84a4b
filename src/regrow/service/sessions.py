"""Episodes of the environment endpoints: one `Session` per ``episode_id``, in memory.

An episode is one task: ``/reset`` opens it (the task's prompt), each ``/step`` verifies an
answer and returns the failing tests' feedback, until it is solved (terminated) or
``max_turns`` answers were given (truncated). It is the episode logic of
`regrow.integrations.gym.RegrowEnv`, kept here because the service sits below the integrations.
Sessions do not survive a restart; a step retried with its ``request_id`` is answered from the
session instead of being taken twice.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

from regrow.core.task import Task
from regrow.reward import Reward

__all__ = ["Session", "SessionTable", "Full"]


class Full(Exception):
    """Every session slot holds a live episode."""


@dataclass
class Session:
    episode_id: str
    reward: Reward
    task: Task
    max_turns: int
    turn: int = 0
    done: bool = False
    solved: bool = False
    value: float | None = None
    created: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    answered: dict[str, dict] = field(default_factory=dict)  # step request_id -> the response sent
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def source(self) -> str:
        return self.reward.prepared.source.name


class SessionTable:
    def __init__(self, limit: int, ttl: float):
        self.limit = limit
        self.ttl = ttl
        self.sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, episode_id: str) -> Session | None:
        session = self.sessions.get(episode_id)
        if session is not None:
            session.last = time.monotonic()
        return session

    def open(self, reward: Reward, task: Task, max_turns: int, episode_id: str | None = None) -> Session:
        """A fresh episode (``episode_id`` reused: that episode starts over)."""
        episode_id = episode_id or uuid.uuid4().hex
        if episode_id not in self.sessions and len(self.sessions) >= self.limit:
            self._evict()
        session = Session(episode_id=episode_id, reward=reward, task=task, max_turns=max_turns)
        self.sessions[episode_id] = session
        return session

    def _evict(self) -> None:
        now = time.monotonic()
        for eid in [e for e, s in self.sessions.items() if now - s.last > self.ttl]:
            del self.sessions[eid]
        if len(self.sessions) >= self.limit:  # then the longest-idle finished episode
            done = sorted((s.last, e) for e, s in self.sessions.items() if s.done and not s.lock.locked())
            if done:
                del self.sessions[done[0][1]]
        if len(self.sessions) >= self.limit:
            raise Full(f"{len(self.sessions)} episodes are open (the limit); finish one or wait for one "
                       f"to be idle {self.ttl:.0f} s")


def draw(n: int, seed: int | None) -> int:
    """An index below ``n`` drawn with ``seed`` (the same seed, the same draw), at random without one."""
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    return rng.randrange(n)
