"""intake.py: sources stored in their order, each as soon as it is ready."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest

from aggregator.fetch import Fetched, NotModified304, Validators
from aggregator.intake import Intake
from aggregator.model import Source, SourceResult, Updated

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
