"""dedupe.py: the same item twice, and syndicated copies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedupe import Decision, Known, decide, unique
from aggregator.model import Entry
from aggregator.normalize import normalize

NOW = datetime(2024, 11, 30, tzinfo=UTC)


def item(source="feed-a", guid=None, link=None, title="Title", text="Body text", updated=None):
    return normalize(
        Entry(
            source=source,
            origin="o",
            title=title,
            guid=guid,
            link=link,
            summary=text,
            updated=updated,
        ),
        NOW,
    )


def known_of(it, **changes):
    k = Known(
        it.id,
        it.source,
        it.guid,
        it.url,
        it.fingerprint,
        it.title,
        it.updated.isoformat() if it.updated else None,
    )
    return replace(k, **changes)


# (what is stored, what arrives, decision)
DECISIONS = [
    ("nothing stored", None, item(guid="1"), Decision.NEW),
    ("same item again", item(guid="1"), item(guid="1"), Decision.UNCHANGED),
    (
        "edited text, same guid",
        item(guid="1"),
        item(guid="1", text="Edited body"),
        Decision.CHANGED,
    ),
    (
        "edited title, same guid",
        item(guid="1"),
        item(guid="1", title="Better title"),
        Decision.CHANGED,
    ),
    (
        "same URL in another feed",
        item(source="feed-a", link="https://example.org/x"),
        item(source="feed-b", link="https://example.org/x?utm_source=b", text="Other blurb"),
        Decision.DUPLICATE,
    ),
    (
        "syndicated text under another URL",
        item(source="feed-a", link="https://a.example/x"),
        item(source="feed-b", link="https://b.example/y"),
        Decision.DUPLICATE,
    ),
    (
        "an older revision arrives late",
        item(guid="1", text="New", updated=NOW),
        item(guid="1", text="Old", updated=NOW - timedelta(days=1)),
        Decision.UNCHANGED,
    ),
]


@pytest.mark.parametrize(
    ("why", "stored", "arriving", "expected"), DECISIONS, ids=[d[0] for d in DECISIONS]
)
def test_decide(why, stored, arriving, expected):
    assert decide(arriving, known_of(stored) if stored else None) is expected


def test_unique_keeps_one_copy_per_key_and_the_newest_revision():
    first = item(guid="1", text="v1", updated=NOW)
    second = item(guid="1", text="v2", updated=NOW + timedelta(hours=1))
    other = item(guid="2", text="different")
    same_url_a = item(guid="3", link="https://example.org/p", text="a")
    same_url_b = item(guid="4", link="https://example.org/p#c", text="b")
    kept = unique([first, other, second, same_url_a, same_url_b])
    assert [k.guid for k in kept] == ["1", "2", "3"]
    assert kept[0].text == "v2"


def test_unique_merges_an_item_that_ties_two_earlier_copies():
    a = item(guid="1", link="https://example.org/a", text="a")
    b = item(guid="2", link="https://example.org/b", text="b")
    bridge = replace(item(guid="1", link="https://example.org/b", text="c"))
    assert len(unique([a, b, bridge])) == 1
