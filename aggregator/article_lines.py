"""What one line of a pasted article is: outlet, show, byline, furniture, caption.

Pure predicates over a single line of text, found by shape rather than by
position or outlet; :mod:`aggregator.articles` uses them to pick the metadata
lines out of an article and to drop page furniture and photo captions.
"""

from __future__ import annotations

import re

__all__ = [
    "COPYRIGHT",
    "INITIALS_NAME",
    "OUTLETS",
    "TAG_LABEL",
    "is_caption",
    "is_furniture",
    "is_outlet",
    "is_sentence",
    "is_show",
    "parse_byline",
]


def _words(text: str, sep: str | None = None) -> frozenset[str]:
    return frozenset(text.split(sep))


# Outlets a pasted line names on its own; others are recognised by shape below.
OUTLETS = _words(
    "ap;associated press;the associated press;reuters;afp;agence france-presse;bbc;"
    "bbc news;cnn;npr;pbs;nbc news;abc news;cbs news;fox news;msnbc;the guardian;"
    "guardian;the new york times;new york times;nyt;the washington post;washington post;"
    "the wall street journal;wall street journal;wsj;bloomberg;al jazeera;politico;axios;"
    "the hill;usa today;los angeles times;financial times;ft;the economist;the telegraph;"
    "the independent;the times;dw;deutsche welle;france 24;euronews;yonhap;kyodo;xinhua;"
    "tass;ria novosti;kcna;nhk;cbc;sky news;upi;the atlantic;vox;time;newsweek;forbes;"
    "business insider;cnbc;the verge;techcrunch;wired;ars technica;le monde;der spiegel;"
    "el país;the japan times;korea herald;korea joongang daily;south china morning post",
    ";",
)
_OUTLET_WORD = re.compile(
    r"(?i)news|(?:^|\s)(?:times|post|journal|herald|tribune|gazette|press|wire|chronicle|"
    r"telegraph|observer|insider|monitor|dispatch|courier|inquirer|examiner|bulletin|daily|"
    r"ledger|record|register|sentinel|reporter|mirror|express|mail)$"
)
_SHOWS = _words(
    "all things considered;fresh air;here & now;marketplace;the daily;today;newshour;"
    "pbs newshour;meet the press;face the nation;60 minutes;good morning america;"
    "nightly news;world news tonight;newsnight;the world;1a",
    ";",
)
_SHOW_WORD = re.compile(
    r"(?i)\s(?:edition|show|hour|briefing|podcast|tonight|programme|program|digest|roundup)$"
)
_NAME_PART = r"(?:[A-Z]\.|[A-Z][a-z\u2019'\-]+(?:-[A-Z][a-z]+)?|de|da|van|von|der|bin|al|la|le|del)"
INITIALS_NAME = re.compile(r"^(?:[A-Z]\.\s?){1,3}[A-Z][a-zA-Z\u2019'\-]+$")
_NAME = re.compile(rf"^[A-Z][a-z\u2019'\-]+(?:\s+{_NAME_PART}){{1,3}}$")
_BYLINE = re.compile(r"^(?:[Bb]y|BY|[Ww]ritten by|[Rr]eporting by|[Ss]tory by)[:\s]\s*(?=[A-Z])")


def _title_case_words(text: str) -> bool:
    words = re.findall(r"[^\W\d_][\w\u2019'&.\-]*", text)
    return bool(words) and all(w[0].isupper() or w.lower() in ("the", "of", "and") for w in words)


def is_outlet(text: str) -> bool:
    """A news outlet's name: a known one, or a short title-case name such as ``Daily Post``."""
    low = text.lower().strip(" .")
    if low in OUTLETS:
        return True
    return len(text.split()) <= 4 and _title_case_words(text) and bool(_OUTLET_WORD.search(text))


def is_show(text: str) -> bool:
    """A programme's name (``All Things Considered``, ``Morning Edition``)."""
    low = text.lower().strip(" .")
    return low in _SHOWS or (_title_case_words(text) and bool(_SHOW_WORD.search(f" {text}")))


