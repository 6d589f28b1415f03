"""Stories -> Atom 1.0 bytes, and the atomic write of the published file.

The only feedgen user. ``render`` is pure: it takes ``now`` and returns the
same bytes for the same stories, so a refresh that changed nothing rewrites an
identical file. ``write_atomic`` is the one piece of I/O.

One entry per story, newest first::

    id         story.id              updated    story.updated (newest member)
    title      the lead's headline   published  story.published (first report)
    author     one per outlet        summary    the lead's summary, plain text
    category   one per topic         content    the lead's HTML + "Reported by" list
    link       rel="alternate" to the lead's article, rel="related" to every member's
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

from .errors import PublishError
from .model import Item, Story, check_utc
from .normalize import sanitize_html

__all__ = [
    "DEFAULT_AUTHOR",
    "DEFAULT_LIMIT",
    "TOPIC_SCHEME",
    "FeedMeta",
    "SharedEntries",
    "fsync_dir",
    "render",
    "write_atomic",
]

DEFAULT_LIMIT = 200
SharedEntries = dict[tuple[str, str | None], FeedEntry]
"""Each story's entry by (story id, topic scheme), built once per publish."""
DEFAULT_AUTHOR = "Story Aggregator"
# An opaque, stable IRI naming our topic vocabulary (RFC 4287 4.2.2.2); a
# deployment may point FeedMeta.topic_scheme at its own topics page instead.
TOPIC_SCHEME = "tag:story-aggregator,2024:topics"
UNTITLED = "(untitled)"
HTML_TYPE = "text/html"
# A new file gets rw-r--r--: the feed is public, and a separate web server may serve it.
DEFAULT_FILE_MODE = 0o644

_EXTENSION = "aggregator_links"
# Characters XML 1.0 forbids; lxml refuses strings holding them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# What may not appear literally in an IRI (RFC 3987), and a % that starts no escape.
_NOT_IRI = re.compile(r'[\x00-\x20\x7f<>"{}|\\^`]|%(?![0-9A-Fa-f]{2})')
_LINK_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What the feed says about itself; ``id`` and ``self_url`` are absolute IRIs."""

    id: str
    title: str
    self_url: str
    author: str = DEFAULT_AUTHOR
    subtitle: str | None = None
    alternate_url: str | None = None
    topic_scheme: str | None = TOPIC_SCHEME


def _item_url(item: Item) -> str | None:
    return item.url


def render(
    stories: Sequence[Story],
    meta: FeedMeta,
    now: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    item_url: Callable[[Item], str | None] = _item_url,
    shared: SharedEntries | None = None,
) -> bytes:
    """Render *stories* as an Atom 1.0 document, newest first, at most *limit* entries.

    Entries are ordered by ``updated`` descending, then id; a repeated story id
    keeps its newest version. The feed's ``updated`` is the newest entry's, or
    *now* when there is none. *item_url* gives each member's link (default
    ``item.url``); a member without one gets no link. *shared*, passed to
    every feed of one publish (the merged feed and its topic feeds carry the
    same stories, with the same *item_url*), keeps each story's entry so that
    it is built once.

    Raises:
        ValueError: *now* is not aware UTC, or *limit* is negative.
    """
    check_utc("now", now)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    kept = _newest_first(stories, limit)
    fg = _feed(meta, kept[0].updated if kept else now)
    for story in kept:
        key = (story.id, meta.topic_scheme)
        entry = shared.get(key) if shared is not None else None
        if entry is None:
            entry = _entry(story, meta, item_url)
            if shared is not None:
                shared[key] = entry
        fg.add_entry(entry, order="append")
    data: bytes = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return data


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> bool:
    """Write *data* to *path* so a reader sees the old file or the new one, never
    half; True when the file was written.

    The bytes go to a temp file in the same directory (``os.replace`` is atomic
    only within one filesystem), are fsynced, then replace *path*, and the
    directory is fsynced so the rename lasts (a caller writing many files to
    one directory may pass ``sync_dir=False`` and call :func:`fsync_dir` once).
    Missing parent directories are created; an existing file's permissions are
    kept. A file that already holds *data* is left alone (no write, no new mtime).

    Raises:
        PublishError: naming *path*, when any step fails; no temp file is left.
    """
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False  # unchanged: a reader's conditional request still matches
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_for(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise PublishError(str(path), "cannot write the feed") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    if sync_dir:
        fsync_dir(path.parent)
    return True


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return DEFAULT_FILE_MODE


def fsync_dir(directory: Path) -> None:
    """Make the renames into *directory* durable. Best effort: the new files
    are already in place, and some platforms cannot open a directory at all."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _newest_first(stories: Iterable[Story], limit: int) -> list[Story]:
    by_id = sorted(stories, key=lambda s: s.id)
    # sort() is stable with reverse=True too, so equal times stay in id order.
    ordered = sorted(by_id, key=lambda s: s.updated, reverse=True)
    kept: list[Story] = []
    seen: set[str] = set()
    for story in ordered:
        if len(kept) >= limit:
            break
        if story.id not in seen:
            seen.add(story.id)
            kept.append(story)
    return kept


