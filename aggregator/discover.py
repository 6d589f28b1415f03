"""Feed autodiscovery: the feeds an HTML page links to. Pure, stdlib only.

A site's home page names its feeds with
``<link rel="alternate" type="application/atom+xml" href="...">`` (the RSS
autodiscovery convention, also used for Atom). :func:`feed_links` returns
them resolved against the page's URL (or its ``<base href>``), Atom first,
each once, so ``aggregator add https://example.org/`` can subscribe to a
page's feed.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

__all__ = ["FEED_TYPES", "feed_links"]

# In order of preference: Atom says more (updated dates, ids) than RSS.
FEED_TYPES = ("application/atom+xml", "application/rss+xml")


def feed_links(html: bytes, base_url: str) -> list[str]:
    """The absolute http(s) URLs of the feeds *html* links to, Atom before RSS, no repeats.

    Never raises on malformed HTML: what can't be read is skipped.
    """
    finder = _LinkFinder(base_url)
    finder.feed(html.decode("utf-8", "replace"))
    finder.close()
    found: dict[str, int] = {}
    for rank, href in sorted(finder.links, key=lambda link: link[0]):
        url = urljoin(finder.base, href.strip())
        if urlsplit(url).scheme in ("http", "https"):
            found.setdefault(url, rank)
    return list(found)


class _LinkFinder(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base_url
        self.seen_base = False
        self.links: list[tuple[int, str]] = []  # (preference, href) in document order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "base" and not self.seen_base and values.get("href"):
            # The first <base href> wins (HTML spec); it may itself be relative.
            self.base = urljoin(self.base, values["href"].strip())
            self.seen_base = True
            return
        if tag != "link" or not values.get("href"):
            return
        if "alternate" not in values.get("rel", "").lower().split():
            return
        kind = values.get("type", "").split(";")[0].strip().lower()
        if kind in FEED_TYPES:
            self.links.append((FEED_TYPES.index(kind), values["href"]))

    handle_startendtag = handle_starttag
