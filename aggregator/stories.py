"""Stored items -> stored stories: runs the clusterer and the tagger over the state.

The clusterer (``cluster.py``) is pure; this module feeds it the stories of
the batch's window from the store, writes back what changed in one
transaction, and tags the stories whose members changed. A long-running
process passes a :class:`ClusterCache` so the index stays in memory between
refreshes instead of being loaded again each time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .cluster import Clusterer, IndexEntry, Signature, stored_features
from .config import Config
from .model import Item, Topic, TopicRule
from .store import SQLiteStore, StoryRow
from .story_index import Loader
from .topics import tag_story

__all__ = [
    "BATCH",
    "ClusterCache",
    "Clustered",
    "Saver",
    "StoryBatch",
    "cluster_new_items",
    "load_clusterer",
    "tag_items",
    "tag_stories",
]


@dataclass(frozen=True, slots=True)
class Clustered:
    """What clustering did: how many items it placed, which stories it changed."""

    placed: int = 0
    stories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoryBatch:
    """What one batch of clustering writes, in one transaction: the stories it
    made or changed, the items it placed, the stories it merged away."""

    members: list[tuple[str, str]]  # (item id, story id)
    rows: list[StoryRow]
    merged: list[tuple[str, str]]  # (absorbed story id, surviving story id)

    def save_to(self, store: SQLiteStore) -> int:
        """Write it; returns the state's new :meth:`~SQLiteStore.generation`.
        Writing a batch again, or again after later ones, leaves what writing
        them once in order leaves: every statement is an upsert or a move."""
        return store.save_clusters(self.members, self.rows, self.merged)


class Saver(Protocol):
    """Where the batches of one clustering run go, in order."""

    def save(self, batch: StoryBatch) -> None: ...

    def flush(self) -> int | None:
        """Once every batch handed over is committed: the generation the last
        one left, or None if none was handed over since the last flush."""
        ...


class _SaveHere:
    """Each batch written at once, by this process."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._generation: int | None = None

    def save(self, batch: StoryBatch) -> None:
        self._generation = batch.save_to(self.store)

    def flush(self) -> int | None:
        generation, self._generation = self._generation, None
        return generation


class ClusterCache:
    """A clusterer kept between refreshes by one process (the daemon).

    It is used again only while it still describes the state: when no other
    process (an ``aggregator refresh`` beside the daemon) has written stories
    since, when it holds every story the next batch may join, and while its
    oldest stories are less than two windows older than the batch needs, so
    memory stays bounded as time moves on.
    """

    def __init__(self) -> None:
        self.clusterer: Clusterer | None = None
        self.since: datetime | None = None
        self.generation: int | None = None

    def get(self, store: SQLiteStore, config: Config, since: datetime | None) -> Clusterer:
        clusterer = self.clusterer
        window = config.cluster.window
        usable = (
            clusterer is not None
            and self.generation == store.generation()
            and (self.since is None or (since is not None and self.since <= since))
            and (self.since is None or since is None or since - self.since < 2 * window)
        )
        if clusterer is None or not usable:
            clusterer = self.clusterer = load_clusterer(store, config, since)
            self.since = since
        clusterer.set_loader(_loader(store))
        return clusterer


def load_clusterer(store: SQLiteStore, config: Config, since: datetime | None) -> Clusterer:
    """A clusterer over the stored stories last dated at or after *since*."""
    return Clusterer(
        config.cluster,
        entries=map(IndexEntry.from_text, store.index_entries(since)),
        load=_loader(store),
    )


def _loader(store: SQLiteStore) -> Loader:
    def load(story_ids: Sequence[str]) -> dict[str, Signature]:
        return {
            sid: Signature.from_bytes(data) for sid, data in store.signatures(story_ids).items()
        }

    return load


