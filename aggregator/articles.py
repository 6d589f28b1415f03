"""Article files -> Entry: one news article pasted as plain text, Markdown or HTML.

Pure: the caller reads the bytes and passes the file's path and mtime. A pasted
article carries its metadata as loose lines around the text, so the rules find
them by shape, not by position or by outlet:

- a slash-separated tags line (``tag/ tag/ Outlet/ J. Name/ Show/ summary``);
- the headline: the first short, unpunctuated line before the first body
  paragraph that does not head a bullet list;
- ``By ...`` bylines and ``Published ...`` / ``Updated ...`` / bare date lines;
- a dateline opening the first paragraph (``SEOUL, South Korea (AP) --``,
  ``LONDON, Nov 29 (Reuters) -``, ``WASHINGTON --``), removed from the text;
- page furniture (``Share``, ``Advertisement``, ``Read more: ...``), photo
  captions and repeated paragraphs, which are dropped.

Markdown (``# Title``, front matter) and HTML (``<h1>``, ``<article>``,
``<meta>``) only change how the text is cut into blocks; the rules above then run
on all three. ``tests/data/articles/`` has a file for each rule.

The formats are cut into blocks in :mod:`aggregator.article_blocks`; the line
rules live in :mod:`aggregator.article_lines` and the date rules in
:mod:`aggregator.article_dates`. This module decodes the file, scans the header
lines and assembles the Entry.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .article_blocks import Block, split_blocks, squash
from .article_dates import DATE_LABEL, find_dates, is_date_line, split_dateline
from .article_lines import (
    COPYRIGHT,
    INITIALS_NAME,
    OUTLETS,
    TAG_LABEL,
    is_caption,
    is_furniture,
    is_outlet,
    is_sentence,
    is_show,
    parse_byline,
)
from .errors import ParseError
from .model import Entry

__all__ = ["ARTICLE_SUFFIXES", "looks_like_article", "read_article"]

ARTICLE_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".html", ".htm")


@dataclass(slots=True)
class _Found:
    """What the header scan collects; mutable only while one article is read."""

    outlet: str | None = None
    author: str | None = None
    summary: str | None = None
    tags: list[str] = field(default_factory=list)
    credit: str | None = None  # from a copyright line: the weakest outlet evidence
    published: datetime | None = None
    updated: datetime | None = None
    dropped: set[int] = field(default_factory=set)


# --- decoding --------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# A text file has almost no control characters; random or binary bytes decoded as
# cp1252 have about one in eight (0x00-0x1f is 32 of 256 byte values).
_MAX_JUNK_RATIO = 0.02


def _decode(data: bytes, path: str) -> str:
    if not data.strip():
        raise ParseError(path, "empty article file")
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise ParseError(path, f"not valid {codec}") from exc
            break
    else:
        if b"\x00" in data:
            raise ParseError(path, "binary file, not an article")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Old pasted pages are often Windows-1252; it decodes almost anything.
            text = data.decode("cp1252", errors="replace")
    junk = len(_CONTROL.findall(text)) + text.count("\ufffd")
    if junk > _MAX_JUNK_RATIO * len(text):
        raise ParseError(path, "binary file, not an article")
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ParseError(path, "empty article file")
    return text


_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:rdf)[\s>]", re.IGNORECASE)


def looks_like_article(name: str, data: bytes) -> bool:
    """Whether a file in an article folder is an article: a non-empty text,
    Markdown or HTML file that is not a feed saved under such a name."""
    if name.startswith(".") or not name.lower().endswith(ARTICLE_SUFFIXES):
        return False
    return bool(data.strip()) and not _FEED_ROOT.search(data[:2048])


def _read_tags_line(text: str, found: _Found) -> bool:
    """Read ``tag/ tag/ Outlet/ Byline/ Show/ summary`` (or ``Tags: a, b``) into *found*."""
    label = TAG_LABEL.match(text)
    if label:
        found.tags += [t.strip() for t in re.split(r"[,/|;]", label[1]) if t.strip()]
        return True
    if "://" in text or len(re.findall(r"\s/|/\s", text)) < 3:
        return False
    parts = [p.strip() for p in text.split("/") if p.strip()]
    if parts and is_sentence(parts[-1]):
        found.summary = found.summary or parts.pop()
    if len(parts) < 3 or any(is_sentence(p) or not re.search(r"[^\W\d]", p) for p in parts):
        return False
    # The trailing run names the outlet, byline and show; everything before is a tag.
    end = len(parts)
    while end > 0:
        part, before = parts[end - 1], parts[end - 2] if end > 1 else ""
        byline = parse_byline(part) or parse_byline(f"By {part}")
        if is_outlet(part) and not found.outlet:
            found.outlet = part
        elif is_show(part):
            pass
        elif (
            byline
            and not found.author
            and (INITIALS_NAME.match(part) or part.lower().startswith("by ") or is_outlet(before))
        ):
            found.author = byline[0] or found.author
        else:
            break
        end -= 1
    found.tags += [p for p in parts[:end] if not (is_outlet(p) or is_show(p))]
    return True


# --- assembling the entry ----------------------------------------------------------

_SOURCE_LINE = re.compile(r"(?i)^(?:source|outlet|publisher|via)\s*:\s*(.{2,60})$")
# "Key points" boxes restate the story in bullets; the story itself follows.
_SUMMARY_BOX = re.compile(
    r"(?i)(?:^|:\s*)(?:quick looks?|key (?:points|takeaways|facts)|highlights|at a glance|"
    r"in brief|tl;?dr|summary|what to know|the big picture)\s*:?$"
)


def _scan(blocks: list[Block], found: _Found) -> None:
    """Read the metadata lines into *found* and mark them dropped."""
    for i, block in enumerate(blocks):
        text = block.text
        near_edge = i < 3 or i >= len(blocks) - 3
        label = DATE_LABEL.match(text)
        tags_line = (near_edge and block.kind != "title") or TAG_LABEL.match(text)
        if is_furniture(text) or (tags_line and _read_tags_line(text, found)):
            pass
        elif byline := parse_byline(text):
            found.author = found.author or byline[0]
            found.outlet = found.outlet or byline[1]
            found.published = found.published or next(iter(find_dates(text)), None)
        elif (stamps := find_dates(text)) and (
            is_date_line(text) or (label and len(text.split()) <= 16)
        ):
            stamp = stamps[0]
            if label and label["label"].lower() in ("updated", "last updated", "modified"):
                found.updated = found.updated or stamp
            else:
                found.published = found.published or stamp
        elif (source := _SOURCE_LINE.match(text)) and is_outlet(source[1]):
            found.outlet = found.outlet or source[1]
        elif i < 5 and text.lower() in OUTLETS:  # the outlet's name pasted from the masthead
            found.outlet = found.outlet or text
        elif (credit := COPYRIGHT.match(text)) and len(text.split()) <= 12:
            found.credit = credit[1]
        else:
            continue
        found.dropped.add(i)


def _is_headline(text: str) -> bool:
    words = text.split()
    ends_sentence = text.endswith(".") and not re.search(r"\b[A-Z]\.[A-Z]\.$", text)
    return 0 < len(words) <= 25 and not ends_sentence and not is_caption(text)


def _pick_title(blocks: list[Block], found: _Found) -> int | None:
    """The index of the headline block, or None when the blocks hold none."""
    live = [i for i in range(len(blocks)) if i not in found.dropped]
    marked = next((i for i in live if blocks[i].kind == "title"), None)
    if marked is not None:
        return marked
    candidates = []
    for n, i in enumerate(live):
        block = blocks[i]
        if block.kind == "para" and (is_sentence(block.text) or split_dateline(block.text)[1]):
            break  # the body has begun
        heads_list = n + 1 < len(live) and blocks[live[n + 1]].kind == "bullet"
        if block.kind in ("para", "heading") and _is_headline(block.text) and not heads_list:
            candidates.append(i)
    # A one- or two-word line before the headline is a section kicker ("World").
    return next((i for i in candidates if len(blocks[i].text.split()) >= 3), None) or next(
        iter(candidates), None
    )


def _body(blocks: list[Block], found: _Found, title: int | None) -> list[Block]:
    """The story's paragraphs: without what precedes the headline, furniture, captions,
    summary boxes and repeats (a caption pasted twice, or cut short then in full)."""
    body: list[Block] = []
    in_box = False
    for i, block in enumerate(blocks):
        sentence = block.kind == "para" and is_sentence(block.text)
        if i in found.dropped or i == title or (title is not None and i < title and not sentence):
            continue
        in_box = (in_box and block.kind == "bullet") or bool(_SUMMARY_BOX.search(block.text))
        key = squash(block.text).casefold()
        if body and len(body[-1].text) >= 40 and key.startswith(body[-1].text.casefold()):
            body.pop()  # the first copy of a caption, cut short
        if in_box or block.kind == "caption" or is_caption(block.text):
            continue
        if all(squash(b.text).casefold() != key for b in body):
            body.append(block)
    return body


def _content(body: list[Block]) -> str:
    parts: list[str] = []
    for n, block in enumerate(body):
        text = html.escape(block.text)
        if block.kind != "bullet":
            parts.append(f"<p>{text}</p>")
            continue
        opens = n == 0 or body[n - 1].kind != "bullet"
        closes = n + 1 == len(body) or body[n + 1].kind != "bullet"
        parts.append(f"{'<ul>' if opens else ''}<li>{text}</li>{'</ul>' if closes else ''}")
    return "\n".join(parts)


def _summary(body: list[Block]) -> str | None:
    """The first paragraph, or two when the first is short (a one-line lede)."""
    paras = [b.text for b in body if b.kind == "para" and is_sentence(b.text)][:2]
    if len(paras) == 2 and len(paras[0]) >= 200:
        paras.pop()
    return " ".join(paras) or None


def _published(
    stated: list[datetime], near_top: str, everything: str, mtime: datetime
) -> datetime | None:
    """A stated date first; then the latest date near the top (or in a caption) that is
    not after the file was saved; then the same over the whole text; else None."""
    if stated:
        return stated[0]
    for text in (near_top, everything):
        dates = find_dates(text)
        past = [d for d in dates if d <= mtime + timedelta(days=1)]
        if dates:
            # Later dates in a story are mostly the events it recounts, not its own.
            return max(past) if past else min(dates)
    return None


def _strip_dateline(body: list[Block]) -> str | None:
    """Remove the dateline from the first paragraph, in place; return its outlet."""
    first = next((n for n, b in enumerate(body) if b.kind == "para" and is_sentence(b.text)), None)
    if first is None:
        return None
    rest, outlet = split_dateline(body[first].text)
    body[first] = Block(rest, "para")
    return outlet


def read_article(data: bytes, *, path: str, source: str, mtime: datetime) -> Entry:
    """Read one pasted article (plain text, Markdown or HTML) into an Entry.

    *mtime* (timezone-aware) bounds the dates found in the text. When the text
    states no date, ``published`` is None and ``updated`` is the mtime: when the
    file was saved says nothing about when the news happened, so the clusterer
    must treat the article as undated, while a feed still shows a date.

    Raises:
        ParseError: the file is empty, binary, or holds no article text.
    """
    if mtime.tzinfo is None:
        raise ValueError("mtime must be timezone-aware")
    mtime = mtime.astimezone(UTC)
    hints, blocks = split_blocks(_decode(data, path), path)
    blocks = [b for b in blocks if b.text]
    found = _Found()
    _scan(blocks, found)
    title_at = _pick_title(blocks, found)
    body = _body(blocks, found, title_at)
    outlet = _strip_dateline(body)
    title = blocks[title_at].text if title_at is not None else hints.title
    if not title:  # no headline anywhere: the lede's first sentence stands in
        lede = next((b.text for b in body if b.kind == "para"), "")
        title = re.split(r"(?<=[.!?])\s", lede, maxsplit=1)[0][:120].strip() or None
    body = [b for b in body if b.text.casefold() != (title or "").casefold()]
    if not title or not body:
        raise ParseError(path, "no article text found")
    captions = " \n".join(b.text for b in blocks if b.kind == "caption" or is_caption(b.text))
    near_top = "\n".join(
        [*(b.text for b in blocks[: (title_at or 0) + 1]), *(b.text for b in body[:3]), captions]
    )
    stated = find_dates(hints.published or "") + [d for d in (found.published, found.updated) if d]
    published = _published(stated, near_top, "\n".join(b.text for b in blocks), mtime)
    updated = next(iter(find_dates(hints.updated or "")), None) or found.updated
    outlet = hints.outlet or outlet or found.outlet or hints.site or found.credit
    author = hints.author or found.author
    drop = {x.casefold() for x in (outlet, author) if x}
    tags = [t for t in (*hints.tags, *found.tags) if t.casefold() not in drop and not is_show(t)]
    return Entry(
        source=source,
        origin=path,
        title=title,
        summary=found.summary or hints.summary or _summary(body),
        content=_content(body),
        published=published,
        updated=(updated if updated != published else None) if published else updated or mtime,
        author=author,
        outlet=outlet,
        tags=tuple(dict.fromkeys(tags)),
        language=hints.language,
    )
