"""Tagging a big refresh's stories on the core that clustering leaves idle.

Clustering runs on one core, batch after batch. Each batch's changed stories
are handed, as soon as the batch is saved, to one tagging process, which reads
their members from the state and tags them; a story changed again later is
tagged again later, and the last tagging of each story is the one kept. So
when clustering ends only the last batch's stories are left to tag, and the
topics are exactly those of tagging every story at the end (a test holds it
to that). The process is spawned fresh, with only what tagging needs (~90 MB;
the ingest workers and their models are gone by then).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from .config import Config
from .model import Topic, TopicRule
from .store import SQLiteStore, open_store
from .stories import tag_items, tag_stories
from .workers import WorkerPool

__all__ = ["BackgroundTagger", "tag_saved"]

log = logging.getLogger(__name__)

Tags = dict[str, tuple[Topic, ...]]


def tag_saved(
    database: Path, story_ids: Sequence[str], rules: Sequence[TopicRule], limit: int
) -> Tags:
    """The topics of these stories, as the state at *database* has them now."""
    store = open_store(database)
    try:
        return tag_items(store.story_members(story_ids), rules, limit)
    finally:
        store.close()


class BackgroundTagger:
    """One tagging process for the batches of one clustering run.

    ``submit`` after each saved batch; ``finish`` with the stories clustering
    changed writes their topics, tagging here whatever the process did not.
    """

    def __init__(self, config: Config, store: SQLiteStore) -> None:
        self.config = config
        self.store = store
        self._workers = WorkerPool(1, fork_server=False)
        self._pool: WorkerPool | None = self._workers
        self._pending: list[Future[Tags]] = []

    def submit(self, story_ids: Sequence[str]) -> None:
        if self._pool is None or not story_ids:
            return
        rules, limit = self.config.topics, self.config.output.max_tags
        try:
            self._pending.append(
                self._pool.submit(tag_saved, self.store.path, list(story_ids), rules, limit)
            )
        except Exception:  # cannot run: finish() tags everything here
            log.exception("cannot tag in the background; tagging here")
            self._pool = None
            self._pending = []  # a story tagged before may have changed since

    def finish(self, story_ids: Sequence[str]) -> None:
        """Write the topics of *story_ids*: the background tagging's of those it
        tagged after their last change, then this process's of the rest."""
        tagged: Tags = {}
        for pending in self._pending:  # in order: a story's last tagging wins
            try:
                tagged.update(pending.result())
            except Exception:
                log.exception("background tagging failed; tagging here")
                tagged = {}
                break
        wanted = set(story_ids)
        missing = [s for s in story_ids if s not in tagged]
        self.store.set_topics({s: t for s, t in tagged.items() if s in wanted})
        tag_stories(self.config, self.store, missing)

    def __enter__(self) -> BackgroundTagger:
        self._workers.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._workers.__exit__(None, None, None)
