"""The `Executor` seam: run one function over many items, results as they finish.

`ThreadExecutor` (the default) runs them on threads of this process: regrow's work is model
calls and sandboxed subprocesses, so threads overlap it fully. A distributed backend (Ray)
will implement the same `map`. Every stage that fans work out (the solve phase, validation)
goes through it, so swapping the backend is one argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Executor", "ThreadExecutor"]


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """(item, fn(item)) for every item, in the order they finish. An exception of ``fn``
        is raised from the iterator; leaving it early (an interrupt) cancels what has not started."""
        ...


class ThreadExecutor:
    """``workers`` threads of this process."""

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
