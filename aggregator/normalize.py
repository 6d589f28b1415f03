"""Entry -> Item: canonical URLs, plain text, sanitised HTML, UTC dates, language.

Pure: no I/O and no clock; the time an item was seen is a parameter.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import unicodedata
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3

from .model import Entry, Item, check_utc

__all__ = [
    "SUMMARY_CHARS",
    "canonical_url",
    "detect_language",
    "fingerprint",
    "html_to_text",
    "item_id",
    "normalize",
    "sanitize_html",
    "warm_up_language_model",
    "with_feed_language",
]

SUMMARY_CHARS = 400
UNTITLED = "(untitled)"
# Query parameters that only say where a click came from: never part of what
# the page is. utm_* is matched as a prefix.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "ref_src",
        "cmpid",
        "ocid",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BLOCK_END = re.compile(
    r"<\s*(br|/p|/div|/li|/h[1-6]|/blockquote|/tr|/pre|/section|/article|hr)\b[^>]*>", re.I
)
_CELL_END = re.compile(r"<\s*/(td|th)\b[^>]*>", re.I)
# What html_to_text lets through nh3 to read as breaks: every other tag goes
# first (script and style with their content), and these after the breaks.
_BREAKING_TAGS = {
    *("p", "br", "div", "li", "blockquote", "tr", "td", "th", "pre", "section", "article"),
    *("hr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tbody", "thead", "ul", "ol"),
}
_TAG = re.compile(r"<[^>]*>")
_LOOKS_HTML = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*[\s/>]")
# Runs of these become one space. The same as re.sub("[ \t\r\f\v\u00a0\u200b]+", " ")
# in a sixth of its time: a regex class with non-ASCII members matched every
# single space of a text (17 of html_to_text's 36 us on bench/fetch_scale.py).
_TO_SPACE = str.maketrans(dict.fromkeys("\t\r\f\v\u00a0\u200b", " "))
_RUN_OF_SPACES = re.compile("  +")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# For fingerprint: characters that are neither ASCII nor word characters, and
# each byte of UTF-8 that is an ASCII non-word character (mapped to a space;
# bytes of non-ASCII characters, all word characters by then, stay).
_NON_ASCII_GAP = re.compile(r"[^\x00-\x7f\w]")
_ASCII_GAPS = bytes(
    c if c >= 0x80 or c == ord("_") or chr(c).isalnum() else ord(" ") for c in range(256)
)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment or tracking parameters.

    Idempotent; a string that is not an absolute URL comes back stripped.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        return url
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # an IPv6 literal goes back in brackets
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not (key.lower().startswith("utm_") or key.lower() in TRACKING_PARAMS)
    ]
    path = parts.path or ("/" if scheme in _DEFAULT_PORTS else "")
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def sanitize_html(fragment: str, base: str | None = None) -> str:
    """An allow-list clean: no script, style, iframe, ``on*=`` or ``javascript:``.

    Relative links (``href``, ``src``) resolve against *base* when it is an
    absolute http(s) URL. Plain text (no tags) is escaped and split into
    paragraphs.
    """
    if not _LOOKS_HTML.search(fragment):
        paragraphs = [p.strip() for p in _BLANK_LINES.split(html.unescape(fragment).strip())]
        return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs if p)
    cleaner = _cleaner(base) if base and urlsplit(base).scheme in _DEFAULT_PORTS else None
    return (cleaner or _DEFAULT_CLEANER).clean(fragment).strip()


_DEFAULT_CLEANER = nh3.Cleaner()
# nh3.clean(fragment, tags=_BREAKING_TAGS) builds this cleaner on every call:
# kept, a clean of a 2 KB news body (bench/fetch_scale.py) takes 12 us, not 18.
_TEXT_CLEANER = nh3.Cleaner(tags=_BREAKING_TAGS)


@lru_cache(maxsize=256)
def _cleaner(base: str) -> nh3.Cleaner | None:
    """One allow-list cleaner per base URL (a feed's entries share one): made
    once, a clean takes half the time (nh3.clean builds one each call);
    None for a base that ammonia cannot parse, whose links stay as written."""
    try:
        return nh3.Cleaner(url_relative=("rewrite_with_base", base))
    except ValueError:
        return None


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags gone, entities decoded, paragraphs kept."""
    if _LOOKS_HTML.search(fragment):
        # Drops script and style with their content, and keeps the tags that
        # end a line: "<li>one</li><li>two</li>" is two words, not "onetwo".
        fragment = _TEXT_CLEANER.clean(fragment)
        fragment = _BLOCK_END.sub("\n\n", fragment)
        fragment = _CELL_END.sub(" ", fragment)
        fragment = _TAG.sub("", fragment)
    text = html.unescape(fragment)
    text = _spaces(unicodedata.normalize("NFC", text))  # one pass: \n is kept
    lines = (line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def fingerprint(title: str, text: str) -> str:
    """A hash of the title and text with case, spacing and punctuation ignored:
    of their case-folded words (``\\w+``), joined by single spaces."""
    folded = f"{title}\n{text}".casefold()
    if not folded.isascii():  # a flag on the string: no scan
        folded = _NON_ASCII_GAP.sub(" ", folded)
    # Every character left that is not a word character is ASCII: bytes.translate
    # turns each into a space and split() cuts there, as re.findall(r"\w+") would,
    # in half its time (2 KB of news: 81 -> 39 us; with curly quotes 74 -> 51 us).
    words = folded.encode().translate(_ASCII_GAPS).split()
    return hashlib.sha256(b" ".join(words)).hexdigest()[:32]


def item_id(source: str, key: str) -> str:
    """A stable id from the source and the entry's GUID, link or fingerprint."""
    return hashlib.sha256(f"{source}\0{key}".encode()).hexdigest()[:24]


def normalize(entry: Entry, seen: datetime) -> Item:
    """Turn a parsed entry into an Item; *seen* is when this run read it (UTC)."""
    check_utc("seen", seen)
    url = canonical_url(entry.link) if entry.link else None
    if url is not None and not urlsplit(url).scheme:
        url = None
    body = entry.content or entry.summary or ""
    text = html_to_text(body)
    # Feeds often repeat the content as the summary (feedparser copies it).
    summary_text = html_to_text(entry.summary) if entry.summary not in (None, body) else text
    title = _title(entry.title, text)
    fp = fingerprint(title, text)
    return Item(
        id=item_id(entry.source, entry.guid or url or fp),
        source=entry.source,
        title=title,
        url=url,
        guid=entry.guid,
        summary=_shorten(summary_text, SUMMARY_CHARS),
        text=text,
        content_html=sanitize_html(body, entry.base) if body else "",
        published=entry.published,
        updated=entry.updated,
        seen=seen,
        author=entry.author,
        outlet=entry.outlet or _host(url) or entry.source,
        tags=tuple(dict.fromkeys(t for t in (_one_line(t) for t in entry.tags) if t)),
        language=_language(entry.language, title, text),
        fingerprint=fp,
    )


def _title(raw: str | None, text: str) -> str:
    title = _one_line(html_to_text(raw)) if raw else ""
    if title:
        return title
    first = text.split("\n", 1)[0]
    return _shorten(first, 120) if first else UNTITLED


def _one_line(text: str) -> str:
    return _spaces(text.replace("\n", " ")).strip()


def _spaces(text: str) -> str:
    """Each run of spaces, tabs, no-break and zero-width spaces as one space."""
    return _RUN_OF_SPACES.sub(" ", text.translate(_TO_SPACE))


def _shorten(text: str, limit: int) -> str:
    text = _one_line(text)
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:") + "…"


def _host(url: str | None) -> str | None:
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


# Language identification reads this much text: enough for a confident answer,
# and it keeps the classifier's cost flat for long articles.
_LANGUAGE_SAMPLE = 400


def _language(declared: str | None, title: str, text: str) -> str | None:
    if declared:
        code = declared.strip().replace("_", "-").split("-")[0].lower()
        if code.isalpha() and 2 <= len(code) <= 3:
            return code
    return detect_language(f"{title}\n{text[:_LANGUAGE_SAMPLE]}")


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of *text*'s language, or None for too little text."""
    sample = text.strip()
    if len(sample) < 20:
        return None
    _language_model_ready()
    import py3langid

    language: str = py3langid.classify(sample)[0]
    return language


# py3langid unpacks its model on first use: 0.4 s, most of it in lzma, which
# lets other threads run. A refresh starts that in the background while it
# waits on the network, and the first feed without a declared language does
# not wait for it (bench/fetch_scale.py).
_warm_up: threading.Thread | None = None
_warm_up_lock = threading.Lock()


def warm_up_language_model() -> None:
    """Start loading the language model in a background thread, once."""
    global _warm_up
    with _warm_up_lock:
        if _warm_up is None:
            _warm_up = threading.Thread(target=_load_language_model, name="langid", daemon=True)
            _warm_up.start()


def _load_language_model() -> None:
    import py3langid

    py3langid.classify("warm up the model")


def _language_model_ready() -> None:
    """Wait for a warm-up in progress, so that the model is never loaded twice."""
    with _warm_up_lock:
        thread = _warm_up
    if thread is not None:
        thread.join()


# Headlines enough to tell a feed's language.
_LANGUAGE_ENTRIES = 20


def with_feed_language(entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """Entries of a feed that declares no language, with the feed's language,
    identified once from its headlines: a feed is written in one language, and
    identifying it per item cost 0.4 ms an item (bench/fetch_scale.py)."""
    if all(e.language for e in entries):
        return entries
    sample = "\n".join(html_to_text(e.title or "") for e in entries[:_LANGUAGE_ENTRIES])
    language = detect_language(sample)
    return tuple(e if e.language else replace(e, language=language) for e in entries)
