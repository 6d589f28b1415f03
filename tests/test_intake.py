"""intake.py: sources stored in their order, each as soon as it is ready."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from aggregator.fetch import Fetched, Limits, NotModified304, Request, Validators, fetch_all
from aggregator.intake import Intake
from aggregator.model import Source, SourceResult, Updated

from .conftest import FeedServer, Route

A, B, C = (Source(key=f"https://{n}.example/feed", url=f"https://{n}.example/feed") for n in "abc")
FOLDER = Source(key="folder", path=Path("feeds"))


def fetched(source):
    return Fetched(source.key, b"<rss/>", {}, Validators())


def test_sources_are_stored_in_their_order_as_soon_as_each_is_ready():
    stored = []
    futures: dict[str, Future] = {}

    def submit(source, body):
        assert body.content == b"<rss/>"
        futures[source.key] = Future()
        return futures[source.key]

    def store_one(source, outcome, pending):
        stored.append((source.key, type(outcome).__name__, pending is not None))
        if isinstance(outcome, Fetched):  # the body stays, should its worker die
            assert outcome.content == b"<rss/>"
        return SourceResult(source, Updated(0, 0))

    intake = Intake([A, FOLDER, B, C], {A.key, B.key, C.key}, store_one, submit)
    assert intake(B.key, fetched(B)).content == b""  # fetch_all keeps it without its body
    assert intake(C.key, NotModified304({})).headers == {}
    assert stored == []  # A, first in order, has not arrived
    intake(A.key, fetched(A))
    assert stored == []  # nor been parsed
    futures[A.key].set_result(None)
    intake(C.key, NotModified304({}))  # any arrival stores what is ready
    assert [s[0] for s in stored] == [A.key, FOLDER.key]
    futures[B.key].set_result(None)
    results = intake.finish({})
    assert [r.source for r in results] == [A, FOLDER, B, C]
    assert stored[2:] == [(B.key, "Fetched", True), (C.key, "NotModified304", False)]


def test_a_failure_while_downloading_is_raised_by_finish_not_into_the_download():
    def store_one(source, outcome, pending):
        raise RuntimeError("disk full")

    intake = Intake([A], {A.key}, store_one, submit=None)
    intake(A.key, fetched(A))  # does not raise: fetch_all must go on
    with pytest.raises(RuntimeError, match="disk full"):
        intake.finish({})


def _soon(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _done_with(parsing: list[Future[None]]) -> int:
    for future in parsing:
        if not future.done():
            future.set_result(None)
    return len(parsing)


def test_downloads_wait_while_the_backlog_of_feeds_for_the_workers_is_full(server: FeedServer):
    sources = [Source(key=server.url(f"/{n}"), url=server.url(f"/{n}")) for n in range(6)]
    for n in range(6):
        server.routes[f"/{n}"] = Route(body=b"<rss/>")
    parsing: list[Future[None]] = []

    def submit(source, body):
        parsing.append(Future())
        return parsing[-1]

    def store_one(source, outcome, pending):
        return SourceResult(source, Updated(0, 0))

    intake = Intake(sources, {s.key for s in sources}, store_one, submit, backlog=2)
    requests = [Request(s.key, s.key) for s in sources]
    limits = Limits(concurrency=4, per_host=4, connect=2, read=2, total=5)
    downloads = threading.Thread(target=fetch_all, args=(requests, limits, intake, intake.admit))
    downloads.start()
    try:
        assert _soon(lambda: len(parsing) == 2)
        time.sleep(0.3)
        assert len(server.requests) == 2  # the other four wait for a worker to be done
        parsing[0].set_result(None)
        assert _soon(lambda: len(parsing) == 3)
        time.sleep(0.3)
        assert len(server.requests) == 3
        assert _soon(lambda: _done_with(parsing) == 6)  # each next one as it comes
    finally:
        for future in parsing:
            if not future.done():
                future.set_result(None)
        downloads.join(10)  # fetch_all gives up within limits.total
    assert not downloads.is_alive()
    assert [r.source for r in intake.finish({})] == sources


def test_a_slow_host_holds_back_only_its_own_feeds(server: FeedServer):
    fast = FeedServer()
    fast.thread.start()
    try:
        slow = [Source(key=server.url(f"/s{n}"), url=server.url(f"/s{n}")) for n in range(4)]
        quick = [Source(key=fast.url(f"/q{n}"), url=fast.url(f"/q{n}")) for n in range(6)]
        for n in range(4):
            server.routes[f"/s{n}"] = Route(body=b"<rss/>", delay=1.0)
        for n in range(6):
            fast.routes[f"/q{n}"] = Route(body=b"<rss/>")
        done: dict[str, float] = {}

        def submit(source, body):
            done[source.key] = time.monotonic()
            future: Future[None] = Future()
            future.set_result(None)  # the workers keep up
            return future

        def store_one(source, outcome, pending):
            return SourceResult(source, Updated(0, 0))

        sources = [*slow, *quick]  # the slow host's feeds first in the order
        intake = Intake(sources, {s.key for s in sources}, store_one, submit, backlog=3)
        limits = Limits(concurrency=4, per_host=1, connect=2, read=5, total=10)
        began = time.monotonic()
        fetch_all([Request(s.key, s.key) for s in sources], limits, intake, intake.admit)
        # One slow download at a time (per_host=1) takes 4 s in all; the quick
        # host's six are not queued behind it for the backlog's places.
        assert max(done[s.key] for s in quick) - began < 1.5
        assert max(done[s.key] for s in slow) - began > 3.5
    finally:
        fast.stopping.set()
        fast.httpd.shutdown()
        fast.httpd.server_close()
