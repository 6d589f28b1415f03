"""The HTTP server in-process: a real server on 127.0.0.1 port 0, real requests through httpx."""

from __future__ import annotations

import gzip
import html
import http.client
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import feedparser
import httpx
import pytest

from aggregator.config import load_config
from aggregator.errors import AggregatorError
from aggregator.model import Item, Source
from aggregator.pipeline import refresh
from aggregator.server import (
    ATOM_TYPE,
    FeedServer,
    Site,
    accepts_gzip,
    render_opml,
    site_for,
    start_server,
)
from aggregator.store import open_store
from tests.conftest import write_config

FEED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:uuid:1</id><title>T</title>'
    b"<updated>2024-12-01T00:00:00Z</updated></feed>\n"
) + b"<!-- padding so gzip pays -->\n" * 40
NOW = datetime(2024, 12, 1, 9, 30, tzinfo=UTC)


def make_item(**changes: object) -> Item:
    values: dict[str, object] = {
        "id": "a1b2c3d4e5f6a1b2c3d4e5f6",
        "source": "articles",
        "title": 'Tom & Jerry <script>alert("x")</script> win',
        "url": None,
        "guid": "file:tom.txt",
        "summary": "s",
        "text": "First paragraph.\n\nSecond paragraph.",
        "content_html": "<p>The <em>body</em> text.</p>",
        "published": NOW,
        "updated": None,
        "seen": NOW,
        "author": "Ann <b>Bold</b>",
        "outlet": "Cats & Dogs Daily",
        "tags": ("pets",),
        "language": "en",
        "fingerprint": "f" * 32,
    }
    values.update(changes)
    return Item(**values)  # type: ignore[arg-type]


ITEMS = {
    "a1b2c3d4e5f6a1b2c3d4e5f6": make_item(),
    "b" * 24: make_item(id="b" * 24, url="https://news.example.org/a?x=1&y=2", content_html=""),
}
SOURCES = (
    Source(key="https://wire.example.org/rss", url="https://wire.example.org/rss", name="Wire"),
    Source(key="articles", path=Path("feeds/articles"), name="Pasted & saved"),
)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    (tmp_path / "feed.atom").write_bytes(FEED)
    (tmp_path / "topics").mkdir()
    (tmp_path / "topics" / "world-news.atom").write_bytes(FEED.replace(b">T<", b">World<"))
    (tmp_path / "secret.atom").write_bytes(b"secret")
    return Site(
        feed=tmp_path / "feed.atom",
        topics=tmp_path / "topics",
        opml=render_opml("Test feed", SOURCES),
        find_item=ITEMS.get,
        health=lambda: {"last_refresh": NOW, "sources": {"ok": 1, "error": 0}},
    )


@pytest.fixture
def served(site: Site):
    server = start_server("127.0.0.1", 0, site, poll_interval=0.05)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def client(served: FeedServer):
    with httpx.Client(base_url=served.url, timeout=5) as http:
        yield http


