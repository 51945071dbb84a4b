"""verl's custom reward function: regrow's verdict as a rule reward. Imports nothing of verl.

    custom_reward_function.path=<site-packages>/regrow/integrations/verl.py
    custom_reward_function.name=compute_score            # naive reward manager: one call per item
    # or, with reward_model.reward_manager=batch:
    custom_reward_function.name=compute_score_batch      # one call per batch, fanned over threads

Rows come from `regrow export ... --format grpo`: ``ground_truth`` (``reward_model.ground_truth``)
is the task id. The source spec (what was given to `regrow export --tasks` / `regrow prepare`)
is ``extra_info["source"]`` when the row has it, else the ``REGROW_SOURCE`` environment
variable; the home is ``extra_info["home"]`` or the usual ``REGROW_HOME`` (default ``./.regrow``).
One `Reward` is prepared per (source, home) and kept for the life of the worker process.

With a reward service (`regrow serve`), nothing is prepared in the worker: set
``REGROW_REWARD_URL`` (or put ``reward_url`` in the row's extra_info) and every completion is
scored over HTTP (``REGROW_API_KEY`` when the service needs a key); the source is then only
needed when two served sources have the same task id.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from regrow.errors import ConfigError
from regrow.integrations._shared import URL_ENV, cached_reward, remote_reward, reward_url, workers_of

__all__ = ["compute_score", "compute_score_batch", "SOURCE_ENV", "URL_ENV"]

SOURCE_ENV = "REGROW_SOURCE"


def _source_and_home(extra_info: dict | None) -> tuple[str, str | None]:
    info = extra_info or {}
    source = info.get("source") or os.environ.get(SOURCE_ENV)
    if not source:
        raise ConfigError(f"no regrow source: set {SOURCE_ENV} (the spec the tasks were exported from) "
                          "or put `source` in the row's extra_info")
    return str(source), info.get("home")


def _result(verdict) -> dict:
    return {"score": float(verdict.reward), "solved": bool(verdict.solved),
            "tests_passed": int(verdict.tests_passed), "similarity": float(verdict.func_similarity or 0.0)}


def _url(extra_info: dict | None) -> str | None:
    return reward_url((extra_info or {}).get("reward_url"))


def _remote_source(extra_info: dict | None) -> str | None:
    """How the service is told the row's source: its content key (the same on every machine), else
    the spec; None leaves it to the service (the one source having the task)."""
    info = extra_info or {}
    return info.get("source_key") or info.get("source") or os.environ.get(SOURCE_ENV) or None


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **_) -> dict:
    """One completion's reward: ``score`` (1.0 solved, else 0.0), ``solved``, ``tests_passed``,
    ``similarity`` (of the body to the reference)."""
    url = _url(extra_info)
    if url is not None:
        return _result(remote_reward(url).score(str(ground_truth), solution_str, source=_remote_source(extra_info)))
    source, home = _source_and_home(extra_info)
    reward = cached_reward(source, home)
    return _result(reward.score(str(ground_truth), solution_str))


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **_) -> list[dict]:
    """verl's batch reward manager form: the same dicts, one per item, scored concurrently over
    the verifier's warm workers."""
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    items = list(zip(data_sources, solution_strs, ground_truths, extra_infos, strict=True))
    if not items:
        return []
    urls = {_url(info) for *_, info in items}
    if urls != {None}:
        return _remote_batch(items)
    # Prepare each source once, before the threads, so they never race to prepare it.
    rewards = {}
    for *_, info in items:
        key = _source_and_home(info)
        if key not in rewards:
            rewards[key] = cached_reward(*key)
    workers = max(workers_of(r) for r in rewards.values())

    def one(item):
        ds, text, gt, info = item
        return _result(rewards[_source_and_home(info)].score(str(gt), text))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(one, items))


def _remote_batch(items) -> list[dict]:
    """The batch over the reward service: one request per service URL (an item without one is an
    error: mixing in-process and remote scoring in one batch is never what was meant)."""
    by_url: dict[str, list[int]] = {}
    for i, (*_, info) in enumerate(items):
        url = _url(info)
        if url is None:
            raise ConfigError(f"some rows of the batch name a reward service ({URL_ENV} / extra_info['reward_url']) "
                              "and some do not")
        by_url.setdefault(url, []).append(i)
    out: list[dict | None] = [None] * len(items)
    for url, idx in by_url.items():
        rows = []
        for i in idx:
            _, text, gt, info = items[i]
            rows.append({"task_id": str(gt), "completion": text, "source": _remote_source(info)})
        for i, verdict in zip(idx, remote_reward(url).score_batch(rows), strict=True):
            if verdict is None:
                raise ConfigError(f"the reward service at {url} has no valid task {items[i][2]!r}")
            out[i] = _result(verdict)
    return out
