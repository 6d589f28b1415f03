"""politeness.py: pure tables of state transitions, time injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import FetchError
from aggregator.fetch import HTTPStatusError
from aggregator.politeness import (
    BACKOFF_BASE,
    JITTER,
    MAX_DELAY,
    Politeness,
    after_failure,
    after_success,
    backoff,
    due,
    freshness,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
URL = "http://example.org/feed"
NEW = "http://example.org/new-feed"
OTHER = "http://example.net/feed"


def status(code: int, retry_after: float | None = None) -> HTTPStatusError:
    return HTTPStatusError(URL, f"HTTP {code}", status=code, retry_after=retry_after)


def success(state: Politeness, headers=None, moved: str | None = None) -> Politeness:
    return after_success(state, now=NOW, headers=headers or {}, permanent_redirect=moved, key=URL)


def fail(state: Politeness, error: FetchError) -> Politeness:
    return after_failure(state, now=NOW, error=error, key=URL)


# --- backoff -------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "nominal"),
    [
        (0, timedelta(0)),
        (1, timedelta(minutes=5)),
        (2, timedelta(minutes=10)),
        (3, timedelta(minutes=20)),
        (6, timedelta(minutes=160)),
        (8, timedelta(minutes=640)),
        (9, MAX_DELAY / (1 + JITTER)),  # 1280 min would pass the cap
        (40, MAX_DELAY / (1 + JITTER)),
        (10_000, MAX_DELAY / (1 + JITTER)),
    ],
)
def test_backoff_doubles_up_to_the_cap(failures, nominal):
    delay = backoff(failures, URL)
    assert nominal * (1 - JITTER) <= delay <= nominal * (1 + JITTER)
    assert delay <= MAX_DELAY


@given(st.text(max_size=50), st.integers(min_value=1, max_value=200))
def test_backoff_jitter_is_bounded_and_deterministic(key, failures):
    delay = backoff(failures, key)
    assert delay == backoff(failures, key)
    nominal = min(BACKOFF_BASE * 2 ** min(failures - 1, 30), MAX_DELAY / (1 + JITTER))
    assert nominal * (1 - JITTER) <= delay <= nominal * (1 + JITTER)
    assert timedelta(0) < delay <= MAX_DELAY


def test_jitter_spreads_sources_that_fail_together():
    delays = {backoff(3, f"http://host/{n}") for n in range(100)}
    assert len(delays) > 90
    assert max(delays) - min(delays) > timedelta(minutes=8)  # of a 15-25 min range


def test_backoff_grows_with_consecutive_failures_and_resets_on_success():
    state = Politeness()
    waits = []
    for _ in range(12):
        state = fail(state, FetchError(URL, "could not fetch"))
        assert state.next_fetch is not None
        waits.append(state.next_fetch - NOW)
    assert state.failures == 12
    assert waits[0] <= BACKOFF_BASE * (1 + JITTER)
    assert waits[-1] <= MAX_DELAY
    assert waits[8] > waits[2] > waits[0]
    assert success(state) == Politeness()


# --- what the server said ------------------------------------------------


@pytest.mark.parametrize(
    ("error", "wait", "gone"),
    [
        (status(410), None, True),
        (status(429, 120), timedelta(seconds=120), False),
        (status(503, 300.5), timedelta(seconds=300.5), False),
        (status(503, 0), timedelta(0), False),
        (status(429, 10 * 86400), MAX_DELAY, False),  # capped
    ],
)
def test_server_instructions(error, wait, gone):
    state = fail(Politeness(), error)
    assert state.gone is gone
    assert state.failures == 1
    assert state.next_fetch == (NOW + wait if wait is not None else None)
    assert due(state, NOW + timedelta(days=365)) is not gone


@pytest.mark.parametrize(
    "error",
    [
        status(404),
        status(500),
        status(502),
        status(503),  # no Retry-After: back off as usual
        status(429),
        status(403, 60),  # Retry-After only counts on 429/503
        FetchError(URL, "timed out"),
    ],
)
def test_other_failures_back_off_and_never_remove(error):
    state = fail(fail(Politeness(), error), error)
    assert not state.gone
    assert state.next_fetch == NOW + backoff(2, URL)
    assert not due(state, NOW)
    assert due(state, state.next_fetch)


def test_gone_is_lifted_by_a_success():
    gone = fail(Politeness(), status(410))
    assert not due(gone, NOW)
    assert success(gone) == Politeness()


@pytest.mark.parametrize(
    ("headers", "floor"),
    [
        ({}, None),
        ({"Cache-Control": "max-age=600"}, timedelta(minutes=10)),
        ({"cache-control": "public, max-age=3600, must-revalidate"}, timedelta(hours=1)),
        ({"Cache-Control": "max-age=0"}, None),
        ({"Cache-Control": "s-maxage=600"}, None),  # for shared caches, not us
        ({"Cache-Control": "no-cache, max-age=600"}, None),
        ({"Cache-Control": "max-age=99999999"}, MAX_DELAY),
        ({"Cache-Control": "max-age=garbage"}, None),
        ({"Expires": "Wed, 01 May 2024 12:30:00 GMT"}, timedelta(minutes=30)),
        (  # Expires on the server's clock, which is 10 minutes fast
            {"Date": "Wed, 01 May 2024 12:10:00 GMT", "Expires": "Wed, 01 May 2024 12:30:00 GMT"},
            timedelta(minutes=20),
        ),
        ({"Expires": "Wed, 01 May 2024 11:00:00 GMT"}, None),  # already stale
        ({"Expires": "0"}, None),
        ({"Expires": "Fri, 01 May 2026 12:00:00 GMT"}, MAX_DELAY),
        (  # max-age wins over Expires
            {"Cache-Control": "max-age=60", "Expires": "Wed, 01 May 2024 13:00:00 GMT"},
            timedelta(minutes=1),
        ),
    ],
)
def test_freshness_sets_a_floor_on_the_next_fetch(headers, floor):
    assert freshness(headers, NOW) == floor
    state = success(Politeness(failures=3), headers)
    assert state.next_fetch == (NOW + floor if floor else None)
    assert due(state, NOW) is (floor is None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Wed, 01 May 2024 12:05:00 GMT", 300.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),
        ("Wednesday, 01-May-24 12:05:00 GMT", 300.0),  # RFC 850, still valid HTTP
        ("1.5", None),
        ("-1", None),
        ("later", None),
        ("", None),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


# --- permanent redirects --------------------------------------------------


def test_a_permanent_redirect_is_adopted_once_confirmed():
    once = success(Politeness(), moved=NEW)
    assert (once.moved_to, once.moved_seen, once.url) == (NEW, 1, None)
    twice = success(once, moved=NEW)
    assert (twice.moved_to, twice.moved_seen, twice.url) == (None, 0, NEW)
    # Fetching the new URL directly redirects no more; the move stays.
    assert success(twice).url == NEW


@pytest.mark.parametrize(
    ("answers", "url"),
    [
        ([NEW], None),  # one flaky answer
        ([NEW, None, NEW], None),  # not in a row
        ([NEW, OTHER], None),  # two different targets
        ([NEW, OTHER, OTHER], OTHER),
        ([None, NEW, NEW], NEW),
        ([None, None], None),  # 302/307 report no permanent redirect at all
    ],
)
def test_redirect_confirmation_table(answers, url):
    state = Politeness()
    for moved in answers:
        state = success(state, moved=moved)
    assert state.url == url


def test_a_failure_does_not_break_a_redirect_streak():
    state = fail(success(Politeness(), moved=NEW), status(500))
    assert success(state, moved=NEW).url == NEW


def test_state_rejects_naive_datetimes():
    with pytest.raises(ValueError, match="UTC"):
        Politeness(next_fetch=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="UTC"):
        due(Politeness(), datetime(2024, 1, 1))
