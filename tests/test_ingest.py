"""ingest.py: the same items from a worker process as from this one."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.cluster import ClusterSettings, stored_features
from aggregator.errors import ParseError
from aggregator.ingest import Body, ingest_feed
from aggregator.model import Source
from aggregator.workers import WorkerPool

NOW = datetime(2024, 12, 1, 12, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "feeds"
SETTINGS = ClusterSettings()


def body(name: str) -> tuple[Source, Body]:
    url = f"https://example.org/{name}"
    return Source(key=url, url=url), Body((DATA / name).read_bytes(), url, {})


def test_a_worker_ingests_exactly_as_this_process_does():
    feeds = [body("rss20.xml"), body("atom10.atom")]
    with WorkerPool(2) as pool:
        pending = [pool.submit(ingest_feed, source, b, NOW, SETTINGS) for source, b in feeds]
        pooled = [p.result(timeout=60) for p in pending]
    assert pooled == [ingest_feed(source, b, NOW, SETTINGS) for source, b in feeds]
    for ingested in pooled:
        assert ingested.items and set(ingested.features) == {i.id for i in ingested.items}
        for data in ingested.features.values():
            assert stored_features(data, SETTINGS) is not None


def test_a_broken_feed_fails_in_the_worker_as_it_would_here():
    source, _ = body("rss20.xml")
    junk = Body(b"<html><body>maintenance</body></html>", source.key, {})
    with WorkerPool(1) as pool, pytest.raises(ParseError, match=r"example\.org"):
        pool.submit(ingest_feed, source, junk, NOW, SETTINGS).result(timeout=60)


def test_a_killed_worker_fails_its_feeds_with_broken_process_pool():
    # The pipeline ingests such feeds itself (test_pipeline.py); this pins the
    # exception it catches to what a dead worker really raises.
    source, b = body("rss20.xml")
    with WorkerPool(1) as pool:
        pool.submit(ingest_feed, source, b, NOW, SETTINGS).result(timeout=60)  # the worker is up
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            pool.submit(ingest_feed, source, b, NOW, SETTINGS).result(timeout=60)


def test_no_pool_for_a_few_feeds():
    assert WorkerPool.for_feeds(3) is None


def _pool_in_a_daemonic_process(answer) -> None:
    answer.send(WorkerPool.for_feeds(1000) is None)


def test_no_pool_in_a_daemonic_process():
    # The daemon refreshes in a daemonic process, which may have no children:
    # a pool there would fail on its first feed, so it ingests in one process.
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_pool_in_a_daemonic_process, args=(theirs,), daemon=True)
    child.start()
    try:
        assert ours.poll(60) and ours.recv() is True
    finally:
        child.join(10)
