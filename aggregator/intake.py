"""The sources of one refresh, stored in their order, each as soon as it is ready.

With a worker pool, :func:`~aggregator.fetch.fetch_all` calls an
:class:`Intake` with each outcome as it arrives: the body goes to a worker
(which parses, normalises and extracts features), and every source at the head
of the order whose work is done is stored there and then, on the download
thread. So results never pile up in memory (waiting for the last download held
~100 MB of items on bench/fetch_scale.py), and storing overlaps downloading,
while the order of the sources, which decides which of two syndicated copies
is kept, stays that of the config. On the same thread, too: storing from a
second one made every SQLite call wait for the GIL behind the downloads.

Downloads are faster than the workers, so without a bound the bodies waiting
for a worker pile up, in proportion to the number of feeds: 27 MB of the main
process's 73 MB at the end of the downloads of bench/fetch_scale.py.
:meth:`Intake.admit` holds each download back until fewer than ``backlog``
feeds are downloading or waiting for their worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import replace

from .fetch import Fetched, Outcome
from .ingest import Body, Ingested
from .model import Source, SourceResult

__all__ = ["BACKLOG", "Intake", "StoreOne", "Submit"]

log = logging.getLogger(__name__)

Submit = Callable[[Source, Body], "Future[Ingested]"]
"""Hands a body to a worker; may raise when the pool cannot take work."""
StoreOne = Callable[[Source, "Outcome | None", "Future[Ingested] | None"], SourceResult]
"""Stores one source, given its fetch outcome (None for a folder or a source
not fetched) and its ingest by a worker, if one has it; never raises for the
source's own problems."""

# Feeds downloading or waiting for a worker, at most: the fetch concurrency's
# 16 and a few feeds queued for each worker, so that none waits for work.
BACKLOG = 32


class Intake:
    """Stores *todo* in order through *store_one*; sources in *fetching* wait
    for their outcome, and for their worker when *submit* handed them over."""

    def __init__(
        self,
        todo: Sequence[Source],
        fetching: Collection[str],
        store_one: StoreOne,
        submit: Submit | None = None,
        progress: Callable[[int, int, Source], None] | None = None,
        backlog: int = BACKLOG,
    ) -> None:
        self.todo = todo
        self.fetching = fetching
        self.store_one = store_one
        self.submit = submit
        self.progress = progress
        self.results: list[SourceResult] = []
        self._by_key = {s.key: s for s in todo}
        self._outcomes: dict[str, Outcome] = {}
        self._pending: dict[str, Future[Ingested]] = {}
        self._failed: BaseException | None = None
        self._room = asyncio.Semaphore(backlog)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def admit(self) -> None:
        """``fetch_all``'s admission: wait while *backlog* feeds are downloading
        or waiting for their worker. Each admitted download is let go by its
        call to the intake, or once a worker has ingested its body.

        Raises what storing raised, if it did (a daemon stopping between two
        sources): no more downloads start, and ``fetch_all`` ends with it.
        """
        self._loop = asyncio.get_running_loop()
        await self._room.acquire()
        if self._failed is not None:
            raise self._failed

    def _let_go(self, _: object = None) -> None:
        """One admitted feed is done with: from any thread (a worker's future
        completes on the pool's), after ``fetch_all`` ended too."""
        loop = self._loop
        if loop is None:
            return  # nothing was admitted: fetch_all was not told of admit()
        with contextlib.suppress(RuntimeError):  # their loop closed: no one waits
            loop.call_soon_threadsafe(self._room.release)

    def __call__(self, key: str, outcome: Outcome) -> Outcome:
        """``fetch_all``'s callback: hand the body over, store what is ready.

        Returns the outcome for ``fetch_all`` to keep: without its body when a
        worker has it. The intake keeps the body until the source is stored,
        so a feed whose worker dies can still be read here.
        """
        kept = outcome
        future = None
        if self.submit is not None and isinstance(outcome, Fetched):
            try:
                body = Body(outcome.content, outcome.url, outcome.headers)
                future = self._pending[key] = self.submit(self._by_key[key], body)
                kept = replace(outcome, content=b"")
            except Exception:  # a pool that cannot run: this process ingests from here on
                log.exception("the ingest workers cannot take feeds; reading them here")
                self.submit = None
        if future is None:
            self._let_go()
        else:
            future.add_done_callback(self._let_go)
        self._outcomes[key] = outcome
        if self._failed is None:
            try:
                self._store(wait=False)
            except BaseException as exc:  # not into this callback: admit() and finish() raise it
                self._failed = exc
        return kept

    def finish(self, fetched: dict[str, Outcome]) -> list[SourceResult]:
        """Store every source not stored yet, waiting for the workers; the results
        in the order of the sources. *fetched* is what ``fetch_all`` returned."""
        if self._failed is not None:
            raise self._failed
        for key, outcome in fetched.items():
            self._outcomes.setdefault(key, outcome)
        self._store(wait=True)
        return self.results

    def _store(self, *, wait: bool) -> None:
        while len(self.results) < len(self.todo):
            source = self.todo[len(self.results)]
            outcome = pending = None
            if source.key in self.fetching:
                if source.key not in self._outcomes:
                    return  # still downloading (after fetch_all, never)
                pending = self._pending.get(source.key)
                if not wait and pending is not None and not pending.done():
                    return
                outcome = self._outcomes.pop(source.key)
                self._pending.pop(source.key, None)
            self.results.append(self.store_one(source, outcome, pending))
            if self.progress:
                self.progress(len(self.results), len(self.todo), source)
