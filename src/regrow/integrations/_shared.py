"""What the adapters share: one `Reward` per (source, home) in the process, one `RemoteReward`
per service URL, and completion text."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from regrow.config import RunConfig, resolve_config
from regrow.reward import Reward

_LOCK = threading.Lock()
_REWARDS: dict[tuple[str, str], Reward] = {}
_REMOTES: dict[tuple[str, str | None], object] = {}

URL_ENV = "REGROW_REWARD_URL"  # the reward service (`regrow serve`); unset: verify in this process
KEY_ENV = "REGROW_API_KEY"  # its API key, when it needs one


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


def reward_url(explicit: str | None = None) -> str | None:
    """The reward service's URL: ``explicit`` when given, else ``REGROW_REWARD_URL``, else None."""
    return explicit or os.environ.get(URL_ENV) or None


def remote_reward(url: str, api_key: str | None = None):
    """The process's `RemoteReward` for ``url`` (the key: ``api_key`` or ``REGROW_API_KEY``)."""
    from regrow.service.client import RemoteReward  # httpx: the `serve` extra

    key = api_key or os.environ.get(KEY_ENV) or None
    with _LOCK:
        remote = _REMOTES.get((url, key))
        if remote is None:
            remote = _REMOTES[(url, key)] = RemoteReward(url, key)
        return remote


def close_all() -> None:
    """Close every cached `Reward` (their warm workers) and service client; the next call
    prepares (or connects) again."""
    with _LOCK:
        rewards = list(_REWARDS.values())
        remotes = list(_REMOTES.values())
        _REWARDS.clear()
        _REMOTES.clear()
    for reward in rewards:
        reward.close()
    for remote in remotes:
        remote.close()


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
