"""What the adapters share: one `Reward` per (source, home) in the process, and completion text."""

from __future__ import annotations

import threading
from pathlib import Path

from regrow.config import RunConfig, resolve_config
from regrow.reward import Reward

_LOCK = threading.Lock()
_REWARDS: dict[tuple[str, str], Reward] = {}


def config_for(home: str | Path | None = None, base: RunConfig | None = None) -> RunConfig:
    """``base`` (or defaults → [tool.regrow] → REGROW_*), with ``home`` when one is given."""
    config = base or resolve_config({})
    if home is not None:
        config = config.model_copy(update={"home": Path(home).resolve()})
    return config


def cached_reward(source: str, home: str | Path | None = None, base: RunConfig | None = None) -> Reward:
    """The process's `Reward` for ``source`` under ``home``: prepared on first use, then reused
    (preparing starts the warm workers; doing it per call would cost seconds per completion)."""
    config = config_for(home, base)
    key = (source, str(Path(config.home).resolve()))
    with _LOCK:
        reward = _REWARDS.get(key)
        if reward is None:
            reward = _REWARDS[key] = Reward(source, config)
        return reward


def close_all() -> None:
    """Close every cached `Reward` (their warm workers); the next call prepares again."""
    with _LOCK:
        rewards = list(_REWARDS.values())
        _REWARDS.clear()
    for reward in rewards:
        reward.close()


def completion_text(completion) -> str:
    """The answer's text: a string as it is; a conversational completion (a list of messages)
    gives its last assistant message's content."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    for message in reversed(list(completion)):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            if isinstance(content, list):  # multimodal parts: keep the text ones
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def workers_of(reward: Reward) -> int:
    """How many candidates ``reward`` verifies at once (its verifier's warm workers)."""
    return max(1, int(reward.prepared.verifier.config.workers))
