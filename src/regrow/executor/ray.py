"""The Ray backend of the `Executor` seam: one host actor per node, work routed, lost nodes re-run.

`RayCluster` connects to a cluster (``ray.init``; ``ray`` is imported here only) and keeps one
`NodeHost` actor pinned to every live node. A host runs the functions it is sent on threads
(``slots`` at once) in one process, so what a function caches with `regrow.executor.node_local`
(a prepared source with its warm workers, a solver) is built once per node and reused by every
later item routed there.

`dispatch` is the one loop both users share (`RayExecutor.map` for chains, the service's
`ClusterScorer` for candidates): items go to the first node of their route with a free slot;
results come back as they finish; an item whose node died (its raylet killed, the machine
gone) or whose host crashed is put back at the head of the queue and runs on another node.
Each item gives exactly one result: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from regrow.errors import RegrowError
from regrow.executor import node_local_close, node_local_keys

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ClusterError", "RayCluster", "RayExecutor", "dispatch", "DispatchStats"]

# How many times one item may lose its node before the batch gives up on the cluster.
RETRIES = 3


class ClusterError(RegrowError):
    """The Ray cluster could not be reached, or it lost the nodes the work needed."""


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ClusterError("the Ray executor needs the `ray` extra: pip install 'regrow[ray]'") from exc
    return ray


def _regrow_path() -> str:
    """The folder holding the ``regrow`` package this process imported, so workers started by
    a cluster on this machine import the same code (elsewhere regrow must be installed)."""
    here = Path(__file__).resolve().parents[2]
    rest = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([str(here), rest]) if rest else str(here)


def connect(address: str | None) -> None:
    """``ray.init`` once per process: ``address`` None finds a running cluster (RAY_ADDRESS, one
    started on this machine) or starts a local one; ``host:port`` (the head's GCS address, what
    `ray start --head` prints) joins that one as a driver."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ClusterError(f"a Ray address is host:port (got {address!r})")
        try:  # Ray itself retries an unreachable address for minutes before it says so
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as exc:
            raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; "
                               "is `ray start --head` running there?") from exc
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {"PYTHONPATH": _regrow_path()}})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address or 'auto'}: {str(exc).splitlines()[0]}") \
            from exc


def _host_class():
    ray = _ray()

    @ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)
    class NodeHost:
        """One per node: runs what it is sent on threads; its process holds the node's warm objects."""

        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

        def call(self, fn: Callable[[Any], Any], item: Any) -> Any:
            return fn(item)

        def warm(self) -> list[str]:
            return [repr(k) for k in node_local_keys()]

        def close(self) -> int:
            return node_local_close()

    return NodeHost


class RayCluster:
    """A connection and one pinned host actor per live node (``slots`` calls at once each)."""

    def __init__(self, address: str | None = None, *, slots: int = 2):
        connect(address)
        self.slots = max(1, int(slots))
        self.hosts: dict[str, Any] = {}
        self.dead: set[str] = set()
        self._cls = _host_class()
        self.refresh()

    def refresh(self) -> list[str]:
        """The live nodes (a host started on each new one); nodes seen dead never come back under
        the same id (a restarted node joins with a new one)."""
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")} - self.dead
        for node in list(self.hosts):
            if node not in alive:
                self.hosts.pop(node)
        for node in sorted(alive - set(self.hosts)):
            self.hosts[node] = self._cls.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                max_concurrency=self.slots).remote()
        return sorted(self.hosts)

    def nodes(self) -> list[str]:
        return sorted(self.hosts)

    def lost(self, node: str) -> bool:
        """Forget ``node``'s host after a call to it failed. True when the node itself is gone
        (then it is never used again); False when only its host died (a new one is started
        there, which builds the node's warm objects again)."""
        ray = _ray()
        self.hosts.pop(node, None)
        alive = any(n["NodeID"] == node and n.get("Alive") for n in ray.nodes())
        if not alive:
            self.dead.add(node)
        self.refresh()
        return not alive

    def warm(self) -> dict[str, list[str]]:
        """Node → the keys its host holds warm (for reports and tests)."""
        ray = _ray()
        refs = {node: host.warm.remote() for node, host in self.hosts.items()}
        out = {}
        for node, ref in refs.items():
            try:
                out[node] = ray.get(ref, timeout=30)
            except ray.exceptions.RayError:
                out[node] = []
        return out

    def close(self) -> None:
        """Close every host's warm objects (their workers stop), then end the hosts."""
        ray = _ray()
        refs = [(h, h.close.remote()) for h in self.hosts.values()]
        for host, ref in refs:
            try:
                ray.get(ref, timeout=60)
            except ray.exceptions.RayError:
                pass
            ray.kill(host)
        self.hosts.clear()


_NODE_LOST = ("RayActorError", "NodeDiedError", "WorkerCrashedError", "ObjectLostError",
              "ActorUnschedulableError", "TaskUnschedulableError", "TaskCancelledError")


