"""stories.py: clustering over the store, and the clusterer a daemon keeps between refreshes."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from aggregator import stories
from aggregator.config import load_config
from aggregator.model import Entry
from aggregator.normalize import normalize
from aggregator.store import SourceState, open_store
from aggregator.stories import ClusterCache, cluster_new_items
from tests.conftest import write_config

DAY = datetime(2024, 11, 29, 9, tzinfo=UTC)
REPORTS = [
    (
        "Storm closes coastal highway near Port Alder",
        "A winter storm closed the coastal highway near Port Alder on Saturday, the Alder "
        "County sheriff said, after waves pushed driftwood and gravel across both lanes "
        "north of the marina.",
    ),
    (
        "Port Alder highway shut as storm surge hits coast",
        "The Alder County sheriff shut the coastal highway at Port Alder after storm waves threw "
        "driftwood and gravel across the road north of the marina on Saturday.",
    ),
    (
        "Library reopens after two-year renovation in Millbrook",
        "Millbrook's central library reopened on Friday after a two-year renovation that added a "
        "reading room, a makerspace and longer weekend hours, librarian Dana Ortiz said.",
    ),
]


def item(n: int, source: str = "feed", hours: int = 0):
    title, text = REPORTS[n]
    entry = Entry(
        source=source,
        origin="o",
        title=title,
        guid=f"{source}-{n}",
        summary=text,
        published=DAY + timedelta(hours=hours),
    )
    return normalize(entry, DAY + timedelta(days=1))


def groups(store):
    return {frozenset(m.title for m in s.members) for s in store.stories(50)}


def test_a_kept_clusterer_is_reused_and_decides_the_same(tmp_path):
    config = load_config(write_config(tmp_path, ""))
    cached, plain = open_store(tmp_path / "a.sqlite"), open_store(tmp_path / "b.sqlite")
    cache = ClusterCache()
    try:
        for store, kept in ((cached, cache), (plain, None)):
            store.update_source("feed", [item(0), item(2, hours=1)], SourceState())
            cluster_new_items(config, store, kept)
        first = cache.clusterer
        for store, kept in ((cached, cache), (plain, None)):
            store.update_source("other", [item(1, "other", hours=3)], SourceState())
            assert cluster_new_items(config, store, kept).placed == 1
        assert cache.clusterer is first  # nothing else wrote: no reload
        assert groups(cached) == groups(plain)
        assert len(groups(cached)) == 2
    finally:
        cached.close()
        plain.close()


def test_a_write_by_another_process_invalidates_the_kept_clusterer(tmp_path):
    config = load_config(write_config(tmp_path, ""))
    daemon, other = open_store(config.database), open_store(config.database)
    cache = ClusterCache()
    try:
        daemon.update_source("feed", [item(0)], SourceState())
        cluster_new_items(config, daemon, cache)
        kept = cache.clusterer
        other.update_source("other", [item(1, "other", hours=2)], SourceState())
        cluster_new_items(config, other)  # an `aggregator refresh` beside the daemon
        daemon.update_source("late", [item(2, "late", hours=4)], SourceState())
        cluster_new_items(config, daemon, cache)
        assert cache.clusterer is not kept
        assert len(groups(daemon)) == 2  # the storm reports merged across both writers
    finally:
        daemon.close()
        other.close()


def test_batches_cluster_as_one_batch_would(tmp_path, monkeypatch):
    from aggregator import stories

    config = load_config(write_config(tmp_path, ""))
    one, many = open_store(tmp_path / "one.sqlite"), open_store(tmp_path / "many.sqlite")
    try:
        reports = [item(0), item(2, hours=1), item(1, "other", hours=3)]
        for store in (one, many):
            store.update_source("mixed", reports, SourceState())
        assert cluster_new_items(config, one).placed == 3
        monkeypatch.setattr(stories, "BATCH", 1)
        clustered = cluster_new_items(config, many)
        assert clustered.placed == 3 and len(clustered.stories) == 2
        assert groups(one) == groups(many)
        assert {s.id for s in one.stories(9)} == {s.id for s in many.stories(9)}
    finally:
        one.close()
        many.close()


def test_the_cycle_collector_is_paused_only_while_clustering(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, ""))
    store = open_store(tmp_path / "a.sqlite")
    seen: list[bool] = []
    real = stories._cluster_batch

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(stories, "_cluster_batch", spy)
    try:
        store.update_source("feed", [item(0), item(1, hours=1)], SourceState())
        assert gc.isenabled()
        assert cluster_new_items(config, store).placed == 2
        assert seen == [False]
        assert gc.isenabled()
        # A caller that had it off finds it off.
        store.update_source("feed", [item(2, hours=2)], SourceState())
        gc.disable()
        try:
            cluster_new_items(config, store)
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        store.close()
