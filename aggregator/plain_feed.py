"""A fast reader for the plainest feeds, and only those: RSS 2.0 and Atom 1.0
that are well-formed UTF-8 XML and use nothing but the common elements.

feedparser reads anything, and pays for it: ~0.5 ms an item with its
defaults, more than any other stage of a refresh but clustering
(bench/fetch_scale.py). Most real feeds are plain, and for them ElementTree
(expat, in C) reads the same fields five times faster than feedparser with
its sanitiser and link rewriting off, eleven times faster than with its
defaults (100 of fetch_scale's feeds: 0.12 s, 0.66 s, 1.42 s).

``read_plain`` returns the entries feedparser would have given for such a
document (``tests/test_plain_feed.py`` checks this against feedparser on
every file of the wild-feeds corpus), and None for anything it is not sure
of, which ``parse.py`` then hands to feedparser: a
DOCTYPE, another encoding, xml:base or xml:lang, XHTML content, an element it
does not know, a repeated field, a date it cannot read. No entity is ever
expanded here: a document declaring one has a DOCTYPE.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from .model import Entry

__all__ = ["read_plain"]

_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_XML = "{http://www.w3.org/XML/1998/namespace}"

# The XML declaration, if any, must declare UTF-8 (or nothing, which means it).
_DECLARATION = re.compile(rb"<\?xml[^>]*\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)
_UTF8 = {"utf-8", "utf8"}

# Item children read here, and those that carry nothing an Entry holds.
_RSS_READ = {"title", "link", "guid", "description", "pubDate", "author", "category", "source"}
_RSS_READ |= {_CONTENT + "encoded", _DC + "creator"}
_RSS_IGNORED = {"comments", "enclosure"}
_ATOM_READ = {"id", "title", "link", "summary", "content", "published", "updated", "author"}
_ATOM_READ |= {"category", "source"}
_ATOM_IGNORED = {"contributor", "rights"}
_REPEATABLE = {"category", _ATOM + "category", _ATOM + "link", _ATOM + "contributor"}
_TEXT_TYPES = {None, "text", "html"}


class _NotPlain(Exception):
    """The document needs feedparser."""


def read_plain(
    data: bytes, *, source: str, origin: str, headers: Mapping[str, str]
) -> tuple[str | None, tuple[Entry, ...]] | None:
    """(feed title, entries) of a plain RSS 2.0 or Atom 1.0 document, or None.

    *headers* are the response's, lower-cased; *origin* the final URL or the
    file's path, which relative links resolve against as in feedparser.
    """
    # A Content-Language header is feedparser's default language for content.
    if not _plain_bytes(data, headers) or "content-language" in headers:
        return None
    try:
        root = ET.fromstring(data)
        if root.tag == "rss" and root.get("version") == "2.0":
            return _rss(root, source=source, origin=origin)
        if root.tag == _ATOM + "feed":
            return _atom(root, source=source, origin=origin)
    except (_NotPlain, ET.ParseError, ValueError, OverflowError):
        pass
    return None


def _plain_bytes(data: bytes, headers: Mapping[str, str]) -> bool:
    if data[:3] == b"\xef\xbb\xbf" or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return False
    head = data[:200].lstrip()
    if head[:1] != b"<":
        return False
    declaration = _DECLARATION.match(head)
    if declaration:
        encoding = _ENCODING.search(declaration.group())
        if encoding and encoding.group(1).decode().lower() not in _UTF8:
            return False
    charset = _CHARSET.search(headers.get("content-type", ""))
    return charset is None or charset.group(1).lower() in _UTF8


def _rss(root: ET.Element, *, source: str, origin: str) -> tuple[str | None, tuple[Entry, ...]]:
    channel = _only(root, "channel")
    if channel is None or len(root) > 1 or _has_odd_attributes(root):
        raise _NotPlain
    if any(child.tag.startswith(_DC) for child in channel):
        raise _NotPlain  # dc:title, dc:language and the like change the feed's fields
    outlet = _text(_only(channel, "title"))
    language = _text(_only(channel, "language"))
    entries = []
    items = channel.findall("item")
    if len(items) != sum(1 for _ in root.iter("item")):
        raise _NotPlain  # an item outside the channel, or inside another element
    for item in items:
        fields = _fields(item, _RSS_READ, _RSS_IGNORED)
        guid_element = fields.get("guid")
        guid = _text(guid_element)
        permalink = guid_element is not None and guid_element.get("isPermaLink", "true") == "true"
        if guid is not None and permalink:
            guid = _join(origin, guid)  # feedparser resolves a permalink guid as a URL
        if "link" in fields:  # even empty, it wins over the guid
            link = _absolute(_rss_link(_text(fields["link"])), origin)
        else:
            link = guid if permalink else None  # a permalink guid stands in, as in feedparser
        published = _rfc822(_text(fields.get("pubDate")))
        content = _text(fields.get(_CONTENT + "encoded"))
        source_title = _text(fields.get("source"))
        entries.append(
            Entry(
                source=source,
                origin=origin,
                title=_text(fields.get("title")),
                guid=guid,
                link=link,
                # feedparser copies the content to a summary that is not there.
                summary=_text(fields["description"]) if "description" in fields else content,
                content=content,
                published=published,
                updated=None,
                author=_author(fields),
                outlet=source_title or outlet,
                tags=_rss_tags(item.findall("category")),
                language=language,
                base=origin,
            )
        )
    return outlet, tuple(entries)


def _atom(root: ET.Element, *, source: str, origin: str) -> tuple[str | None, tuple[Entry, ...]]:
    if _has_odd_attributes(root):
        raise _NotPlain
    outlet = _atom_text(_only(root, _ATOM + "title"))
    entries = []
    elements = root.findall(_ATOM + "entry")
    if len(elements) != sum(1 for _ in root.iter(_ATOM + "entry")):
        raise _NotPlain  # an entry inside another element
    for element in elements:
        fields = _fields(
            element, {_ATOM + t for t in _ATOM_READ}, {_ATOM + t for t in _ATOM_IGNORED}
        )
        content = fields.get(_ATOM + "content")
        if content is not None and content.get("src") is not None:
            raise _NotPlain
        updated = _rfc3339(_text(fields.get(_ATOM + "updated")))
        source_element = fields.get(_ATOM + "source")
        guid = _join(origin, _text(fields.get(_ATOM + "id")))
        entries.append(
            Entry(
                source=source,
                origin=origin,
                title=_atom_text(fields.get(_ATOM + "title")),
                guid=guid,
                # An entry without an alternate link links to its id, as in feedparser.
                link=_alternate(element.findall(_ATOM + "link"), origin) or guid,
                summary=_atom_text(fields[_ATOM + "summary"])
                if _ATOM + "summary" in fields
                else _atom_text(content),
                content=_atom_text(content),
                published=_rfc3339(_text(fields.get(_ATOM + "published"))) or updated,
                updated=updated,
                author=_atom_author(fields.get(_ATOM + "author")),
                outlet=(
                    _atom_text(_only(source_element, _ATOM + "title"))
                    if source_element is not None
                    else None
                )
                or outlet,
                tags=_atom_tags(element.findall(_ATOM + "category")),
                language=None,
                base=origin,
            )
        )
    return outlet, tuple(entries)


def _author(fields: Mapping[str, ET.Element]) -> str | None:
    if _DC + "creator" in fields and "author" in fields:
        raise _NotPlain  # which wins is feedparser's business
    creator = fields.get(_DC + "creator")
    return _text(creator if creator is not None else fields.get("author"))


def _atom_author(author: ET.Element | None) -> str | None:
    if author is None:
        return None
    name, email = _text(_only(author, _ATOM + "name")), _text(_only(author, _ATOM + "email"))
    if name is None:
        if email is not None:
            raise _NotPlain
        return None
    return f"{name} ({email})" if email else name


def _fields(item: ET.Element, read: set[str], ignored: set[str]) -> dict[str, ET.Element]:
    """An item's known children by tag; anything unknown, repeated or nested
    (but an Atom author's or source's parts) is not plain."""
    fields: dict[str, ET.Element] = {}
    for child in item:
        tag = child.tag
        if tag in ignored:
            continue
        if tag not in read or (tag in fields and tag not in _REPEATABLE):
            raise _NotPlain
        if len(child) and tag not in (_ATOM + "author", _ATOM + "source"):
            raise _NotPlain
        fields.setdefault(tag, child)
    return fields


def _has_odd_attributes(root: ET.Element) -> bool:
    """xml:base or xml:lang anywhere, or an attribute name in capitals (feedparser
    lower-cases names, so ``Type`` is its ``type``), but RSS's ``isPermaLink``."""
    for element in root.iter():
        for key, value in element.attrib.items():
            if key == "isPermaLink":
                if value not in ("true", "false"):
                    return True
            elif key.startswith(_XML) or not key.islower() or key == "ispermalink":
                return True
    return False


