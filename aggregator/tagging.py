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
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType

from .config import Config
from .model import Topic, TopicRule
from .store import SQLiteStore, open_store
from .stories import tag_items, tag_stories

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
        context = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(1, mp_context=context)
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

    def finish(self, story_ids: Sequence[str]) -> None:
        """Write the topics of *story_ids* (those that exist), in one transaction."""
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
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
