"""Fetched feeds and read entries -> items ready to store, with their clustering features.

This is the CPU-bound half of a refresh: parse, normalise, extract the
clusterer's features. Each feed's is independent of every other's, so a big
refresh runs it in worker processes (``workers.py``) while feeds are still
downloading, and the main process stores what comes back. Pure, like the
stages it calls: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from .cluster import ClusterSettings, encoded_features
from .dedupe import unique
from .errors import ParseError
from .model import Entry, Item, Source
from .normalize import normalize, with_feed_language
from .parse import parse_feed

__all__ = ["Body", "Ingested", "ingest", "ingest_feed"]


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
