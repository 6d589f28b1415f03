"""Feeds downloading in a background thread, each handed over as it arrives.

:func:`~aggregator.fetch.fetch_all` runs in a thread of its own while the
refresh works through its sources in order: a source's outcome is waited for
only when its turn comes, and a hand-off (the ingest pool) can start parsing a
feed the moment its body is in, while the others still download.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import TracebackType

from .fetch import Limits, Outcome, Request, fetch_all
from .ingest import Ingested

__all__ = ["Downloads", "HandOff", "Taken"]

log = logging.getLogger(__name__)

Taken = tuple[Outcome, "Future[Ingested] | None"]
"""A source's fetch outcome, and its ingest under way elsewhere, if any."""

HandOff = Callable[[str, Outcome], "tuple[Outcome, Future[Ingested] | None]"]
"""Given a key and its outcome as it arrives (in the download thread): the
outcome to keep (a body handed to a worker need not be kept) and the worker's
future, or None to ingest it in the refresh's own thread."""


class Downloads:
    """Every request downloading at once; ``take(key)`` waits for that one.

    Use as a context manager: leaving it waits for the download thread.
    """

    def __init__(
        self, requests: Sequence[Request], limits: Limits, hand_off: HandOff | None = None
    ) -> None:
        self._hand_off = hand_off
        self._waiting: dict[str, Future[Taken]] = {r.key: Future() for r in requests}
        self._thread = threading.Thread(
            target=self._run, args=(requests, limits), name="downloads", daemon=True
        )
        if requests:
            self._thread.start()

    def __contains__(self, key: str) -> bool:
        return key in self._waiting

    def take(self, key: str) -> Taken:
        """Wait for this request's outcome; each key can be taken once.

        Raises:
            KeyError: no such request, or it was taken already.
        """
        taken = self._waiting[key].result()
        del self._waiting[key]  # only once set: its body need not be held any longer
        return taken

    def _run(self, requests: Sequence[Request], limits: Limits) -> None:
        try:
            fetch_all(requests, limits, self._arrived)
        except BaseException as exc:  # handed to every waiting source, never lost
            for waiting in list(self._waiting.values()):
                if not waiting.done():
                    waiting.set_exception(exc)

    def _arrived(self, key: str, outcome: Outcome) -> None:
        taken: Taken = (outcome, None)
        if self._hand_off is not None:
            try:
                taken = self._hand_off(key, outcome)
            except Exception:  # the refresh thread ingests it instead
                log.exception("cannot hand %s over to a worker", key)
        waiting = self._waiting.get(key)
        if waiting is not None and not waiting.done():
            waiting.set_result(taken)

    def __enter__(self) -> Downloads:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._thread.is_alive():
            self._thread.join()
