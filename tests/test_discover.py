"""discover.py: feed autodiscovery from <link rel="alternate">."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.discover import feed_links

BASE = "https://example.org/blog/index.html"


def page(head: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>t</title>{head}</head><body>hi</body></html>".encode()
    )


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("", []),
        (
            '<link rel="alternate" type="application/rss+xml" href="/rss.xml">'
            '<link rel="alternate" type="application/atom+xml" href="atom.xml">',
            ["https://example.org/blog/atom.xml", "https://example.org/rss.xml"],
        ),
        (  # dedupe, after resolving
            '<link rel="alternate" type="application/atom+xml" href="/blog/atom.xml">'
            '<link rel="alternate" type="application/atom+xml" href="atom.xml">',
            ["https://example.org/blog/atom.xml"],
        ),
        (  # document order kept within a type; case and extra tokens tolerated
            '<LINK REL="Alternate Feed" TYPE="Application/RSS+XML; charset=utf-8"'
            ' HREF="//cdn.example/a.rss"/>'
            "<link rel=alternate type=application/rss+xml href=b.rss>",
            ["https://cdn.example/a.rss", "https://example.org/blog/b.rss"],
        ),
        (  # not feeds
            '<link rel="stylesheet" type="text/css" href="s.css">'
            '<link rel="alternate" type="text/html" href="/fr/">'
            '<link rel="alternate" hreflang="fr" href="/fr/">'
            '<link rel="alternate" type="application/atom+xml">'
            '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            '<a rel="alternate" type="application/rss+xml" href="/not-a-link-tag">',
            [],
        ),
        (  # <base href> changes what relative hrefs mean
            '<base href="https://static.example/feeds/">'
            '<link rel="alternate" type="application/atom+xml" href="main.atom">',
            ["https://static.example/feeds/main.atom"],
        ),
        (  # entities in attributes are decoded
            '<link rel="alternate" type="application/rss+xml" href="/feed?a=1&amp;b=2">',
            ["https://example.org/feed?a=1&b=2"],
        ),
    ],
)
def test_feed_links(head, expected):
    assert feed_links(page(head), BASE) == expected


@pytest.mark.parametrize(
    "html",
    [
        b"",
        b"<html><head><link rel=alternate type=application/atom+xml href=",
        b"\xff\xfe\x00<<<>>>",
        b"<link rel='alternate' type='application/atom+xml' href='/a'><script>&&&</script",
    ],
)
def test_broken_html_never_raises(html):
    assert isinstance(feed_links(html, BASE), list)


@given(st.binary(max_size=500))
def test_any_bytes_give_http_urls(data):
    assert all(url.startswith(("http://", "https://")) for url in feed_links(data, BASE))
