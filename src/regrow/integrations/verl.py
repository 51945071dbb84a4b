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
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from regrow.errors import ConfigError
from regrow.integrations._shared import cached_reward, workers_of

__all__ = ["compute_score", "compute_score_batch", "SOURCE_ENV"]

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


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **_) -> dict:
    """One completion's reward: ``score`` (1.0 solved, else 0.0), ``solved``, ``tests_passed``,
    ``similarity`` (of the body to the reference)."""
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
