"""The `Executor` seam: run one function over many items, results as they finish.

`ThreadExecutor` (the default) runs them on threads of this process: regrow's work is model
calls and sandboxed subprocesses, so threads overlap it fully. `RayExecutor`
(`regrow.executor.ray`, the ``ray`` extra) runs them in one host actor per node of a Ray
cluster. Every stage that fans work out (the solve phase, validation) goes through it, so
swapping the backend is one argument; `make_executor` reads the ``executor`` setting
(``threads``, ``ray`` or ``ray://ADDRESS``).

`node_local` is what "built once per node" means on both backends: a warm object (a prepared
source, a solver) cached in the process that runs the function, built once per key. With
threads that process is this one; with Ray it is the node's host actor, one per node.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from regrow.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Executor", "ThreadExecutor", "make_executor", "node_local", "node_local_close", "file_lock"]


class Executor(Protocol):
    remote: bool  # whether ``fn`` runs in other processes (then it must pickle and use `node_local`)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """(item, fn(item)) for every item, in the order they finish. An exception of ``fn``
        is raised from the iterator; leaving it early (an interrupt) cancels what has not started."""
        ...


class ThreadExecutor:
    """``workers`` threads of this process."""

    remote = False

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            pending = {pool.submit(fn, item): item for item in items}
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    item = pending.pop(fut)
                    yield item, fut.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    def close(self) -> None:
        return None


def parse_executor(setting: str) -> tuple[str, str | None]:
    """``threads`` → ("threads", None); ``ray`` → ("ray", None) (RAY_ADDRESS, a cluster started on
    this machine, else a new local one); ``ray://HOST:PORT`` → ("ray", "HOST:PORT"): the address
    `ray start --head` prints (its GCS, port 6379 by default); this process joins as a driver."""
    setting = (setting or "threads").strip()
    if setting == "threads":
        return "threads", None
    if setting == "ray":
        return "ray", None
    if setting.startswith("ray://") and len(setting) > len("ray://"):
        return "ray", setting[len("ray://"):]
    raise ConfigError(f"executor must be threads, ray or ray://ADDRESS (got {setting!r})")


def make_executor(setting: str, workers: int) -> "Executor":
    """The executor a setting names. ``workers``: threads for ``threads``; for Ray, functions in
    flight per node."""
    kind, address = parse_executor(setting)
    if kind == "threads":
        return ThreadExecutor(workers)
    from regrow.executor.ray import RayExecutor
    return RayExecutor(address, slots=workers)


# ------------------------------------------------------------------ built once per process (node)

_warm: dict[Any, Any] = {}
_building: dict[Any, threading.Lock] = {}
_warm_lock = threading.Lock()


def node_local(key: Any, build: Callable[[], T]) -> T:
    """The object cached under ``key`` in this process, built by ``build()`` the first time
    (concurrent callers of one key wait for the one build; a failed build is not cached)."""
    with _warm_lock:
        if key in _warm:
            return _warm[key]
        lock = _building.setdefault(key, threading.Lock())
    with lock:
        with _warm_lock:
            if key in _warm:
                return _warm[key]
        value = build()
        with _warm_lock:
            _warm[key] = value
            _building.pop(key, None)
        return value


def node_local_keys() -> list[Any]:
    with _warm_lock:
        return list(_warm)


def node_local_close() -> int:
    """Close (``.close()``) and forget every cached object; returns how many there were."""
    with _warm_lock:
        values = list(_warm.values())
        _warm.clear()
    for value in values:
        close = getattr(value, "close", None)
        if callable(close):
            close()
    return len(values)


@contextmanager
def file_lock(folder: Path, name: str) -> Iterator[None]:
    """An exclusive lock shared by the processes of one machine (``flock`` on a file under
    ``folder``): two nodes of one machine that share a home build a source one after the other,
    the second reusing what the first stored."""
    folder = Path(folder) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(name.encode()).hexdigest()[:16] + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
