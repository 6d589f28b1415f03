"""Cutting an article's text into blocks: plain text, Markdown or HTML.

Each format only decides where paragraphs, headings, bullets and captions begin
and end; :mod:`aggregator.articles` then runs the same line rules on the blocks
of all three. Markdown front matter and HTML ``<meta>`` tags also state some
metadata outright, returned as :class:`Hints`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

__all__ = ["Block", "Hints", "split_blocks", "squash"]


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-sized run of text; ``kind`` is para, heading, title, bullet or caption."""

    text: str
    kind: str = "para"


@dataclass(frozen=True, slots=True)
class Hints:
    """Metadata a format states outright (front matter, ``<meta>``), trusted over guesses."""

    title: str | None = None
    outlet: str | None = None
    author: str | None = None
    published: str | None = None
    updated: str | None = None
    summary: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    site: str | None = None  # the page's own name, weaker than an outlet the text states


def split_blocks(text: str, path: str) -> tuple[Hints, list[Block]]:
    """Cut decoded article text into blocks, by the format its suffix or head shows."""
    kind = _format(path, text)
    if kind == "html":
        return _html_blocks(text)
    if kind == "markdown":
        return _markdown_blocks(text)
    return Hints(), _text_blocks(text)


def _format(path: str, text: str) -> str:
    suffix = PurePath(path).suffix.lower()
    head = text.lstrip()[:2000].lower()
    if suffix in (".html", ".htm") or head.startswith(("<!doctype html", "<html")):
        return "html"
    if re.search(r"<(?:body|article)[\s>]", head):
        return "html"
    if suffix in (".md", ".markdown") or head.startswith(("---\n", "# ")):
        return "markdown"
    return "text"


# --- plain text and Markdown -> blocks ----------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u00b7▪●◦‣]|\d{1,2}[.)])\s+(?=\S)")
# Pasted web pages put a paragraph on each (long) line; hard-wrapped text breaks
# lines near a fixed width. A line at least this share of the widest line is a
# wrapped one, and the next line continues its paragraph.
_WRAP_WIDTH = 100
_WRAP_SHARE = 0.6


def _text_blocks(text: str) -> list[Block]:
    lines = [line.strip() for line in text.split("\n")]
    filled = [line for line in lines if line]
    width = max(len(line) for line in filled)
    wrapped = width <= _WRAP_WIDTH and "" in lines
    blocks: list[Block] = []
    previous = ""
    for line in lines:
        if not line:
            previous = ""
            continue
        bullet = _BULLET.match(line)
        if bullet:
            blocks.append(Block(line[bullet.end() :], "bullet"))
        elif wrapped and previous and len(previous) >= _WRAP_SHARE * width:
            last = blocks.pop()
            blocks.append(Block(f"{last.text} {line}", last.kind))
        else:
            blocks.append(Block(line))
        previous = line
    return blocks


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_MD_INLINE = (
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images: their alt text is a caption
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)\*(?!\w)"), r"\1"),
    (re.compile(r"(?<!\w)_(?!\s)(.+?)_(?!\w)"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"<!--.*?-->|<[^>]+>"), ""),
)


def _front_matter(text: str) -> tuple[Hints, str]:
    """Split simple ``key: value`` front matter off a Markdown file."""
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        return Hints(), text
    fields: dict[str, str] = {}
    key = ""
    for line in match[1].split("\n"):
        pair = re.match(r"([A-Za-z_]+)\s*:\s*(.*)$", line)
        if pair:
            key = pair[1].lower()
            fields[key] = pair[2].strip().strip("\"'")
        elif key and line.strip().startswith("- "):
            fields[key] = f"{fields[key]},{line.strip()[2:]}".strip(",")
    tags = tuple(t.strip(" \"'") for t in fields.get("tags", "").strip("[]").split(","))
    hints = Hints(
        title=fields.get("title") or None,
        outlet=fields.get("outlet") or fields.get("source") or fields.get("publisher") or None,
        author=fields.get("author") or fields.get("byline") or None,
        published=fields.get("date") or fields.get("published") or None,
        updated=fields.get("updated") or None,
        summary=fields.get("summary") or fields.get("description") or None,
        tags=tuple(t for t in tags if t),
        language=fields.get("lang") or fields.get("language") or None,
    )
    return hints, text[match.end() :]


def _markdown_blocks(text: str) -> tuple[Hints, list[Block]]:
    hints, text = _front_matter(text)
    blocks: list[Block] = []
    joinable = False  # Markdown joins the lines of a paragraph
    for raw in text.split("\n"):
        line = raw.strip().lstrip(">").strip()
        for pattern, repl in _MD_INLINE:
            line = pattern.sub(repl, line)
        line = line.strip()
        heading = _MD_HEADING.match(line)
        if not line or re.fullmatch(r"(?:[-*_=]\s*){3,}", line):
            if blocks and line.startswith("=") and joinable:  # a setext "Title\n====="
                blocks[-1] = Block(blocks[-1].text, "title")
            joinable = False
        elif heading:
            level = len(heading[1])
            blocks.append(Block(heading[2], "title" if level == 1 else "heading"))
            joinable = False
        elif bullet := _BULLET.match(line):
            blocks.append(Block(line[bullet.end() :], "bullet"))
            joinable = True
        elif joinable:
            blocks[-1] = Block(f"{blocks[-1].text} {line}", blocks[-1].kind)
        else:
            blocks.append(Block(line))
            joinable = True
    return hints, blocks