def parse_byline(text: str) -> tuple[str | None, str | None] | None:
    """``By Jane Doe and John Roe, Associated Press`` -> (names, outlet)."""
    match = _BYLINE.match(text)
    if not match or len(text.split()) > 16:
        return None
    parts = re.split(r"\s*(?:[,;|\u2022]|\s[-\u2013\u2014]\s)\s*", text[match.end() :])
    names = parts[0]
    outlet = next((p for p in parts[1:] if is_outlet(p)), None)
    for known in sorted(OUTLETS, key=len, reverse=True):  # "By JANE DOE Associated Press"
        if outlet is None and names.lower().endswith(f" {known}") and len(known) > 3:
            names, outlet = names[: -len(known)].strip(), names[-len(known) :]
    if is_outlet(names):  # "By The Associated Press"
        return None, names
    if names.isupper():
        names = names.title()
    people = re.split(r"\s+(?:and|&)\s+", names)
    if not all(_NAME.match(p) or INITIALS_NAME.match(p) for p in people):
        return None
    return names, outlet


_FURNITURE = _words(
    "share;share this;share this article;share this story;share on facebook;share on x;"
    "share on twitter;copy link;link copied;copied;advertisement;advertisements;ad;"
    "sponsored;sponsored content;read more;continue reading;related;related articles;"
    "related stories;recommended;most read;most popular;print;email;comments;"
    "view comments;save;save article;bookmark;listen;listen to this article;follow;"
    "subscribe;sign up;newsletter;skip to content;skip to main content;menu;search;home;"
    "close;toggle caption;hide caption;enlarge this image;image;photo;video;watch;play;"
    "loading;facebook;twitter;x;linkedin;whatsapp;reddit;pinterest;telegram;"
    "gift this article;back to top;trending;top stories;more;opens in new window",
    ";",
)
_FURNITURE_PREFIX = re.compile(
    r"(?i)^(?:read more|read also|also read|see also|related|recommended|watch|listen|"
    r"sign up|subscribe|click here|follow us|image source|image caption|advertisement)"
    r"\b\s*[:,|\u00bb\u203a]|^\d+\s+min(?:ute)?s?\s+read$|^\d+\s+(?:comments?|shares?)$"
    r"|^(?:sign up|subscribe) (?:for|to)\b"
)
_CAPTION = re.compile(
    r"(?i)^(?:in this (?:\w+\s){0,3}(?:photo|image|picture|handout)|this (?:\w+\s){0,3}photo|"
    r"file\s*[-\u2014\u2013]|file photo|photo(?:graph)?\s*:|image\s*:|credit\s*:)"
    r"|\((?:[^()]*\b(?:photo|via|getty|afp|reuters|ap|file)\b[^()]*/[^()]*|[^()]*\bvia \w+)\)\s*$"
    r"|(?:getty images|shutterstock|ap photo)\W*$"
)
COPYRIGHT = re.compile(
    r"(?i)^(?:copyright|©|\(c\))\s*(?:\d{4}\s+)?(.{2,60}?)[.,]?(?:\s+all rights.*)?$"
)
TAG_LABEL = re.compile(
    r"(?i)^(?:tags?|topics?|keywords|filed under|categories)\s*[:\-\u2013]\s*(.+)$"
)


def is_furniture(text: str) -> bool:
    """Page furniture: ``Share``, ``Advertisement``, ``Read more: ...`` and the like."""
    key = text.lower().strip(" :.!|\u00bb\u203a\u00b7\u2022-\u2013\u2014")
    return key in _FURNITURE or bool(_FURNITURE_PREFIX.match(text))


def is_caption(text: str) -> bool:
    """A photo caption or credit."""
    return bool(_CAPTION.search(text))


def is_sentence(text: str) -> bool:
    """A summary or body sentence, as opposed to a tag, label or headline."""
    words = len(text.split())
    return words >= 12 or (words >= 5 and text.rstrip("\u201d\u2019\"')").endswith((".", "!", "?")))
