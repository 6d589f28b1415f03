"""tagging.py: topics tagged alongside clustering are those tagged at the end."""

from __future__ import annotations

from datetime import timedelta

from aggregator import stories
from aggregator.config import load_config
from aggregator.model import Entry
from aggregator.normalize import normalize
from aggregator.store import SourceState, open_store
from aggregator.tagging import BackgroundTagger
from aggregator.workers import WorkerPool
from tests.conftest import write_config
from tests.test_stories import DAY, REPORTS, item


def _clustered(tmp_path, name):
    config = load_config(write_config(tmp_path / name, ""))
    store = open_store(config.database)
    store.update_source("feed", [item(n, hours=n) for n in range(3)], SourceState())
    return config, store


def _topics_tagged_at_the_end(tmp_path):
    config, store = _clustered(tmp_path, "end")
    try:
        changed = stories.cluster_new_items(config, store).stories
        stories.tag_stories(config, store, changed)
        return store.topics(changed)
    finally:
        store.close()


def test_batches_tagged_in_the_background_get_the_topics_tagged_at_the_end(tmp_path):
    (tmp_path / "bg").mkdir()
    (tmp_path / "end").mkdir()
    expected = _topics_tagged_at_the_end(tmp_path)
    config, store = _clustered(tmp_path, "bg")
    try:
        with BackgroundTagger(config, store) as tagger:
            changed = stories.cluster_new_items(config, store, on_batch=tagger.submit).stories
            tagger.submit(changed[:1])  # and a story tagged twice: the last one counts
            tagger.finish(changed)
        assert store.topics(changed) == expected and all(expected.values())
    finally:
        store.close()


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


def test_when_the_background_stops_taking_work_every_story_is_tagged_here(tmp_path, monkeypatch):
    (tmp_path / "end").mkdir()
    config = load_config(write_config(tmp_path, ""))
    store = open_store(config.database)
    calls = []
    real = WorkerPool.submit

    def second_fails(self, *args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("pool gone")
        return real(self, *args)

    monkeypatch.setattr(WorkerPool, "submit", second_fails)
    try:
        with BackgroundTagger(config, store) as tagger:
            store.update_source("feed", [item(0), item(2, hours=2)], SourceState())
            first = stories.cluster_new_items(config, store, on_batch=tagger.submit).stories
            tagger._pending[0].result()  # tagged in the background with one report
            # The storm story gains a report naming someone new after its
            # background tagging, and then the pool fails: it must be tagged here.
            store.update_source("feed", [_with_a_new_name()], SourceState())
            second = stories.cluster_new_items(config, store, on_batch=tagger.submit).stories
            changed = list(dict.fromkeys([*first, *second]))
            tagger.finish(changed)
        assert len(calls) == 2
        topics = store.topics(changed)
        stories.tag_stories(config, store, changed)  # as tagging at the end gives them
        assert topics == store.topics(changed)
        assert any(t.term == "santos" for tags in topics.values() for t in tags)  # the new name
    finally:
        store.close()