# --- HTML -> blocks --------------------------------------------------------------


def _tag_names(names: str) -> frozenset[str]:
    return frozenset(names.split())


_SKIP = _tag_names("script style noscript nav aside footer form button svg iframe template select")
_BLOCK = _tag_names(
    "p div li h1 h2 h3 h4 h5 h6 blockquote section article main header td th dd dt pre "
    "figcaption br hr tr ul ol table time"
)
_KINDS = {"h1": "title", "li": "bullet", "figcaption": "caption"} | dict.fromkeys(
    ("h2", "h3", "h4", "h5", "h6"), "heading"
)
_VOID = _tag_names("area base br col embed hr img input link meta source track wbr")


class _PageParser(HTMLParser):
    """Collect text blocks, remembering which ``<article>`` (or ``<main>``) each is in."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[int, Block]] = []  # (region, block); region 0 = page
        self.meta: dict[str, list[str]] = {}
        self.title = ""
        self._buffer: list[str] = []
        self._open: list[str] = []
        self._skip = 0
        self._regions: list[int] = []
        self._next_region = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "meta":
            name = (values.get("property") or values.get("name") or "").lower()
            self.meta.setdefault(name, []).append(values.get("content", ""))
        elif tag == "html" and values.get("lang"):
            self.meta.setdefault("lang", []).append(values["lang"])
        elif tag == "time" and values.get("datetime"):
            self.meta.setdefault("time", []).append(values["datetime"])
        if tag in _VOID:
            if tag in _BLOCK:
                self._flush()
            return
        if tag in _SKIP or (tag == "header" and not self._regions):
            self._skip += 1
        if tag in ("article", "main"):
            self._regions.append(self._next_region)
            self._next_region += 1
        if tag in _BLOCK:
            self._flush()
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag not in self._open:
            return
        if tag in _BLOCK:
            self._flush()
        while self._open:  # close anything left open inside it, as browsers do
            top = self._open.pop()
            if top in _SKIP or (top == "header" and not self._regions):
                self._skip = max(0, self._skip - 1)
            if top in ("article", "main") and self._regions:
                self._regions.pop()
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if "title" in self._open and "body" not in self._open and "svg" not in self._open:
            self.title += data
        elif not self._skip:
            self._buffer.append(data)

    def finish(self) -> None:
        """Keep the text of a page that ends without closing its tags."""
        self._flush()

    def _flush(self) -> None:
        text = squash("".join(self._buffer))
        self._buffer.clear()
        if text:
            kind = next((_KINDS[t] for t in reversed(self._open) if t in _KINDS), "para")
            region = self._regions[-1] if self._regions else 0
            self.blocks.append((region, Block(text, kind)))


def _html_blocks(text: str) -> tuple[Hints, list[Block]]:
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    parser.finish()
    sizes: dict[int, int] = {}
    for region, block in parser.blocks:
        if region:
            sizes[region] = sizes.get(region, 0) + len(block.text)
    # Pages list related stories as small <article>s; the story is the biggest one.
    best = max(sizes, key=lambda r: sizes[r]) if sizes else 0
    blocks = [b for region, b in parser.blocks if not sizes or region == best]

    def first(*names: str) -> str | None:
        return next((squash(v) for n in names for v in parser.meta.get(n, ()) if v.strip()), None)

    page_title = squash(parser.title)
    site = first("og:site_name", "application-name")
    split = re.match(r"(.+?)\s+[|\-\u2013\u2014]\s+([^|\-\u2013\u2014]{2,40})$", page_title)
    if split and not site:
        page_title, site = split[1], split[2]
    author = first("author", "article:author", "byl", "parsely-author")
    keywords = [t.strip() for v in parser.meta.get("keywords", ()) for t in v.split(",")]
    return Hints(
        title=first("og:title", "twitter:title") or page_title or None,
        site=site,
        author=None if author and "://" in author else author,
        published=first("article:published_time", "date", "pubdate", "dc.date", "time"),
        updated=first("article:modified_time", "og:updated_time"),
        summary=first("og:description", "description"),
        tags=tuple(t for t in [*parser.meta.get("article:tag", ()), *keywords] if t.strip()),
        language=first("lang"),
    ), blocks


def squash(text: str) -> str:
    """Collapse runs of whitespace to single spaces and trim the ends."""
    return " ".join(text.split())
