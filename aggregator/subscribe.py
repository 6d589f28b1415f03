"""Adding sources the way feed-reader users do: a URL (a feed or a page that
links to one), or an OPML file from another reader.

Sources added here live in the state, beside those of ``config.toml``; for
the same URL the config's entry wins (its name and interval apply).
"""

from __future__ import annotations

from .config import DEFAULT_INTERVAL, Config
from .discover import feed_links
from .errors import FetchError, ParseError
from .fetch import Fetched, Limits, fetch
from .model import Source
from .opml import Subscription
from .parse import parse_feed
from .store import SQLiteStore

__all__ = ["all_sources", "find_feed"]


def all_sources(config: Config, store: SQLiteStore) -> tuple[Source, ...]:
    """The config's sources, then the subscriptions the config does not list."""
    listed = {s.key for s in config.sources}
    added = tuple(
        Source(key=sub.url, url=sub.url, name=sub.title, interval=DEFAULT_INTERVAL)
        for sub in store.subscriptions()
        if sub.url not in listed
    )
    return config.sources + added


def find_feed(url: str, limits: Limits) -> Subscription:
    """The feed at *url*, or the first feed a page at *url* links to
    (``<link rel="alternate" type="application/atom+xml">``), with its title.

    Raises:
        FetchError: the URL (or the feed it points to) cannot be fetched.
        ParseError: neither the URL nor any feed it links to is a feed.
    """
    fetched = _fetch(url, limits)
    try:
        parsed = parse_feed(
            fetched.content, source=url, origin=fetched.url, headers=fetched.headers
        )
        return Subscription(fetched.url, parsed.title)
    except ParseError as not_a_feed:
        for link in feed_links(fetched.content, fetched.url)[:3]:
            try:
                found = _fetch(link, limits)
                parsed = parse_feed(found.content, source=link, origin=found.url)
            except (FetchError, ParseError):
                continue
            return Subscription(found.url, parsed.title)
        raise ParseError(url, "no feed here, and the page links to none") from not_a_feed


def _fetch(url: str, limits: Limits) -> Fetched:
    result = fetch(url, limits=limits)
    if not isinstance(result, Fetched):  # a 304 without validators: a broken server
        raise FetchError(url, "the server answered 304 to an unconditional request")
    return result
