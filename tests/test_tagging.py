"""tagging.py: batches saved and tagged in the background end as saving and tagging here does."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from concurrent.futures import Future
from datetime import timedelta

import pytest

import aggregator.tagging
from aggregator import stories
from aggregator.config import load_config
from aggregator.model import Entry
from aggregator.normalize import normalize
from aggregator.store import SourceState, open_store
from aggregator.stories import StoryBatch
from aggregator.tagging import BackgroundTagger, Saved
from aggregator.workers import WorkerPool
from tests.conftest import write_config
from tests.test_stories import DAY, REPORTS, groups, item


@pytest.fixture(autouse=True)
def one_item_a_batch(monkeypatch):
    """Every item its own batch: the storm story changes in two batches in a row."""
    monkeypatch.setattr(stories, "BATCH", 1)


def _reports():
    return [item(n, hours=n) for n in range(3)]


def _done_here(tmp_path, reports):
    """Groups and topics of clustering and tagging in this process alone."""
    (tmp_path / "here").mkdir()
    config = load_config(write_config(tmp_path / "here", ""))
    store = open_store(config.database)
    try:
        store.update_source("feed", reports, SourceState())
        changed = stories.cluster_new_items(config, store).stories
        stories.tag_stories(config, store, changed)
        return groups(store), store.topics(changed)
    finally:
        store.close()


def _tagged_here(monkeypatch):
    """The story ids that BackgroundTagger.finish tags in this process."""
    here: list[str] = []
    real = aggregator.tagging.tag_stories

    def spy(config, store, story_ids):
        here.extend(story_ids)
        real(config, store, story_ids)

    monkeypatch.setattr(aggregator.tagging, "tag_stories", spy)
    return here


def test_batches_saved_and_tagged_in_the_background_end_as_done_here(tmp_path, monkeypatch):
    expected_groups, expected_topics = _done_here(tmp_path, _reports())
    here = _tagged_here(monkeypatch)
    config = load_config(write_config(tmp_path, ""))
    store = open_store(config.database)
    try:
        store.update_source("feed", _reports(), SourceState())
        with BackgroundTagger(config, store) as tagger:
            changed = stories.cluster_new_items(config, store, saver=tagger).stories
            tagger.finish(changed)
        assert groups(store) == expected_groups and store.unclustered_ids() == []
        assert store.topics(changed) == expected_topics and all(expected_topics.values())
        # Storm (changed in batches 1 and 2) was tagged in the background after
        # batch 3 was written, the library story (of the last batch) at the end.
        assert len(changed) == 2 and here == []
    finally:
        store.close()


def _on_submit(monkeypatch, nth, action):
    """Run *action* on the pool at its *nth* submit, before submitting; the calls."""
    calls = []
    real = WorkerPool.submit

    def submit(self, *args):
        calls.append(args)
        if len(calls) == nth:
            action(self)
        return real(self, *args)

    monkeypatch.setattr(WorkerPool, "submit", submit)
    return calls


def _with_a_new_name():
    title, text = REPORTS[1]
    text += " Governor Maria Santos toured the coast road. Maria Santos promised repairs."
    entry = Entry(
        source="feed",
        origin="o",
        title=title,
        guid="feed-1",
        summary=text,
        published=DAY + timedelta(hours=1),
    )
    return normalize(entry, DAY + timedelta(days=1))


def test_when_the_background_stops_taking_work_all_is_saved_and_tagged_here(tmp_path, monkeypatch):
    expected_groups, expected_topics = _done_here(
        tmp_path, [item(0), item(2, hours=2), _with_a_new_name()]
    )
    config = load_config(write_config(tmp_path, ""))
    store = open_store(config.database)

    def fail(pool):
        raise RuntimeError("pool gone")

    calls = _on_submit(monkeypatch, 3, fail)
    try:
        with BackgroundTagger(config, store) as tagger:
            store.update_source("feed", [item(0), item(2, hours=2)], SourceState())
            first = stories.cluster_new_items(config, store, saver=tagger).stories
            assert tagger._tags  # storm, tagged in the background with one report
            # The storm story gains a report naming someone new after its
            # background tagging, and then the pool fails: its batch must be
            # saved here and the story tagged here.
            store.update_source("feed", [_with_a_new_name()], SourceState())
            second = stories.cluster_new_items(config, store, saver=tagger).stories
            changed = list(dict.fromkeys([*first, *second]))
            tagger.finish(changed)
        assert len(calls) == 3
        assert groups(store) == expected_groups and store.unclustered_ids() == []
        topics = store.topics(changed)
        assert topics == expected_topics
        # The new name:
        assert any(t.term == "maria-santos" for tags in topics.values() for t in tags)
    finally:
        store.close()


def test_when_the_background_process_dies_every_batch_is_still_saved(tmp_path, monkeypatch):
    expected_groups, expected_topics = _done_here(tmp_path, _reports())
    config = load_config(write_config(tmp_path, ""))
    store = open_store(config.database)

    def kill(pool):
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)

    calls = _on_submit(monkeypatch, 2, kill)  # after the first batch was handed over
    try:
        store.update_source("feed", _reports(), SourceState())
        with BackgroundTagger(config, store) as tagger:
            changed = stories.cluster_new_items(config, store, saver=tagger).stories
            tagger.finish(changed)
        assert len(calls) >= 2
        assert groups(store) == expected_groups and store.unclustered_ids() == []
        assert store.topics(changed) == expected_topics
    finally:
        store.close()


def test_a_story_changed_by_the_last_batch_is_tagged_anew_here(tmp_path, monkeypatch):
    santos = _with_a_new_name()
    late = [item(0), item(2, hours=1), normalize_at(santos, hours=2)]
    expected_groups, expected_topics = _done_here(tmp_path, late)
    here = _tagged_here(monkeypatch)
    config = load_config(write_config(tmp_path, ""))
    store = open_store(config.database)
    try:
        store.update_source("feed", late, SourceState())
        with BackgroundTagger(config, store) as tagger:
            changed = stories.cluster_new_items(config, store, saver=tagger).stories
            stale = dict(tagger._tags)  # storm, tagged after batch 2 with one report
            tagger.finish(changed)
        storm = changed[0]
        assert storm in stale and here == []
        assert not any(t.term == "maria-santos" for t in stale[storm])
        assert groups(store) == expected_groups
        assert store.topics(changed) == expected_topics
        assert any(t.term == "maria-santos" for t in expected_topics[storm])
    finally:
        store.close()


def normalize_at(report, hours):
    return dataclasses.replace(report, published=DAY + timedelta(hours=hours))


class _HeldPool:
    """Stands in for the process: hands out futures that the test settles."""

    def __init__(self):
        self.futures = []

    def submit(self, *args):
        self.futures.append(Future())
        return self.futures[-1]


def test_a_failed_batch_is_written_again_only_once_later_ones_are_done_there(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, ""))
    store = open_store(config.database)
    held = _HeldPool()
    first = StoryBatch([("a", "s1")], [], [])
    second = StoryBatch([("b", "s2")], [], [])
    written = []

    def save_to(batch, store):
        written.append((batch, held.futures[1].done()))
        return len(written)

    monkeypatch.setattr(StoryBatch, "save_to", save_to)
    tagger = BackgroundTagger(config, store)
    try:
        tagger._pool = held
        tagger.save(first)
        tagger.save(second)
        held.futures[0].set_exception(RuntimeError("database is locked"))
        # The second batch is still being written there when the first fails.
        threading.Timer(0.2, held.futures[1].set_result, [Saved(9, {})]).start()
        assert tagger.flush() == 2
        # Both written again here, in order, and only after the second was done there.
        assert written == [(first, True), (second, True)]
        third = StoryBatch([("c", "s3")], [], [])
        tagger.save(third)  # after the failure: written here at once, not held to a flush
        assert written[-1] == (third, True) and len(held.futures) == 2
        assert tagger.flush() == 3
    finally:
        tagger.__exit__()
        store.close()
