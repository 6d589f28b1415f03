"""Feed bytes -> :class:`Entry` values: the only module that uses feedparser.

feedparser gets bytes, never a URL, with ``content-location`` set to the final
URL so relative links resolve, and without ``content-encoding`` because httpx
already decoded the body (both as reader does). Its own HTML sanitiser and its
rewriting of relative links inside HTML are off: ``normalize`` sanitises every
piece of HTML with nh3, once, and nh3 resolves relative links against the
entry's ``base`` in the same pass. The two were 60% of feedparser's time.

Bozo feeds keep what feedparser recovered (STYLE.md §4): an encoding override
or a non-XML content type is only a warning; any other bozo is recorded on the
result; :class:`ParseError` is raised only when nothing usable came out.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from .errors import ParseError
from .model import Entry
from .plain_feed import read_plain

__all__ = ["ParsedFeed", "parse_feed"]

# Bozo exceptions that mean "read fine, but the server labelled it oddly".
_HARMLESS_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """The entries of one feed document, and what was wrong with it, if anything."""

    title: str | None
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()


def parse_feed(
    data: bytes,
    *,
    source: str,
    origin: str,
    headers: Mapping[str, str] | None = None,
    plain: bool = True,
) -> ParsedFeed:
    """Parse one feed document.

    *origin* is the final URL or the file path, used for relative links and
    in messages. A plain RSS 2.0 or Atom 1.0 document is read by
    ``plain_feed`` (the same entries, five times faster), anything else by
    feedparser; ``plain=False`` sends everything to feedparser.

    Raises:
        ParseError: the bytes are not a feed, or every entry in it was unusable.
    """
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    response_headers.pop("content-encoding", None)
    response_headers.pop("content-length", None)
    response_headers["content-location"] = origin
    read = (
        read_plain(data, source=source, origin=origin, headers=response_headers) if plain else None
    )
    if read is not None:
        title, plain_entries = read
        return ParsedFeed(title, tuple(filter(_is_article, plain_entries)))
    try:
        parsed = feedparser.parse(
            data,
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser is not supposed to raise, but has.
        raise ParseError(origin, "feedparser failed") from exc
    warnings = _bozo_warnings(parsed)
    feed = parsed.get("feed", {})
    if not parsed.get("version") and not parsed.entries:
        problem = warnings[0] if warnings else "no RSS or Atom found"
        raise ParseError(origin, f"not a feed ({problem})")
    outlet = _text(feed.get("title"))
    language = feed.get("language") or None
    entries: list[Entry] = []
    failures: list[str] = []
    for n, raw in enumerate(parsed.entries):
        try:
            entry = _entry(raw, source=source, origin=origin, outlet=outlet, language=language)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            failures.append(f"entry {n}: {type(exc).__name__}: {exc}")
            continue
        if _is_article(entry):
            entries.append(entry)
    if failures and not entries:
        raise ParseError(origin, f"every entry failed ({failures[0]})")
    return ParsedFeed(outlet, tuple(entries), tuple(warnings + failures))


def _is_article(entry: Entry) -> bool:
    """A recovered fragment with no title, link or text is not an article."""
    return bool(entry.title or entry.link or entry.summary or entry.content)


def _bozo_warnings(parsed: Any) -> list[str]:
    if not parsed.get("bozo"):
        return []
    exc = parsed.get("bozo_exception")
    name = type(exc).__name__
    if name in _HARMLESS_BOZO:
        return []
    return [f"{name}: {exc}"]


def _entry(
    raw: Any, *, source: str, origin: str, outlet: str | None, language: str | None
) -> Entry:
    content = raw.get("content") or []
    published = _date(raw.get("published_parsed"))
    # dict.get, not raw.get: feedparser maps a missing "updated" to "published"
    # with a DeprecationWarning, and we want to know when there was none.
    updated = _date(dict.get(raw, "updated_parsed"))
    tags = tuple(
        term
        for tag in raw.get("tags") or []
        if (term := _text(tag.get("label") or tag.get("term")))
    )
    source_outlet = _text((raw.get("source") or {}).get("title"))
    detail = content[0] if content else raw.get("summary_detail") or {}
    return Entry(
        source=source,
        origin=origin,
        title=_text(raw.get("title")),
        guid=_text(raw.get("id")),
        link=_text(raw.get("link")),
        summary=_text(raw.get("summary")),
        content=_text(content[0].get("value")) if content else None,
        published=published or updated,
        updated=updated,
        author=_text(raw.get("author")),
        outlet=source_outlet or outlet,
        tags=tags,
        language=(content[0].get("language") if content else None) or language,
        base=_text(detail.get("base")) or origin,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date(value: time.struct_time | None) -> datetime | None:
    """feedparser's struct_time is UTC; a year out of range is no date."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None
