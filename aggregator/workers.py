"""Worker processes for the CPU-bound parts of a big refresh.

A first refresh of 1,000 feeds spends most of its time parsing and
normalising, and each feed's work is independent of the others', so a pool of
processes does it while the main process fetches and stores. The workers are
forked from a fork server that loaded the language and word-frequency models
once (``ingest_preload``), so they share those pages instead of each loading a
copy, and none of them inherits the main process's threads or open database.
Leaving the pool stops the workers and the fork server, freeing the models.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import ParamSpec, TypeVar

__all__ = ["MAX_WORKERS", "MIN_POOLED_FEEDS", "WorkerPool"]

# A pool costs ~1 s to start (its fork server loads the models), in parallel
# with the downloads. Whole refreshes of 25-item feeds from bench/fetch_scale.py,
# in one process and with a pool: 20 feeds 1.4 s and 1.9 s, 50 feeds 2.4 s
# and 2.4 s, 100 feeds 4.6 s and 3.8 s, 200 feeds 6.8 s and 6.1 s.
MIN_POOLED_FEEDS = 50
# The work is CPU-bound and the main process has its own share of it; a few
# workers are plenty, and each costs memory of its own.
MAX_WORKERS = 4

P = ParamSpec("P")
R = TypeVar("R")


class WorkerPool:
    """A process pool as a context manager; leaving it waits for the workers.

    A worker that dies fails the futures it held with ``BrokenProcessPool``
    (and so does every later ``submit``); callers do that work themselves.
    """

    def __init__(self, workers: int, *, fork_server: bool = True) -> None:
        """*workers* processes, forked from the fork server with the models
        loaded, or (``fork_server=False``) each spawned fresh, for work that
        needs other modules than ingesting does."""
        self.workers = workers
        self._fork_server = fork_server
        if fork_server:
            server = multiprocessing.get_context("forkserver")
            server.set_forkserver_preload(["aggregator.ingest_preload"])
            self._pool = ProcessPoolExecutor(workers, mp_context=server)
        else:
            spawn = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=spawn)

    @classmethod
    def for_feeds(cls, feeds: int) -> WorkerPool | None:
        """A pool sized for *feeds* full downloads, or None when too few to pay
        for one, or when this process may not start any (a daemonic process,
        as the daemon's refresh process is, has no children)."""
        if feeds < MIN_POOLED_FEEDS or multiprocessing.current_process().daemon:
            return None
        return cls(max(1, min(os.cpu_count() or 1, MAX_WORKERS)))

    def submit(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn(*args)`` in a worker; *fn* and its arguments must pickle."""
        return self._pool.submit(fn, *args, **kwargs)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._fork_server:
            _stop_fork_server()


def _stop_fork_server() -> None:
    """Stop the fork server, which otherwise holds the models (~110 MB) for as
    long as this process lives; the next pool starts another. ``_stop`` is
    private (CPython's own tests use it, 3.8 to 3.14): without it, it stays."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if callable(stop):
        stop()