def _only(parent: ET.Element | None, tag: str) -> ET.Element | None:
    if parent is None:
        return None
    found = parent.findall(tag)
    if len(found) > 1:
        raise _NotPlain
    return found[0] if found else None


def _text(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    if len(element):
        raise _NotPlain  # markup inside: feedparser reads it its own way
    text = (element.text or "").strip()
    return text or None


def _atom_text(element: ET.Element | None) -> str | None:
    if element is not None and element.get("type") not in _TEXT_TYPES:
        raise _NotPlain  # xhtml, or a media type
    return _text(element)


def _alternate(links: list[ET.Element], origin: str) -> str | None:
    """As feedparser: the last alternate link of an HTML type (the default)."""
    found = None
    for link in links:
        if "url" in link.attrib or "uri" in link.attrib:
            raise _NotPlain  # feedparser reads these as the href
        href = (link.get("href") or "").strip()
        if not href:
            raise _NotPlain
        # feedparser lower-cases the values of rel and type.
        kind = link.get("type", "text/html").lower()
        if link.get("rel", "alternate").lower() == "alternate" and kind in _HTML_TYPES:
            found = _absolute(href, origin)
    return found


_HTML_TYPES = {"text/html", "html", "application/xhtml+xml", "xhtml"}


def _rss_link(url: str | None) -> str | None:
    # feedparser's repair of links whose query it takes for entity references.
    if url is None:
        return None
    return _ENTITY_LIKE.sub(r"&\g<1>", url.replace("&amp;", "&")) or None


_ENTITY_LIKE = re.compile(r"&([A-Za-z0-9_]+);")


def _absolute(url: str | None, origin: str) -> str | None:
    """*url* resolved against *origin*; an http(s) URL, or the document is not plain."""
    resolved = _join(origin, url)
    if resolved is not None and not _is_absolute(resolved):
        raise _NotPlain
    return resolved


# As feedparser resolves links and ids: "http:///x" loses its extra slashes.
_EXTRA_SLASHES = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")


def _join(base: str, url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return urljoin(base, _EXTRA_SLASHES.sub(r"\1\3", url.strip())) or None
    except ValueError as exc:
        raise _NotPlain from exc


def _is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _rss_tags(categories: list[ET.Element]) -> tuple[str, ...]:
    if any(c.attrib for c in categories):
        raise _NotPlain  # a domain changes how feedparser merges repeated categories
    return tuple(dict.fromkeys(term for c in categories if (term := _text(c))))


def _atom_tags(categories: list[ET.Element]) -> tuple[str, ...]:
    """As feedparser: repeats of a (term, scheme, label) dropped, label over term."""
    seen: dict[tuple[str | None, str | None, str | None], None] = {}
    for c in categories:
        if (c.text or "").strip():
            raise _NotPlain  # feedparser reads a category's text as its term
        key = (c.get("term"), c.get("scheme", c.get("domain")), c.get("label"))
        if any(key):
            seen.setdefault(key)
    return tuple(
        label for term, _, label_ in seen if (label := (label_ or term or "").strip() or None)
    )


# RFC 822 dates as feeds write them, with a four-digit year and a numeric or
# RFC 822 zone; anything looser (two-digit years, other zone names) is read
# by feedparser, whose rules for those are its own.
_RFC822 = re.compile(
    r"(?:[A-Za-z]{3}, *)?\d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? "
    r"(?:[+-]\d{4}|UT|UTC|GMT|Z|[ECMP][SD]T)"
)


def _rfc822(value: str | None) -> datetime | None:
    if value is None:
        return None
    if not _RFC822.fullmatch(value):
        raise _NotPlain
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise _NotPlain from exc
    return _utc(parsed)


def _rfc3339(value: str | None) -> datetime | None:
    if value is None:
        return None
    if len(value) < 20 or value[10] not in "Tt":
        raise _NotPlain  # a date alone, or a form feedparser reads its own way
    return _utc(datetime.fromisoformat(value.replace("z", "Z")))


def _utc(value: datetime) -> datetime:
    # feedparser keeps whole seconds and reads a date without a zone as UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC).replace(microsecond=0)
    if not _YEARS[0] <= value.year <= _YEARS[1]:
        raise _NotPlain  # where feedparser's struct_time and ours may part ways
    return value


_YEARS = (1971, 2200)
