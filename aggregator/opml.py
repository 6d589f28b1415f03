"""OPML 2.0 subscription lists in and out: pure, stdlib only.

OPML is the format every feed reader imports and exports subscriptions in
(http://opml.org/spec2.opml). :func:`parse_opml` reads every ``<outline>``
with an ``xmlUrl`` at any depth (readers nest them in folders) and ignores
the rest; :func:`render_opml` writes a flat list back.

Parsing is done with expat directly, refusing any DOCTYPE or entity
declaration before it is expanded (what defusedxml does), so an OPML file
can neither blow up memory (billion laughs) nor read local files (XXE).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import NoReturn
from xml.parsers import expat

from .errors import ParseError
from .model import check_utc

__all__ = ["OPML_DOCS", "Subscription", "parse_opml", "render_opml"]

OPML_DOCS = "http://opml.org/spec2.opml"

# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed of a subscription list: its URL and the title a reader gave it."""

    url: str
    title: str | None = None


class _Refused(Exception):
    """Raised from an expat handler to stop at a DOCTYPE or entity declaration."""


def parse_opml(data: bytes, origin: str) -> list[Subscription]:
    """The feeds of an OPML document, in document order, each URL once.

    *origin* names the file or URL in errors.

    Raises:
        ParseError: not well-formed XML, not OPML, or a DOCTYPE/entity
            declaration (refused, never expanded).
    """
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = reader.start
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ParseError(origin, "OPML with a DOCTYPE or entities is refused") from exc
    except expat.ExpatError as exc:
        raise ParseError(origin, "not well-formed OPML") from exc
    if reader.root != "opml":
        raise ParseError(origin, f"not OPML (the root element is <{reader.root}>)")
    return list(reader.found.values())


def render_opml(subscriptions: Iterable[Subscription], title: str, now: datetime) -> bytes:
    """An OPML 2.0 document listing *subscriptions*, dated *now* (UTC).

    Raises:
        ValueError: *now* is not an aware UTC datetime.
    """
    check_utc("now", now)
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = _clean(title)
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    ET.SubElement(head, "docs").text = OPML_DOCS
    body = ET.SubElement(opml, "body")
    for sub in subscriptions:
        # "text" is required; "title" is what readers show, when there is one.
        attrs = {"type": "rss", "text": _clean(sub.title or sub.url)}
        if sub.title:
            attrs["title"] = _clean(sub.title)
        attrs["xmlUrl"] = _clean(sub.url)
        ET.SubElement(body, "outline", attrs)
    ET.indent(opml)
    document: bytes = ET.tostring(opml, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


class _Reader:
    def __init__(self) -> None:
        self.root: str | None = None
        self.found: dict[str, Subscription] = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.root is None:
            self.root = name
        if name != "outline" or self.root != "opml":
            return
        # xmlUrl is case-sensitive in the spec; some exporters write "xmlurl".
        lower = {key.lower(): value.strip() for key, value in attrs.items()}
        url = lower.get("xmlurl")
        if url and url not in self.found:
            # render_opml writes the URL as the text of an untitled feed.
            title = lower.get("title") or lower.get("text") or None
            self.found[url] = Subscription(url, title if title != url else None)


def _refuse(*_args: object) -> NoReturn:
    raise _Refused


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)
