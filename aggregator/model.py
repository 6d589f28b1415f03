"""The values that flow between the stages: frozen, slotted, UTC-only.

Each stage has its own type, as reader separates parsed from stored data:

    Source --fetch/local--> bytes --parse/articles--> Entry --normalize--> Item
    Item --dedupe/cluster--> Story --publish--> Atom

A feedparser dict never gets past ``parse.py``; everything after it sees these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

__all__ = [
    "Entry",
    "Item",
    "NotModified",
    "RefreshReport",
    "Skipped",
    "Source",
    "SourceError",
    "SourceResult",
    "Story",
    "Topic",
    "TopicRule",
    "Updated",
    "check_utc",
]


def check_utc(name: str, value: datetime | None) -> None:
    """Raise ``ValueError`` unless *value* is None or an aware UTC datetime."""
    if value is None:
        return
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be a timezone-aware UTC datetime, got {value!r}")


@dataclass(frozen=True, slots=True)
class Source:
    """Where items come from: a feed URL or a local folder.

    ``key`` is the source's identity in the state: the URL as configured, or
    the folder's resolved path.
    """

    key: str
    url: str | None = None
    path: Path | None = None
    name: str | None = None
    interval: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        if (self.url is None) == (self.path is None):
            raise ValueError("a Source has exactly one of url and path")

    @property
    def kind(self) -> Literal["url", "folder"]:
        return "url" if self.url is not None else "folder"

    @property
    def label(self) -> str:
        """What to call the source in messages and listings."""
        return self.name or self.key


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as read from a feed or an article file, before normalising.

    Text fields are as the source wrote them (HTML or plain); dates are UTC or
    None when the source gave none. ``origin`` names the file or URL it came
    from, for error messages.
    """

    source: str
    origin: str
    title: str | None
    guid: str | None = None
    link: str | None = None
    summary: str | None = None
    content: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    author: str | None = None
    outlet: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    # The absolute URL that relative links in summary and content resolve
    # against (the feed's xml:base or final URL); None leaves them as written.
    base: str | None = None

    def __post_init__(self) -> None:
        check_utc("published", self.published)
        check_utc("updated", self.updated)


@dataclass(frozen=True, slots=True)
class Item:
    """A normalised article: canonical URL, plain text, sanitised HTML, UTC dates.

    ``id`` is stable: derived from the source and the entry's GUID, link or
    fingerprint, so the same article read again keeps it. ``published`` is
    None when the source gave no date; ``seen`` is when we first read it.
    ``fingerprint`` hashes the normalised title and text, to spot copies.
    """

    id: str
    source: str
    title: str
    url: str | None
    guid: str | None
    summary: str
    text: str
    content_html: str
    published: datetime | None
    updated: datetime | None
    seen: datetime
    author: str | None
    outlet: str
    tags: tuple[str, ...]
    language: str | None
    fingerprint: str

    def __post_init__(self) -> None:
        check_utc("published", self.published)
        check_utc("updated", self.updated)
        check_utc("seen", self.seen)

    @property
    def date(self) -> datetime:
        """The best date for display and ordering: published, else updated, else seen."""
        return self.published or self.updated or self.seen

    @property
    def last_modified(self) -> datetime:
        return self.updated or self.published or self.seen


@dataclass(frozen=True, slots=True)
class Topic:
    """A tag: ``term`` is URL-safe and stable, ``label`` is for humans."""

    term: str
    label: str


@dataclass(frozen=True, slots=True)
class TopicRule:
    """A topic of the user's taxonomy: its name, and the words that mean it."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Story:
    """One event as reported by one or more outlets.

    ``id`` never changes as members join; ``members`` are in publication
    order; ``lead_id`` names the member whose headline and link lead.
    """

    id: str
    lead_id: str
    members: tuple[Item, ...]
    topics: tuple[Topic, ...] = ()

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError(f"story {self.id} has no members")
        if all(m.id != self.lead_id for m in self.members):
            raise ValueError(f"story {self.id}: lead {self.lead_id} is not a member")

    @property
    def lead(self) -> Item:
        return next(m for m in self.members if m.id == self.lead_id)

    @property
    def published(self) -> datetime:
        return min(m.date for m in self.members)

    @property
    def updated(self) -> datetime:
        return max(m.last_modified for m in self.members)

    @property
    def outlets(self) -> tuple[str, ...]:
        """Every outlet that reported the story, once each, in order of reporting."""
        return tuple(dict.fromkeys(m.outlet for m in self.members))


@dataclass(frozen=True, slots=True)
class Updated:
    """The source was read: how many items were new, how many changed."""

    new: int
    changed: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304 (or the folder did not change)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """Not fetched this time: the server asked us to wait, or it is gone."""

    reason: str


@dataclass(frozen=True, slots=True)
class SourceError:
    """The source failed; ``message`` says why, naming the URL or file."""

    message: str


@dataclass(frozen=True, slots=True)
class SourceResult:
    source: Source
    value: Updated | NotModified | Skipped | SourceError


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one refresh did: a result per source, and what was published."""

    results: tuple[SourceResult, ...]
    stories: int
    output: Path
    new: int = field(default=0)
    changed: int = field(default=0)
