"""Saving and tagging a big refresh's stories on the core that clustering leaves idle.

Clustering runs on one core, batch after batch. Each batch goes, as soon as it
is clustered, to one process that writes it to the state (``StoryBatch``)
and then tags the stories of the batch before it that this one did not change
again, so that a story is mostly tagged once, after its last change. A story
changed again later is tagged again later, and the last tagging of each story
is the one kept; the last batch's stories are tagged once clustering ends. So
the topics are exactly those of tagging every story at the end (tests hold it
to that), and clustering neither writes nor tags.

If that process fails, every batch it may not have written is written here,
in order (writing a batch twice is harmless, see ``StoryBatch.save_to``), and
every story is tagged here. The process is spawned fresh, with only what
tagging needs (~90 MB; the ingest workers and their models are gone by then).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .model import Topic, TopicRule
from .store import SQLiteStore, open_store
from .stories import StoryBatch, tag_items, tag_stories
from .workers import WorkerPool

__all__ = ["BackgroundTagger", "Saved", "save_and_tag"]

log = logging.getLogger(__name__)

Tags = dict[str, tuple[Topic, ...]]


@dataclass(frozen=True, slots=True)
class Saved:
    """What the process did with one hand-off: the generation its write left
    (None when it only tagged), and the topics of the stories it tagged."""

    generation: int | None
    tags: Tags


def save_and_tag(
    database: Path,
    batch: StoryBatch | None,
    story_ids: Sequence[str],
    rules: Sequence[TopicRule],
    limit: int,
) -> Saved:
    """Write *batch* (if any) to the state at *database*, then tag these
    stories as it has them."""
    store = open_store(database)
    try:
        generation = batch.save_to(store) if batch is not None else None
        members = store.story_members(story_ids, html=False)
        return Saved(generation, tag_items(members, rules, limit))
    finally:
        store.close()


class BackgroundTagger:
    """A :class:`~aggregator.stories.Saver` that writes and tags in one other process.

    Hand it to ``cluster_new_items``; then ``finish`` with the stories
    clustering changed writes their topics.
    """

    def __init__(self, config: Config, store: SQLiteStore) -> None:
        self.config = config
        self.store = store
        self._workers = WorkerPool(1, fork_server=False)
        self._pool: WorkerPool | None = self._workers
        # Handed over, not yet known to be written; None: never reached the process.
        self._queued: list[tuple[StoryBatch, Future[Saved] | None]] = []
        self._held: list[str] = []  # the last batch's stories, tagged after the next
        self._tags: Tags = {}
        self._generation: int | None = None  # of the last batch known to be written

    def save(self, batch: StoryBatch) -> None:
        ids = [row.id for row in batch.rows]
        changed = set(ids)
        ready = [s for s in self._held if s not in changed]
        self._held = ids
        self._queued.append((batch, self._submit(batch, ready)))
        self._collect(wait=False)  # a written batch need not stay in memory

    def flush(self) -> int | None:
        self._collect(wait=True)
        generation, self._generation = self._generation, None
        return generation

    def _collect(self, *, wait: bool) -> None:
        """Take in the results of the batches handed over, oldest first: those
        done, or (*wait*) all. After a failure every batch from the first that
        failed on is written here, and all tags are dropped."""
        while self._queued:
            _, future = self._queued[0]
            if future is None:  # it never reached the process (_submit said why)
                self._write_here()
                return
            if not wait and not future.done():
                return
            try:
                saved = future.result()
            except Exception:
                log.exception("background saving and tagging failed; doing both here")
                self._write_here()
                return
            del self._queued[0]
            if saved.generation is not None:
                self._generation = saved.generation
            self._tags.update(saved.tags)  # in order: a story's last tagging wins

    def _write_here(self) -> None:
        """Write every batch handed over and not known to be written, here, in
        order; from now on each batch is written here as it comes, and the
        process's tags are dropped (``finish`` tags here)."""
        self._pool = None
        self._tags = {}
        # A later batch still being written there would land after the
        # rewrite here and undo it: let those finish first.
        for _, running in self._queued:
            if running is not None:
                wait_for([running])
        for later, _ in self._queued:  # in order: later batches win
            self._generation = later.save_to(self.store)
        self._queued = []

    def finish(self, story_ids: Sequence[str]) -> None:
        """Write the topics of *story_ids*: those the process tagged after
        their last change, and the rest (the last batch's), tagged now, there
        if it still runs, else here."""
        self.flush()
        held = set(self._held)
        tagged = {s: self._tags[s] for s in story_ids if s in self._tags and s not in held}
        rest = [s for s in story_ids if s not in tagged]
        there = self._submit(None, rest) if rest else None
        if there is not None:
            try:
                tagged.update(there.result().tags)
            except Exception:
                log.exception("background tagging failed; tagging here")
                self._pool = None
        self.store.set_topics(tagged)
        tag_stories(self.config, self.store, [s for s in story_ids if s not in tagged])

    def _submit(self, batch: StoryBatch | None, story_ids: list[str]) -> Future[Saved] | None:
        """``save_and_tag`` in the process, or None once it cannot take work."""
        if self._pool is None:
            return None
        rules, limit = self.config.topics, self.config.output.max_tags
        try:
            return self._pool.submit(save_and_tag, self.store.path, batch, story_ids, rules, limit)
        except Exception:  # flush() writes what it did not take, finish() tags it
            log.exception("the background process takes no more work; doing it here")
            self._pool = None
            return None

    def __enter__(self) -> BackgroundTagger:
        self._workers.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._workers.__exit__(None, None, None)