def _feed(meta: FeedMeta, updated: datetime) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(_text(meta.id))
    fg.title(_text(meta.title) or UNTITLED)
    fg.updated(updated)
    fg.author({"name": _text(meta.author) or DEFAULT_AUTHOR})
    fg.link(href=_text(meta.self_url), rel="self", type="application/atom+xml")
    alternate = _href(meta.alternate_url)
    if alternate:
        fg.link(href=alternate, rel="alternate", type=HTML_TYPE)
    if meta.subtitle:
        fg.subtitle(_text(meta.subtitle))
    return fg


def _entry(story: Story, meta: FeedMeta, item_url: Callable[[Item], str | None]) -> FeedEntry:
    lead = story.lead
    fe = FeedEntry()
    fe.id(_text(story.id))
    fe.title(_text(lead.title).strip() or UNTITLED)
    fe.updated(story.updated)
    fe.published(story.published)
    authors = [{"name": name} for name in map(_text, story.outlets) if name.strip()]
    if authors:  # else the feed's author stands in (RFC 4287 4.1.2)
        fe.author(authors)
    if lead.summary.strip():
        fe.summary(_text(lead.summary))
    fe.content(_content(story, item_url), type="html")
    for topic in story.topics:
        category = {"term": _text(topic.term), "label": _text(topic.label)}
        if meta.topic_scheme:
            category["scheme"] = _text(meta.topic_scheme)
        fe.category(category)
    # feedgen 1.0.0 drops rel, type and title on entry links
    # (https://github.com/lkiesow/python-feedgen/issues/135), so an extension
    # writes every entry link itself; none go through fe.link().
    fe.register_extension(
        _EXTENSION, partial(_EntryLinks, _links(story, item_url)), atom=True, rss=False
    )
    return fe


@dataclass(frozen=True, slots=True)
class _Link:
    href: str
    rel: str
    title: str | None = None


def _links(story: Story, item_url: Callable[[Item], str | None]) -> tuple[_Link, ...]:
    links: list[_Link] = []
    lead_href = _href(item_url(story.lead))
    if lead_href:
        links.append(_Link(lead_href, "alternate", _text(story.lead.title).strip() or None))
    related: set[str] = set()
    for member in story.members:
        href = _href(item_url(member))
        if href and href not in related:
            related.add(href)
            title = _text(member.outlet).strip() or _text(member.title).strip()
            links.append(_Link(href, "related", title or None))
    return tuple(links)


class _Element(Protocol):
    """The part of lxml's ``_Element`` the extension uses (lxml ships no types)."""

    def makeelement(self, tag: str, attrib: dict[str, str]) -> _Element: ...

    def append(self, element: _Element) -> None: ...


class _EntryLinks:
    """A feedgen entry extension that appends ``atom:link`` elements with all attributes.

    feedgen builds its elements unqualified under a root that declares the
    Atom namespace as default, so an unqualified ``link`` is ``atom:link``.
    """

    def __init__(self, links: tuple[_Link, ...]) -> None:
        self._links = links

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, entry: _Element) -> _Element:
        for link in self._links:
            attrib = {"href": link.href, "rel": link.rel, "type": HTML_TYPE}
            if link.title:
                attrib["title"] = link.title
            entry.append(entry.makeelement("link", attrib))
        return entry


def _content(story: Story, item_url: Callable[[Item], str | None]) -> str:
    """The lead's HTML (or its summary), then who reported the story, sanitised."""
    lead = story.lead
    body = lead.content_html.strip()
    if not body and lead.summary.strip():
        body = f"<p>{_escape(lead.summary)}</p>"
    rows = "".join(_reported_row(member, item_url) for member in story.members)
    return _text(sanitize_html(f"{body}<p><strong>Reported by</strong></p><ul>{rows}</ul>"))


def _reported_row(member: Item, item_url: Callable[[Item], str | None]) -> str:
    headline = _escape(_text(member.title).strip() or UNTITLED)
    href = _href(item_url(member))
    if href:
        headline = f'<a href="{_escape(href)}">{headline}</a>'
    when = member.date
    return (
        f"<li><strong>{_escape(member.outlet)}</strong>: {headline}"
        f" <small>{when:%Y-%m-%d %H:%M} UTC</small></li>"
    )


def _escape(text: str) -> str:
    return html.escape(_text(text), quote=True)


def _text(text: str) -> str:
    """*text* without the characters XML cannot carry (lxml would raise on them)."""
    return _NOT_XML.sub("", text)


def _href(url: str | None) -> str | None:
    """*url* fit for an ``href``: http(s) or relative, with unsafe characters %-escaped.

    Any other scheme (``javascript:``, ``data:``, ``file:``) gives None: no link.
    """
    if url is None:
        return None
    url = _text(url).strip()
    scheme = _SCHEME.match(url)
    if not url or (scheme and scheme.group(1).lower() not in _LINK_SCHEMES):
        return None
    return _NOT_IRI.sub(lambda m: quote(m.group(), safe=""), url)
