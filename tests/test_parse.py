"""parse.py: each file in tests/data/feeds beside its expected result (FILE.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.normalize import normalize
from aggregator.parse import parse_feed

DATA = Path(__file__).parent / "data" / "feeds"
CASES = sorted(p for p in DATA.iterdir() if p.suffix != ".json")
ORIGIN = "https://feeds.example.org/feed.xml"
NOW = datetime(2024, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_feed_file_matches_its_expected_result(path: Path):
    expected = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
    parsed = parse_feed(path.read_bytes(), source="s", origin=ORIGIN)
    assert parsed.title == expected["title"]
    assert len(parsed.warnings) == expected["warnings"]
    got = [
        {
            "title": e.title,
            "guid": e.guid,
            "link": e.link,
            "published": e.published.isoformat() if e.published else None,
            "tags": list(e.tags),
            "outlet": e.outlet,
            "language": e.language,
        }
        for e in parsed.entries
    ]
    assert got == expected["entries"]


def test_relative_links_resolve_against_the_final_url():
    data = (
        b"<rss version='2.0'><channel><title>t</title>"
        b"<item><title>a</title><link>/x</link></item></channel></rss>"
    )
    parsed = parse_feed(data, source="s", origin="https://moved.example.org/feeds/main.xml")
    assert parsed.entries[0].link == "https://moved.example.org/x"


def test_relative_links_inside_html_resolve_once_sanitised():
    data = (
        b"<rss version='2.0'><channel><title>t</title><item><title>a</title>"
        b"<description>&lt;p&gt;See &lt;a href='/story/1'&gt;this&lt;/a&gt; "
        b"&lt;img src='pics/1.jpg'&gt;&lt;/p&gt;</description></item></channel></rss>"
    )
    origin = "https://moved.example.org/feeds/main.xml"
    (entry,) = parse_feed(data, source="s", origin=origin).entries
    assert entry.base == origin
    html = normalize(entry, NOW).content_html
    assert 'href="https://moved.example.org/story/1"' in html
    assert 'src="https://moved.example.org/feeds/pics/1.jpg"' in html


def test_xml_base_wins_over_the_final_url():
    data = (
        b"<feed xmlns='http://www.w3.org/2005/Atom' xml:base='https://base.example.org/news/'>"
        b"<title>t</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>"
        b"<entry><title>a</title><id>urn:a</id><updated>2024-01-01T00:00:00Z</updated>"
        b"<content type='html'>&lt;a href='a.html'&gt;more&lt;/a&gt;</content></entry></feed>"
    )
    (entry,) = parse_feed(data, source="s", origin="https://feeds.example.org/x").entries
    html = normalize(entry, NOW).content_html
    assert 'href="https://base.example.org/news/a.html"' in html


def test_content_encoding_header_is_ignored():
    # httpx has already decoded the body; feedparser must not try again.
    data = (
        b"<rss version='2.0'><channel><title>t</title><item><title>a</title></item></channel></rss>"
    )
    parsed = parse_feed(data, source="s", origin=ORIGIN, headers={"Content-Encoding": "gzip"})
    assert [e.title for e in parsed.entries] == ["a"]


@pytest.mark.parametrize(
    "data", [b"", b"hello world", b"<html><body>not a feed</body></html>", b"\x00\xff\xfe"]
)
def test_non_feeds_raise_parse_error_naming_the_origin(data):
    with pytest.raises(ParseError) as info:
        parse_feed(data, source="s", origin=ORIGIN)
    assert ORIGIN in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=400)
    | st.text(max_size=300).map(lambda t: f"<rss version='2.0'><channel>{t}".encode())
)
def test_any_bytes_give_entries_or_parse_error(data):
    try:
        parsed = parse_feed(data, source="s", origin=ORIGIN)
    except ParseError:
        return
    for entry in parsed.entries:
        for date in (entry.published, entry.updated):
            assert date is None or date.utcoffset().total_seconds() == 0
