"""articles.py: pasted article files -> Entry.

Corpus files live in tests/data/articles/, each beside ``<stem>.expected.json``
(as reader keeps ``full.rss`` beside ``full.rss.py``). An expected file lists
Entry fields to compare exactly (dates as ISO strings, tags as lists), plus
``content_starts_with`` / ``content_has`` / ``content_lacks``, or
``{"error": "ParseError"}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.articles import looks_like_article, read_article
from aggregator.errors import ParseError
from aggregator.model import Entry

DATA = Path(__file__).parent / "data" / "articles"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
MTIME = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
CORPUS = sorted(p for p in DATA.iterdir() if not p.name.endswith(".expected.json"))


def expectation(path: Path) -> Path:
    return path.with_name(path.stem + ".expected.json")


def read(path: Path, mtime: datetime = MTIME) -> Entry:
    return read_article(path.read_bytes(), path=str(path), source="folder", mtime=mtime)


def as_json(entry: Entry, name: str) -> Any:
    value = getattr(entry, name)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    expected = json.loads(expectation(path).read_text(encoding="utf-8"))
    if "error" in expected:
        with pytest.raises(ParseError) as info:
            read(path)
        assert str(path) in str(info.value)
        return
    entry = read(path)
    content = entry.content or ""
    assert content.startswith(expected.pop("content_starts_with", ""))
    for fragment in expected.pop("content_has", ()):
        assert fragment in content
    for fragment in expected.pop("content_lacks", ()):
        assert fragment not in content
    assert {name: as_json(entry, name) for name in expected} == expected
    assert (entry.origin, entry.guid, entry.link) == (str(path), None, None)


def test_every_corpus_file_has_an_expectation() -> None:
    assert CORPUS
    for path in CORPUS:
        assert expectation(path).exists(), path


# --- the two real pasted articles in ../shared/seeds ---------------------------------


def seed(prefix: str) -> Path:
    found = sorted(SEEDS.glob(f"{prefix}_*.txt")) if SEEDS.is_dir() else []
    if not found:
        pytest.skip(f"seed {prefix} not found in {SEEDS}")
    return found[0]


def test_seed_with_tags_line_and_quick_looks() -> None:
    entry = read(seed("000"))
    assert entry.title == "North Korea\u2019s Kim Pledges Support for Russia\u2019s Ukraine War"
    assert entry.outlet == "Newslooks"
    assert entry.author == "J. Mansour"
    assert "North Korea Russia partnership" in entry.tags
    assert not {"Newslooks", "J. Mansour", "Morning Edition"} & set(entry.tags)
    assert entry.summary and entry.summary.startswith("North Korean leader Kim Jong Un reaffirmed")
    content = entry.content or ""
    assert "Quick Looks" not in content and "Kim\u2019s Pledge:" not in content
    assert "Morning Edition" not in content
    assert "<p>North Korean leader Kim Jong Un reaffirmed his nation\u2019s full support" in content
    # The text states no full date: undated, with the file's time as its update.
    assert entry.published is None and entry.updated == MTIME


def test_seed_with_dateline_share_and_repeated_caption() -> None:
    entry = read(seed("001"))
    assert (
        entry.title
        == "North Korea\u2019s Kim vows steadfast support for Russia\u2019s war in Ukraine"
    )
    assert entry.outlet == "AP"
    content = entry.content or ""
    assert content.startswith("<p>North Korean leader Kim Jong Un vowed")
    assert "Share" not in content and "(AP)" not in content
    assert content.count("Independent journalists were not given access") <= 1
    assert entry.published is not None
    assert (entry.published.year, entry.published.month) == (2024, 11)
    assert entry.published.day in (29, 30)


# --- smaller rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_paragraph", "outlet", "rest"),
    [
        ("PARIS (AFP) \u2014 Talks resumed on Monday.", "AFP", "Talks resumed on Monday."),
        (
            "(Reuters) - Oil prices rose for a third day.",
            "Reuters",
            "Oil prices rose for a third day.",
        ),
        ("WASHINGTON \u2014 The Senate adjourned early.", None, "The Senate adjourned early."),
        ("NEW YORK, Nov. 4, 2024 /PRNewswire/ -- Acme said.", "PRNewswire", "Acme said."),
        ("U.S. - China talks ended without a deal on tariffs.", None, None),
    ],
)
def test_datelines(first_paragraph: str, outlet: str | None, rest: str | None) -> None:
    text = f"A headline for the story\n\n{first_paragraph} " + "More words follow here. " * 3
    entry = read_article(text.encode(), path="d.txt", source="s", mtime=MTIME)
    assert entry.outlet == outlet
    assert (entry.content or "").startswith(f"<p>{rest or first_paragraph}")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Published 3:41 PM EST, Fri November 29, 2024", "2024-11-29T20:41:00+00:00"),
        ("Fri 29 Nov 2024 10.41 GMT", "2024-11-29T10:41:00+00:00"),
        ("2024-11-29T09:00:00+09:00", "2024-11-29T00:00:00+00:00"),
        ("Nov. 29, 2024", "2024-11-29T12:00:00+00:00"),
        ("November 29, 2024 at 6:05 a.m. PT", "2024-11-29T14:05:00+00:00"),
    ],
)
def test_date_lines(line: str, expected: str) -> None:
    text = f"Headline about something\n{line}\n" + "A body sentence that goes on for a while. " * 3
    entry = read_article(text.encode(), path="d.txt", source="s", mtime=MTIME)
    assert entry.published is not None and entry.published.isoformat() == expected
    assert line not in (entry.content or "")


def test_mtime_is_converted_to_utc_and_must_be_aware() -> None:
    text = b"A headline here\n\nOne body sentence with enough words to count as a paragraph."
    entry = read_article(
        text, path="a.txt", source="s", mtime=datetime.fromisoformat("2024-05-01T10:00:00+02:00")
    )
    assert entry.published is None
    assert entry.updated == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        read_article(text, path="a.txt", source="s", mtime=datetime(2024, 5, 1))


def test_latin1_file_is_read() -> None:
    text = (
        "Caf\xe9 owners protest new rules\n\nOwners of caf\xe9s said the rules were unfair to them."
    )
    entry = read_article(text.encode("cp1252"), path="a.txt", source="s", mtime=MTIME)
    assert entry.title == "Caf\xe9 owners protest new rules"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("story.txt", b"Headline\n\nBody.", True),
        ("story.md", b"# Headline", True),
        ("page.HTML", b"<html><body><p>x</p></body></html>", True),
        ("feed.xml", b"<rss version='2.0'></rss>", False),
        (
            "saved-feed.html",
            b"<?xml version='1.0'?>\n<feed xmlns='http://www.w3.org/2005/Atom'>",
            False,
        ),
        ("notes.txt", b"  \n", False),
        (".hidden.txt", b"Headline\n\nBody.", False),
        ("photo.jpg", b"\xff\xd8\xff", False),
    ],
)
def test_looks_like_article(name: str, data: bytes, expected: bool) -> None:
    assert looks_like_article(name, data) is expected


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(str.encode),
        st.lists(
            st.sampled_from(
                [
                    "<article>",
                    "<h1>",
                    "</h1>",
                    "<p>",
                    "<script>",
                    "# ",
                    "\n",
                    "\n\n",
                    "---\n",
                    "- ",
                    "By Jane Doe",
                    "Nov. 29, 2024",
                    "(AP) \u2014 ",
                    "/ ",
                    "Share",
                    "Title Words",
                ]
            ),
            max_size=30,
        ).map(lambda parts: "".join(parts).encode()),
    ),
    name=st.sampled_from(["a.txt", "a.md", "a.html"]),
)
def test_any_bytes_give_an_entry_or_parse_error(data: bytes, name: str) -> None:
    try:
        entry = read_article(data, path=name, source="s", mtime=MTIME)
    except ParseError as exc:
        assert exc.where == name
        return
    assert entry.title and entry.origin == name
    # Every article has a date to show: the stated one, else the file's time.
    shown = entry.published or entry.updated
    assert shown is not None and shown.utcoffset() is not None
    assert shown.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