def _node_lost(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return "RayTaskError" not in names and bool(names & set(_NODE_LOST))


@dataclass
class DispatchStats:
    """What one dispatch did: results per node, items re-run after their node was lost."""

    per_node: Counter = field(default_factory=Counter)
    rerun: int = 0
    lost_nodes: list[str] = field(default_factory=list)


def dispatch(cluster: RayCluster, fn: Callable[[T], R], items: Iterable[T], *,
             route: Callable[[T, list[str]], list[str]] | None = None,
             stats: DispatchStats | None = None) -> Iterator[tuple[int, T, R, str]]:
    """(index, item, fn(item), node) for every item, in the order they finish.

    ``items`` is read lazily, as slots free up. ``route(item, live_nodes)`` orders the nodes an
    item may run on (default: every node, least loaded first); when none of its nodes is alive
    any node may take it. An exception of ``fn`` is raised here; a lost node's items run again.
    """
    ray = _ray()
    stats = stats if stats is not None else DispatchStats()
    fn_ref = ray.put(fn)
    fresh = iter(enumerate(items))
    queue: deque[tuple[int, T]] = deque()
    inflight: dict[Any, tuple[int, T, str, Any]] = {}  # ref → index, item, node, the host called
    load: Counter = Counter()
    losses: Counter = Counter()
    done: set[int] = set()
    exhausted = False

    def place(item: T, nodes: list[str]) -> str | None:
        order = route(item, nodes) if route is not None else []
        order = [n for n in order if n in cluster.hosts] or sorted(nodes, key=lambda n: load[n])
        return next((n for n in order if load[n] < cluster.slots), None)

    def send(idx: int, item: T, node: str) -> None:
        host = cluster.hosts[node]
        inflight[host.call.remote(fn_ref, item)] = (idx, item, node, host)
        load[node] += 1

    def fill() -> None:
        nonlocal exhausted
        nodes = cluster.nodes()
        if not nodes:
            raise ClusterError("no live node in the Ray cluster" +
                               (f" (lost {len(cluster.dead)})" if cluster.dead else ""))
        kept: deque[tuple[int, T]] = deque()
        while queue:
            idx, item = queue.popleft()
            node = place(item, nodes)
            if node is None:
                kept.append((idx, item))
                continue
            send(idx, item, node)
        queue.extend(kept)
        while not exhausted and sum(load.values()) < cluster.slots * len(nodes):
            try:
                idx, item = next(fresh)
            except StopIteration:
                exhausted = True
                break
            node = place(item, nodes)
            if node is None:
                queue.append((idx, item))
                break
            send(idx, item, node)

    try:
        fill()
        while inflight or queue or not exhausted:
            if not inflight:
                fill()
                if not inflight:  # routed items wait for nodes that have none free: should not happen
                    time.sleep(0.05)
                    continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                idx, item, node, host = inflight.pop(ref)
                load[node] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # fn raised: its own exception, as raised there
                    cause = exc.cause
                    if isinstance(cause, BaseException) and not isinstance(cause, ray.exceptions.RayError):
                        raise cause from None
                    raise ClusterError(f"a call on node {node[:8]} failed: {str(cause).splitlines()[0]}") from exc
                except ray.exceptions.RayError as exc:
                    if not _node_lost(exc):
                        raise ClusterError(f"Ray failed: {str(exc).splitlines()[0]}") from exc
                    # the first failure of a host decides; its other calls only come back here
                    if cluster.hosts.get(node) is host and cluster.lost(node) and node not in stats.lost_nodes:
                        stats.lost_nodes.append(node)
                    losses[idx] += 1
                    if losses[idx] > RETRIES:
                        raise ClusterError(f"item {idx} lost its node {losses[idx]} times; giving up") from exc
                    stats.rerun += 1
                    queue.appendleft((idx, item))
                    continue
                if idx in done:  # cannot happen with Ray's at-most-once actor calls; guard anyway
                    continue
                done.add(idx)
                stats.per_node[node] += 1
                yield idx, item, result, node
            fill()
    finally:
        for ref in inflight:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


class RayExecutor:
    """`Executor` over a Ray cluster: ``fn`` is pickled once per `map` and runs in the host actor
    of a node (``slots`` at once per node); with `node_local` it reuses that node's warm objects."""

    remote = True

    def __init__(self, address: str | None = None, *, slots: int = 2, cluster: RayCluster | None = None):
        self.address = address
        self.slots = slots
        self._cluster = cluster
        self.stats = DispatchStats()

    @property
    def cluster(self) -> RayCluster:
        if self._cluster is None:
            self._cluster = RayCluster(self.address, slots=self.slots)
        return self._cluster

    def map(self, fn: Callable[[T], R], items: Iterable[T], *,
            route: Callable[[T, list[str]], list[str]] | None = None) -> Iterator[tuple[T, R]]:
        for _idx, item, result, _node in dispatch(self.cluster, fn, items, route=route, stats=self.stats):
            yield item, result

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