def raw_get(served: FeedServer, path: str, method: str = "GET") -> tuple[int, bytes]:
    """A request with the path exactly as given (httpx would normalise dot segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_feed_is_served_with_type_etag_and_last_modified(client, site):
    r = client.get("/feed.atom", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == ATOM_TYPE
    assert r.content == FEED
    assert r.headers["etag"].startswith('"') and not r.headers["etag"].startswith('W/"')
    mtime = int(site.feed.stat().st_mtime)
    assert r.headers["last-modified"] == formatdate(mtime, usegmt=True)
    assert r.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in r.headers


def test_if_none_match_gets_304(client):
    etag = client.get("/feed.atom", headers={"Accept-Encoding": "identity"}).headers["etag"]
    for value in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
        r = client.get("/feed.atom", headers={"If-None-Match": value, "Accept-Encoding": ""})
        assert r.status_code == 304, value
        assert r.content == b""
        assert r.headers["etag"] == etag
    r = client.get("/feed.atom", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200


def test_if_modified_since(client, site):
    mtime = site.feed.stat().st_mtime
    same = formatdate(mtime, usegmt=True)
    assert client.get("/feed.atom", headers={"If-Modified-Since": same}).status_code == 304
    later = formatdate(mtime + 3600, usegmt=True)
    assert client.get("/feed.atom", headers={"If-Modified-Since": later}).status_code == 304
    earlier = formatdate(mtime - 3600, usegmt=True)
    assert client.get("/feed.atom", headers={"If-Modified-Since": earlier}).status_code == 200
    junk = client.get("/feed.atom", headers={"If-Modified-Since": "yesterday"})
    assert junk.status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    both = {"If-Modified-Since": same, "If-None-Match": '"other"'}
    assert client.get("/feed.atom", headers=both).status_code == 200


def test_gzip_when_accepted(client):
    plain = client.get("/feed.atom", headers={"Accept-Encoding": "identity"})
    with client.stream("GET", "/feed.atom", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["vary"] == "Accept-Encoding"
        zipped_etag = r.headers["etag"]
    assert gzip.decompress(raw) == FEED
    assert len(raw) < len(FEED)
    # A different representation has a different strong ETag; both revalidate.
    assert zipped_etag != plain.headers["etag"]
    again = client.get("/feed.atom", headers={"If-None-Match": zipped_etag})
    assert again.status_code == 304
    refused = client.get("/feed.atom", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("GZIP", True),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("x-gzip", True),
        ("br, identity", False),
        ("gzip;q=bad", False),
    ],
)
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected


def test_head_has_the_headers_and_no_body(client):
    get = client.get("/feed.atom", headers={"Accept-Encoding": "identity"})
    head = client.head("/feed.atom", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "etag", "last-modified", "content-length"):
        assert head.headers[name] == get.headers[name]
    assert int(head.headers["content-length"]) == len(FEED)


def test_a_republished_feed_gets_a_new_etag(client, site):
    first = client.get("/feed.atom").headers["etag"]
    tmp = site.feed.with_suffix(".tmp")
    tmp.write_bytes(FEED.replace(b">T<", b">T2<"))
    os.replace(tmp, site.feed)
    r = client.get("/feed.atom", headers={"If-None-Match": first})
    assert r.status_code == 200
    assert b">T2<" in r.content
    assert r.headers["etag"] != first


def test_503_until_the_feed_is_published(client, site):
    site.feed.unlink()
    r = client.get("/feed.atom")
    assert r.status_code == 503
    assert "not published yet" in r.text
    assert r.headers["retry-after"]


def test_topic_feeds(client):
    r = client.get("/topics/world-news.atom")
    assert r.status_code == 200
    assert r.headers["content-type"] == ATOM_TYPE
    assert b">World<" in r.content
    etag = r.headers["etag"]
    assert client.get("/topics/world-news.atom", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/topics/sport.atom").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/topics/../secret.atom",
        "/topics/..%2fsecret.atom",
        "/topics/%2e%2e/secret.atom",
        "/topics/World.atom",
        "/topics/a/b.atom",
        "/topics/.atom",
        "/topics/",
        "/secret.atom",
        "/../secret.atom",
        "/%2e%2e/secret.atom",
        "//etc/passwd",
        "/feed.atom/../secret.atom",
        "/items/../feed.atom",
        "/items/",
        "/items/a1b2c3d4e5f6a1b2c3d4e5f6/x",
        "/config.toml",
        "/",
        "/favicon.ico",
    ],
)
def test_nothing_else_is_served(served, path):
    status, body = raw_get(served, path)
    assert status == 404, path
    assert b"secret" not in body


def test_other_methods_are_refused(served):
    status, _ = raw_get(served, "/feed.atom", method="POST")
    assert status == 501


def test_item_page_is_escaped_and_self_contained(client):
    r = client.get("/items/a1b2c3d4e5f6a1b2c3d4e5f6")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    assert "<script>" not in page
    assert "Tom &amp; Jerry &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; win" in page
    assert "Ann &lt;b&gt;Bold&lt;/b&gt;" in page
    assert "Cats &amp; Dogs Daily" in page
    assert "<p>The <em>body</em> text.</p>" in page  # the sanitised HTML, as stored
    assert 'datetime="2024-12-01T09:30:00+00:00"' in page
    assert "Original article" not in page
    assert "<link" not in page and "src=" not in page  # nothing loaded from elsewhere


def test_item_page_links_the_original_and_falls_back_to_text(client):
    page = client.get("/items/" + "b" * 24).text
    assert 'href="https://news.example.org/a?x=1&amp;y=2"' in page
    assert "<p>First paragraph.</p>" in page and "<p>Second paragraph.</p>" in page


def test_unknown_item_is_404(client):
    assert client.get("/items/" + "0" * 24).status_code == 404


def test_opml_lists_url_sources(client):
    r = client.get("/opml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/x-opml")
    root = ET.fromstring(r.content)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Test feed: sources"
    outlines = root.findall("body/outline")
    assert [(o.get("type"), o.get("text"), o.get("xmlUrl")) for o in outlines] == [
        ("rss", "Wire", "https://wire.example.org/rss")
    ]


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "ok"
    assert body["last_refresh"] == str(NOW)
    assert body["sources"] == {"ok": 1, "error": 0}


def test_port_in_use_is_an_error(served, site):
    with pytest.raises(AggregatorError, match="cannot listen"):
        start_server("127.0.0.1", served.port, site)


ARTICLE = """Harbor & Sons <unveil> a tidal clock in Port Welling

The harbor authority of Port Welling unveiled a tidal clock on Monday. The clock, built by
Harbor & Sons, shows the height of the water at the quay for the next twelve hours.

Officials said the clock cost 40,000 pounds and would help small boats plan their trips.
"""


def test_site_for_serves_items_from_article_files(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "clock.txt").write_text(ARTICLE, encoding="utf-8")
    config = load_config(
        write_config(tmp_path, '[[sources]]\npath = "articles"\nname = "Pasted"\n')
    )
    store = open_store(config.database)
    try:
        refresh(config, store, datetime.now(UTC), base_url="http://127.0.0.1:9")
        (item,) = store.stories(10)[0].members
    finally:
        store.close()
    feed = feedparser.parse(config.output.path.read_bytes())
    assert feed.entries[0].link == f"http://127.0.0.1:9/items/{item.id}"
    server = start_server("127.0.0.1", 0, site_for(config, dict), poll_interval=0.05)
    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            page = http.get(f"/items/{item.id}")
            assert page.status_code == 200
            # normalize() drops the tag-like "<unveil>"; what is left is escaped.
            assert f"<h1>{html.escape(item.title)}</h1>" in page.text
            assert "<h1>Harbor &amp; Sons" in page.text
            assert "tidal clock on Monday" in page.text
            assert http.get(f"/items/{item.id[:8]}").status_code == 404  # ids, not prefixes
            assert http.get("/feed.atom").content == config.output.path.read_bytes()
            assert http.get("/opml").status_code == 200
    finally:
        server.close()