def cluster_new_items(
    config: Config,
    store: SQLiteStore,
    cache: ClusterCache | None = None,
    saver: Saver | None = None,
) -> Clustered:
    """Put every item not yet in a story into one.

    Items go in publication order, ``BATCH`` at a time through one clusterer,
    each batch saved in one transaction: a first refresh of thousands of feeds
    never holds them all in memory, and clusters them as one batch would.
    Each batch is saved here, or handed to *saver* (``tagging.py`` writes and
    tags them in another process); clustering never reads back its own
    batches, so it need not wait for them until the end.
    """
    oldest, undated = store.unclustered_span()
    if oldest is None and not undated:
        return Clustered()
    with _cyclic_gc_paused():
        return _cluster_all(config, store, cache, oldest, undated, saver or _SaveHere(store))


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector, not reference counting, for a while.

    Clustering allocates hundreds of thousands of small containers and makes
    no reference cycles, yet each full collection walked every object of the
    loaded index: 15-20% of a cold batch at 100,000 stored stories
    (bench/cluster_scale.py). Memory is freed as before, by reference counts.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cluster_all(
    config: Config,
    store: SQLiteStore,
    cache: ClusterCache | None,
    oldest: datetime | None,
    undated: bool,
    saver: Saver,
) -> Clustered:
    # Only stories within the window of this batch can take its items; an
    # undated item may join a story of any date, so then every story is a candidate.
    since = oldest - config.cluster.window if oldest and not undated else None
    clusterer = cache.get(store, config, since) if cache else load_clusterer(store, config, since)
    placed = 0
    changed: dict[str, None] = {}  # ordered, without repeats
    spans: dict[str, tuple[datetime, datetime]] = {}  # of the stories saved this run
    seen: set[str] = set()  # the items clustered this run
    # The clusterer reads no more than text_chars of an item's text; a lead
    # is elected on whether its text reaches _FULL_REPORT_CHARS, well below.
    # Items stored meanwhile (by another process) are taken by the next pass,
    # once every batch of this one is written.
    while True:
        generation = saver.flush()
        if cache and generation is not None:
            cache.generation = generation
        # Never an item twice: one whose batch was not saved stays for the next run.
        ids = [i for i in store.unclustered_ids() if i not in seen]
        if not ids:
            return Clustered(placed, tuple(changed))
        seen.update(ids)
        for start in range(0, len(ids), BATCH):
            batch = store.to_cluster(ids[start : start + BATCH], config.cluster.text_chars)
            saved = _cluster_batch(config, store, clusterer, batch, spans)
            saver.save(saved)
            changed.update(dict.fromkeys(row.id for row in saved.rows))
            placed += len(batch)


# Items clustered and saved at a time: memory stays flat however many arrive.
# With a Saver in another process, clustering's end waits for the last batch
# to be written and tagged there: the smaller the batch, the shorter the wait.
BATCH = 1000


def _cluster_batch(
    config: Config,
    store: SQLiteStore,
    clusterer: Clusterer,
    batch: list[tuple[Item, bytes | None]],
    spans: dict[str, tuple[datetime, datetime]],
) -> StoryBatch:
    """Cluster these items (with their stored features): what to save.
    *spans* holds the dates of the stories saved so far this run, and is
    kept up to date; other stories' dates are read from the store."""
    items = [item for item, _ in batch]
    features = {
        item.id: f
        for item, data in batch
        if (f := stored_features(data, clusterer.settings)) is not None
    }
    assignments = clusterer.add_batch(items, features)
    # A later item may bridge two stories: follow each merge to the survivor.
    survivor = {old: a.story_id for a in assignments for old in a.merged}

    def resolve(story_id: str) -> str:
        while story_id in survivor:
            story_id = survivor[story_id]
        return story_id

    placed = [(a.item_id, resolve(a.story_id)) for a in assignments]
    changed = [s for s in clusterer.changed() if s.story_id not in survivor]
    # A story's date span covers its stored rows (its own and those of the
    # stories merged into it) and its new members.
    wanted = [*(s.story_id for s in changed), *survivor]
    known = {sid: spans[sid] for sid in wanted if sid in spans}
    stored = store.story_rows(sid for sid in wanted if sid not in known)
    known.update((row.id, (row.first, row.last)) for row in stored.values())
    dates: dict[str, list[datetime]] = {s.story_id: [] for s in changed}
    for sid, span in known.items():
        dates[resolve(sid)] += span
    by_id = {i.id: i for i in items}
    for item_id, story_id in placed:
        dates[story_id] += [by_id[item_id].date, by_id[item_id].last_modified]
    rows = [_story_row(s, dates[s.story_id], config.cluster.index_keys) for s in changed]
    clusterer.forget_changes()
    for old in survivor:
        spans.pop(old, None)
    spans.update((row.id, (row.first, row.last)) for row in rows)
    return StoryBatch(placed, rows, [(old, resolve(old)) for old in survivor])


def tag_stories(config: Config, store: SQLiteStore, story_ids: Sequence[str]) -> None:
    """Tag these stories anew from all their members: topics belong to the story,
    not to any one item."""
    # In chunks: a first refresh of thousands of feeds changes thousands of
    # stories, and their members need not all be in memory at once.
    for start in range(0, len(story_ids), _TAG_CHUNK):
        members = store.story_members(story_ids[start : start + _TAG_CHUNK], html=False)
        store.set_topics(tag_items(members, config.topics, config.output.max_tags))


def tag_items(
    members: dict[str, list[Item]], rules: Sequence[TopicRule], limit: int
) -> dict[str, tuple[Topic, ...]]:
    """The topics of each story, given its members."""
    return {story_id: tag_story(items, rules, limit) for story_id, items in members.items()}


_TAG_CHUNK = 500


def _story_row(signature: Signature, dates: list[datetime], index_keys: int) -> StoryRow:
    if signature.lead is None:  # the clusterer elects a lead as each member joins
        raise AssertionError(f"story {signature.story_id} has no lead")
    return StoryRow(
        id=signature.story_id,
        lead_id=signature.lead,
        first=min(dates),
        last=max(dates),
        signature=signature.to_bytes(),
        entry=IndexEntry.of(signature, index_keys).to_text(),
    )
