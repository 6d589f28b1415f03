"""Fetched feeds and read entries -> items ready to store, with their clustering features.

This is the CPU-bound half of a refresh: parse, normalise, extract the
clusterer's features. Each feed's is independent of every other's, so a big
refresh runs it in worker processes (:class:`IngestPool`) while feeds are still
downloading, and the main process stores what comes back. Pure, like the
stages it calls: no I/O, no clock.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType

from .cluster import ClusterSettings, encoded_features
from .dedupe import unique
from .errors import ParseError
from .model import Entry, Item, Source
from .normalize import normalize, with_feed_language
from .parse import parse_feed

__all__ = [
    "MAX_WORKERS",
    "MIN_POOLED_FEEDS",
    "Body",
    "IngestPool",
    "Ingested",
    "ingest",
    "ingest_feed",
]


@dataclass(frozen=True, slots=True)
class Ingested:
    """One source's items, deduplicated within it, and their encoded features by item id."""

    items: tuple[Item, ...]
    features: Mapping[str, bytes]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Body:
    """A downloaded feed document: its bytes, final URL and response headers."""

    content: bytes
    url: str
    headers: Mapping[str, str]


def ingest(
    entries: Sequence[Entry],
    now: datetime,
    settings: ClusterSettings,
    warnings: tuple[str, ...] = (),
) -> Ingested:
    """Normalise *entries* (read at *now*), drop repeats, extract their features."""
    items = tuple(unique(normalize(entry, now) for entry in entries))
    features = {item.id: encoded_features(item, settings) for item in items}
    return Ingested(items, features, warnings)


def ingest_feed(source: Source, body: Body, now: datetime, settings: ClusterSettings) -> Ingested:
    """Parse a downloaded feed and ingest its entries.

    Raises:
        ParseError: the body is not a feed, or nothing usable came out of it.
    """
    parsed = parse_feed(body.content, source=source.key, origin=body.url, headers=body.headers)
    if not parsed.entries and parsed.warnings:
        raise ParseError(body.url, f"feed is broken ({parsed.warnings[0]})")
    entries = tuple(
        replace(e, outlet=source.name) if source.name and e.outlet == parsed.title else e
        for e in parsed.entries
    )
    return ingest(with_feed_language(entries), now, settings, parsed.warnings)


# A pool costs each worker ~0.5 s of start-up and model loading (in parallel
# with the downloads): worth it when there is more than that to parse. One
# 25-item feed takes ~10 ms to ingest, so 20 feeds is about where they meet.
MIN_POOLED_FEEDS = 20
# Ingesting is CPU-bound and the main process stores as it goes; each worker
# holds the language and word-frequency models (~130 MB), so a few are plenty.
MAX_WORKERS = 4


class IngestPool:
    """Worker processes that ingest fetched feeds, as a context manager.

    The workers are forked from a fork server that loaded the language and
    word-frequency models once (``ingest_preload``), so they share those pages
    instead of each loading its own copy. A worker that dies fails only the
    futures it was given; the caller can ingest those feeds itself.
    """

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["aggregator.ingest_preload"])
        self._pool = ProcessPoolExecutor(workers, mp_context=context)

    @classmethod
    def for_feeds(cls, feeds: int) -> IngestPool | None:
        """A pool sized for *feeds* full downloads, or None when too few to pay for one."""
        if feeds < MIN_POOLED_FEEDS:
            return None
        return cls(max(1, min(os.cpu_count() or 1, MAX_WORKERS)))

    def submit(
        self, source: Source, body: Body, now: datetime, settings: ClusterSettings
    ) -> Future[Ingested]:
        return self._pool.submit(ingest_feed, source, body, now, settings)

    def __enter__(self) -> IngestPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
