"""The same item twice, and the same article syndicated in two feeds.

Pure. An item is the same as one already known when it has the same GUID in
the same source, the same canonical URL, or the same normalised title and text
(its fingerprint). :func:`unique` drops repeats inside one batch;
:func:`decide` compares an item with what the store matched for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .model import Item

__all__ = ["Decision", "Known", "decide", "keys", "unique"]


class Decision(Enum):
    NEW = "new"  # store it and cluster it
    CHANGED = "changed"  # an edit of a stored item: update in place, keep its id
    UNCHANGED = "unchanged"  # seen before, nothing to do
    DUPLICATE = "duplicate"  # a copy of another source's item: stored once already


@dataclass(frozen=True, slots=True)
class Known:
    """What the store holds for an item matched by GUID, URL or fingerprint."""

    id: str
    source: str
    guid: str | None
    url: str | None
    fingerprint: str
    title: str
    updated: str | None  # ISO-8601, as stored


def keys(item: Item) -> tuple[str, ...]:
    """The keys by which two items are the same article, strongest first."""
    out = []
    if item.guid:
        out.append(f"guid\0{item.source}\0{item.guid}")
    if item.url:
        out.append(f"url\0{item.url}")
    out.append(f"fp\0{item.fingerprint}")
    return tuple(out)


def unique(items: Iterable[Item]) -> list[Item]:
    """Drop repeats within one batch, keeping the most recently modified copy.

    The first copy's position is kept, so the order of a feed survives.
    """
    slot_of: dict[str, int] = {}
    kept: list[Item | None] = []
    for item in items:
        slots = {slot_of[k] for k in keys(item) if k in slot_of}
        if not slots:
            index = len(kept)
            kept.append(item)
        else:
            index = min(slots)
            current = kept[index]
            assert current is not None
            for other in slots - {index}:
                kept[other] = None  # this item ties two earlier copies together
            if item.last_modified > current.last_modified:
                kept[index] = item
        for k in keys(item):
            slot_of[k] = index
    return [item for item in kept if item is not None]


def decide(item: Item, known: Known | None) -> Decision:
    """What to do with *item*, given the stored item it matched (if any)."""
    if known is None:
        return Decision.NEW
    if known.source != item.source:
        # Another source carries the same article (same URL, or the same text under
        # its own URL): a syndicated copy, stored once under the source seen first.
        # Only the source that owns an item may edit it, so two feeds that word
        # one article differently don't overwrite each other on every refresh.
        return Decision.DUPLICATE
    updated = item.updated.isoformat() if item.updated else None
    if known.fingerprint != item.fingerprint or known.title != item.title:
        if updated is not None and known.updated is not None and updated < known.updated:
            return Decision.UNCHANGED  # an older revision than the one stored
        return Decision.CHANGED
    return Decision.UNCHANGED
