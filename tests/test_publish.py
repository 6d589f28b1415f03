"""publish.py: stories -> Atom bytes, read back with feedparser, lxml and the shared validator."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.errors import PublishError
from aggregator.model import Item, Story, Topic
from aggregator.publish import (
    DEFAULT_AUTHOR,
    DEFAULT_LIMIT,
    TOPIC_SCHEME,
    FeedMeta,
    render,
    write_atomic,
)

ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
META = FeedMeta(
    id="https://news.example/feed.atom",
    title="All the news",
    self_url="https://news.example/feed.atom",
    subtitle="One entry per event",
    alternate_url="https://news.example/",
)
VALIDATOR = Path(__file__).resolve().parents[2] / "shared" / "tools" / "validate_atom.sh"


def make_item(item_id: str, outlet: str, **fields) -> Item:
    values: dict[str, object] = {
        "id": item_id,
        "source": f"https://{outlet.lower().replace(' ', '')}.example/feed",
        "title": f"{outlet} headline",
        "url": f"https://{outlet.lower().replace(' ', '')}.example/{item_id}",
        "guid": None,
        "summary": f"Summary from {outlet}.",
        "text": f"Text from {outlet}.",
        "content_html": f"<p>Body from {outlet}.</p>",
        "published": NOW - timedelta(hours=2),
        "updated": None,
        "seen": NOW - timedelta(hours=1),
        "author": None,
        "outlet": outlet,
        "tags": (),
        "language": "en",
        "fingerprint": f"fp-{item_id}",
    }
    values.update(fields)
    return Item(**values)  # type: ignore[arg-type]


def make_story(number: int, *members: Item, hours_ago: float = 0, **fields) -> Story:
    """A story whose members all date from *hours_ago*; the first member leads."""
    when = NOW - timedelta(hours=hours_ago)
    if not members:
        members = (make_item(f"i{number}", "Outlet A"),)
    members = tuple(
        replace(m, published=m.published and min(m.published, when), updated=when) for m in members
    )
    values: dict[str, object] = {
        "id": f"https://news.example/stories/{number}",
        "lead_id": members[0].id,
        "members": members,
    }
    values.update(fields)
    return Story(**values)  # type: ignore[arg-type]


def three_outlets() -> Story:
    return make_story(
        1,
        make_item("a", "Outlet A", title="Bridge opens", published=NOW - timedelta(hours=5)),
        make_item("b", "Outlet B", title="New bridge opens to traffic"),
        make_item("c", "Outlet C", title="Bridge: first cars cross", url=None),
        topics=(Topic("transport", "Transport"), Topic("city", "City & Region")),
    )


def parse(data: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(data)
    assert parsed.version == "atom10"
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def xml_entries(data: bytes) -> list[etree._Element]:
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == f"{ATOM}feed"
    entries: list[etree._Element] = root.findall(f"{ATOM}entry")
    return entries


def test_feed_metadata():
    parsed = parse(render([three_outlets()], META, NOW))
    feed = parsed.feed
    assert feed.id == META.id
    assert feed.title == META.title
    assert feed.subtitle == META.subtitle
    assert feed.author == DEFAULT_AUTHOR
    assert {(link.rel, link.href) for link in feed.links} == {
        ("self", META.self_url),
        ("alternate", META.alternate_url),
    }
    # the newest story's updated, not now
    assert feed.updated == (NOW).isoformat()


def test_empty_feed_is_valid_and_updated_now():
    data = render([], META, NOW)
    parsed = parse(data)
    assert parsed.entries == []
    assert parsed.feed.updated == NOW.isoformat()


def test_entry_fields():
    story = three_outlets()
    (entry,) = parse(render([story], META, NOW)).entries
    assert entry.id == story.id
    assert entry.title == "Bridge opens"
    assert entry.updated == story.updated.isoformat()
    assert entry.published == (NOW - timedelta(hours=5)).isoformat()
    assert [a.name for a in entry.authors] == ["Outlet A", "Outlet B", "Outlet C"]
    assert entry.summary == "Summary from Outlet A."
    assert [(t.term, t.label, t.scheme) for t in entry.tags] == [
        ("transport", "Transport", TOPIC_SCHEME),
        ("city", "City & Region", TOPIC_SCHEME),
    ]


def test_topic_scheme_comes_from_meta():
    meta = replace(META, topic_scheme="https://news.example/topics/")
    (entry,) = parse(render([three_outlets()], meta, NOW)).entries
    assert {t.scheme for t in entry.tags} == {"https://news.example/topics/"}


def test_link_contract_in_feedparser():
    (entry,) = parse(render([three_outlets()], META, NOW)).entries
    assert entry.link == "https://outleta.example/a"
    links = [(link.rel, link.href, link.type, link.get("title")) for link in entry.links]
    assert links == [
        ("alternate", "https://outleta.example/a", "text/html", "Bridge opens"),
        ("related", "https://outleta.example/a", "text/html", "Outlet A"),
        ("related", "https://outletb.example/b", "text/html", "Outlet B"),
    ]


def test_link_attributes_in_raw_xml():
    # feedgen 1.0.0 drops these attributes on entry links (lkiesow/python-feedgen#135):
    # check the bytes themselves, not a parser's defaults.
    (entry,) = xml_entries(render([three_outlets()], META, NOW))
    links = [dict(link.attrib) for link in entry.findall(f"{ATOM}link")]
    assert links == [
        {
            "href": "https://outleta.example/a",
            "rel": "alternate",
            "type": "text/html",
            "title": "Bridge opens",
        },
        {
            "href": "https://outleta.example/a",
            "rel": "related",
            "type": "text/html",
            "title": "Outlet A",
        },
        {
            "href": "https://outletb.example/b",
            "rel": "related",
            "type": "text/html",
            "title": "Outlet B",
        },
    ]
    # no stray attribute-less link from feedgen itself
    assert all("rel" in link for link in links)


def test_item_url_hook_fills_in_missing_links():
    def item_url(item: Item) -> str | None:
        return item.url or f"https://news.example/items/{item.id}"

    (entry,) = parse(render([three_outlets()], META, NOW, item_url=item_url)).entries
    related = [link.href for link in entry.links if link.rel == "related"]
    assert related[-1] == "https://news.example/items/c"
    assert 'href="https://news.example/items/c"' in entry.content[0].value


def test_story_without_lead_url_is_valid():
    story = make_story(1, make_item("a", "Outlet A", url=None), make_item("b", "Outlet B"))
    data = render([story], META, NOW)
    (entry,) = parse(data).entries
    assert [link.rel for link in entry.links] == ["related"]
    assert entry.content[0].type == "text/html"
    (raw,) = xml_entries(data)
    assert raw.find(f"{ATOM}content").get("type") == "html"


def test_unsafe_urls_get_no_link_and_odd_characters_are_escaped():
    story = make_story(
        1,
        make_item("a", "Outlet A", url="javascript:alert(1)"),
        make_item("b", "Outlet B", url="https://b.example/a path/100%"),
    )
    data = render([story], META, NOW)
    (entry,) = parse(data).entries
    assert [(link.rel, link.href) for link in entry.links] == [
        ("related", "https://b.example/a%20path/100%25")
    ]
    assert "javascript" not in data.decode()


def test_reported_by_names_every_outlet_with_headline_time_and_link():
    (entry,) = parse(render([three_outlets()], META, NOW)).entries
    (content,) = entry.content
    html = content.value
    assert html.startswith("<p>Body from Outlet A.</p>")
    assert "Reported by" in html
    for outlet, headline in [
        ("Outlet A", "Bridge opens"),
        ("Outlet B", "New bridge opens to traffic"),
        ("Outlet C", "Bridge: first cars cross"),
    ]:
        assert f"<strong>{outlet}</strong>" in html
        assert headline in html
    assert '<a href="https://outleta.example/a"' in html
    assert '<a href="https://outletb.example/b"' in html
    assert "Bridge: first cars cross <small>" in html  # no URL, no link
    assert "2024-05-01 07:00 UTC" in html  # Outlet A's publication time


def test_empty_content_falls_back_to_summary():
    story = make_story(1, make_item("a", "Outlet A", content_html="", summary="Short & sweet"))
    (entry,) = parse(render([story], META, NOW)).entries
    assert entry.content[0].value.startswith("<p>Short &amp; sweet</p>")


def test_hostile_text_is_escaped():
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    story = make_story(
        1,
        make_item(
            "a",
            "Outlet <b>A</b>",
            title=hostile,
            summary=hostile,
            content_html=f"<p>ok</p>{hostile}",
        ),
        make_item("b", "Outlet B", title=hostile),
    )
    data = render([story], META, NOW)
    (entry,) = parse(data).entries
    assert entry.title == hostile  # text construct: escaped in XML, the same text back
    (raw,) = xml_entries(data)
    assert raw.find(f"{ATOM}title").text == hostile
    assert raw.find(f"{ATOM}title").get("type") is None
    content = raw.find(f"{ATOM}content").text
    fragment = lxml.html.fragment_fromstring(content, create_parent="div")
    assert fragment.findall(".//script") == []
    assert [el.attrib for el in fragment.iter() if any(k.startswith("on") for k in el.attrib)] == []
    assert "<script" not in content
    assert "&lt;script&gt;" in content  # the headlines, as text
    assert "<strong>Outlet &lt;b&gt;A&lt;/b&gt;</strong>" in content


def test_characters_xml_cannot_carry_are_dropped():
    story = make_story(1, make_item("a", "Outlet\x00 A", title="Bell\x07 \ud800here"))
    (entry,) = parse(render([story], META, NOW)).entries
    assert entry.title == "Bell here"
    assert entry.authors[0].name == "Outlet A"


def test_newest_first_then_id():
    stories = [
        make_story(1, hours_ago=3),
        make_story(2, hours_ago=1),
        make_story(4, hours_ago=2),
        make_story(3, hours_ago=2),
    ]
    parsed = parse(render(stories, META, NOW))
    assert [e.id.rsplit("/", 1)[1] for e in parsed.entries] == ["2", "3", "4", "1"]
    assert parsed.feed.updated == (NOW - timedelta(hours=1)).isoformat()


def test_limit_keeps_the_newest():
    stories = [make_story(n, hours_ago=n) for n in range(10)]
    parsed = parse(render(stories, META, NOW, limit=3))
    assert [e.id.rsplit("/", 1)[1] for e in parsed.entries] == ["0", "1", "2"]


def test_default_limit():
    stories = [make_story(n, hours_ago=n / 60) for n in range(DEFAULT_LIMIT + 5)]
    assert len(parse(render(stories, META, NOW)).entries) == DEFAULT_LIMIT


def test_repeated_story_id_keeps_the_newest():
    older = make_story(1, hours_ago=5)
    newer = make_story(1, make_item("x", "Outlet X", title="Newer"), hours_ago=1)
    (entry,) = parse(render([older, newer], META, NOW)).entries
    assert entry.title == "Newer"


def test_bad_arguments():
    with pytest.raises(ValueError, match="now"):
        render([], META, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        render([], META, NOW, limit=-1)


def test_deterministic():
    stories = [three_outlets(), make_story(2, hours_ago=1), make_story(3, hours_ago=1)]
    first = render(stories, META, NOW)
    assert render(list(reversed(stories)), META, NOW) == first
    assert render(stories, META, NOW + timedelta(days=1)) == first  # now only fills an empty feed


text = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=50, deadline=None)
@given(title=text, outlet=text, summary=text, url=text)
def test_any_text_gives_a_wellformed_feed(title, outlet, summary, url):
    story = make_story(1, make_item("a", outlet, title=title, summary=summary, url=url))
    data = render([story], META, NOW)
    (entry,) = xml_entries(data)
    assert entry.find(f"{ATOM}id").text == story.id
    parse(data)


# write_atomic


def test_write_atomic_creates_parents_and_replaces(tmp_path):
    path = tmp_path / "out" / "public" / "feed.atom"
    write_atomic(path, b"old")
    assert path.read_bytes() == b"old"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    with path.open("rb") as reader:
        write_atomic(path, b"new")
        # a reader that had the old file open still sees all of it: replaced, not rewritten
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new"
    assert os.listdir(path.parent) == ["feed.atom"]


def test_write_atomic_says_whether_it_wrote(tmp_path):
    path = tmp_path / "feed.atom"
    assert write_atomic(path, b"one", sync_dir=False) is True
    assert write_atomic(path, b"one") is False  # unchanged: left alone
    assert write_atomic(path, b"two") is True
    assert path.read_bytes() == b"two"


def test_write_atomic_keeps_the_existing_mode(tmp_path):
    path = tmp_path / "feed.atom"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomic(path, b"new")
    assert path.stat().st_mode & 0o777 == 0o640


def test_write_atomic_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "feed.atom"
    with pytest.raises(PublishError) as info:
        write_atomic(path, b"data")
    assert info.value.where == str(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_write_atomic_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "feed.atom"
    path.write_bytes(b"old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(PublishError, match=r"feed\.atom"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["feed.atom"]


# the shared validator (../shared/tools next to the checkout)


def validate(path: Path, *flags: str) -> str:
    if not VALIDATOR.is_file():
        pytest.skip(f"shared validator not found at {VALIDATOR}")
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is needed to run validate_atom.sh")
    try:
        # the first run may apt-get install jing
        done = subprocess.run(
            [bash, str(VALIDATOR), *flags, str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"validate_atom.sh could not run: {exc}")
    if done.returncode == 2:
        pytest.skip(f"validate_atom.sh could not run: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


def validator_feed(tmp_path: Path) -> Path:
    hostile = '<script>alert("x")</script><a href="javascript:alert(1)" onclick="x()">y</a>'
    stories = [
        three_outlets(),
        make_story(
            2,
            make_item("h", "Outlet H", title=hostile, content_html=hostile, url=None),
            make_item("i", "Outlet I", url="javascript:alert(1)"),
            hours_ago=1,
        ),
        make_story(3, make_item("e", "", title="", summary="", content_html=""), hours_ago=2),
    ]
    path = tmp_path / "feed.atom"
    write_atomic(path, render(stories, META, NOW))
    return path


@pytest.mark.parametrize("flags", [(), ("--no-active-content",)], ids=["schema", "no-active"])
def test_shared_validator(tmp_path, flags):
    assert validate(validator_feed(tmp_path), *flags) == "OK"


def test_shared_validator_empty_feed(tmp_path):
    path = tmp_path / "feed.atom"
    write_atomic(path, render([], META, NOW))
    assert validate(path, "--no-active-content") == "OK"


def test_write_atomic_leaves_an_unchanged_file_alone(tmp_path):
    path = tmp_path / "feed.atom"
    write_atomic(path, b"<feed/>")
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    write_atomic(path, b"<feed/>")
    assert path.stat().st_mtime_ns == before - 10**9  # not rewritten
    write_atomic(path, b"<feed>new</feed>")
    assert path.read_bytes() == b"<feed>new</feed>"
