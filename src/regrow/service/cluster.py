"""Verification over a Ray cluster: one warm engine per (node, source snapshot) (docs/scaling.md).

`ClusterScorer` is the distributed `Scorer`: ``score_batch(items) -> list[Verdict]``, in order,
like `LocalScorer`. Each node runs one host actor (`regrow.executor.ray`); a source's engine
there is a `regrow.reward.Reward` (environment, grok, validated tasks, warm workers), built once
per node on first use and kept for every later batch.

Placement: each source has ``replicas`` nodes (default every node), chosen by rendezvous
hashing of (source, node), so adding or losing a node moves only that node's share. A
candidate goes to the first of its source's nodes with a free slot, so it lands where the
source is already warm; when all of a source's nodes are gone, the next node in its ranking
builds it. A node lost mid-batch (its raylet killed, the machine gone) has its candidates
re-run on the others: every item gives exactly one verdict.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regrow.api import warm_key
from regrow.config import RunConfig, resolve_config
from regrow.core.verdict import Verdict
from regrow.errors import ConfigError
from regrow.executor import file_lock, node_local
from regrow.executor.ray import ClusterError, DispatchStats, RayCluster, dispatch
from regrow.service.scorer import ScoreItem

__all__ = ["ClusterScorer", "ScoreItem", "ClusterError"]


def _reward(spec: str, config: RunConfig):
    """This node's warm engine for ``spec``: built once per node (the host process), and once per
    machine when nodes share a home (the second waits on the lock and reuses the stored work)."""
    from regrow.reward import Reward

    def build():
        with file_lock(config.home, f"prepare {spec}"):
            return Reward(spec, config)

    return node_local(("reward", spec, warm_key(config)), build)


@dataclass(frozen=True)
class _Warm:
    """Build (or find) the engine on this node; what the driver needs to route to it."""

    config: RunConfig

    def __call__(self, item: tuple[str, str]) -> dict[str, Any]:
        spec, _node = item
        reward = _reward(spec, self.config)
        source = reward.prepared.source
        return {"spec": spec, "name": source.name, "key": source.key, "tasks": sorted(reward.tasks)}


@dataclass(frozen=True)
class _Score:
    """Verify one candidate on the node's warm engine for its source."""

    config: RunConfig

    def __call__(self, item: tuple[str, str, str]) -> Verdict:
        spec, task_id, completion = item
        return _reward(spec, self.config).score(task_id, completion)


def _absolute(spec: str) -> str:
    path = Path(spec).expanduser()
    return str(path.resolve()) if ":" not in spec and path.is_dir() else spec


def rank(spec: str, nodes: list[str]) -> list[str]:
    """Rendezvous (highest random weight) order of ``nodes`` for ``spec``: stable per pair, so a
    node joining or leaving moves only the sources that rank it first."""
    return sorted(nodes, key=lambda n: hashlib.sha256(f"{spec}\0{n}".encode()).digest(), reverse=True)


class ClusterScorer:
    """Scores completions for the valid tasks of ``sources`` on a Ray cluster.

    ``address``: None finds or starts a cluster (like ``ray.init()``), else ``host:port`` or
    ``ray://host:port``. ``replicas``: nodes per source (default every node). ``slots``:
    candidates in flight per node (default ``config.workers``). Every source is warmed on its
    nodes here, so the first batch does not pay for it.
    """

    def __init__(self, address: str | None = None, sources: list[str] | None = None,
                 config: RunConfig | None = None, *, replicas: int | None = None, slots: int | None = None):
        if not sources:
            raise ConfigError("ClusterScorer needs at least one source")
        self.config = config or resolve_config({})
        # A directory is sent to the nodes as an absolute path (their processes run elsewhere);
        # items may still name a source as it was given, or by its name.
        self.given = {_absolute(s): s for s in sources}
        self.specs = list(self.given)
        self.replicas = replicas
        self.cluster = RayCluster(address, slots=slots or self.config.workers)
        self.sources: dict[str, dict[str, Any]] = {}  # spec → name, key, tasks
        self.placement: dict[str, set[str]] = {s: set() for s in self.specs}  # spec → nodes holding it warm
        self.last = DispatchStats()  # the current (else the last) batch's dispatch, updated as it runs
        self.last_nodes: list[str] = []  # the node that gave each verdict of the last batch
        self._warm_all()

    # ------------------------------------------------------------------ placement
    def nodes_for(self, spec: str, live: list[str]) -> list[str]:
        ranked = rank(spec, live)
        return ranked[: self.replicas] if self.replicas else ranked

    def _warm_all(self) -> None:
        live = self.cluster.nodes()
        wanted = [(spec, node) for spec in self.specs for node in self.nodes_for(spec, live)]
        for _idx, _item, info, node in dispatch(self.cluster, _Warm(self.config), wanted,
                                                route=lambda item, _nodes: [item[1]]):
            self._learn(info, node)

    def _learn(self, info: dict[str, Any], node: str) -> None:
        spec = info["spec"]
        known = self.sources.get(spec)
        if known is not None and known["key"] != info["key"]:
            raise ClusterError(f"{spec}: node {node[:8]} holds snapshot {info['key']}, others {known['key']}; "
                               "every node must see the same source")
        self.sources[spec] = info
        self.placement[spec].add(node)

    def _spec_of(self, source: str) -> str:
        for spec in self.specs:
            if source in (spec, self.given[spec], self.sources.get(spec, {}).get("name")):
                return spec
        names = ", ".join(sorted(i["name"] for i in self.sources.values()))
        raise ConfigError(f"no source {source!r} on the cluster (serving {names})")

    # ------------------------------------------------------------------ scoring
    def score_batch(self, items: list[ScoreItem]) -> list[Verdict]:
        """One verdict per item, in order; candidates of a source go to nodes holding it warm."""
        work = []
        for item in items:
            spec = self._spec_of(item.source)
            if item.task_id not in self.sources[spec]["tasks"]:
                raise ConfigError(f"no valid task {item.task_id!r} in {self.sources[spec]['name']}")
            work.append((spec, item.task_id, item.completion))
        verdicts: list[Verdict | None] = [None] * len(work)
        nodes: list[str] = [""] * len(work)
        stats = DispatchStats()
        self.last, self.last_nodes = stats, nodes  # live while the batch runs
        route = lambda item, live: self.nodes_for(item[0], live)  # noqa: E731
        for idx, item, verdict, node in dispatch(self.cluster, _Score(self.config), work, route=route, stats=stats):
            verdicts[idx], nodes[idx] = verdict, node
            self.placement[item[0]].add(node)
        for node in stats.lost_nodes:
            for held in self.placement.values():
                held.discard(node)
        return verdicts  # type: ignore[return-value]  # dispatch gives every index exactly once

    def warm(self) -> dict[str, list[str]]:
        """Node → the engines its host holds (asked of the hosts themselves)."""
        return self.cluster.warm()

    def close(self) -> None:
        self.cluster.close()

    def __enter__(self) -> "ClusterScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
