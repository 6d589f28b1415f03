"""opml.py: round trip, nesting, escaping, and garbage refused safely."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.opml import Subscription, parse_opml, render_opml

NOW = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)

NESTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Mine</title></head>
  <body>
    <outline text="News">
      <outline text="Example" title="Example News" type="rss" xmlUrl="https://example.org/feed"/>
      <outline text="Folder">
        <outline text="Deep" type="rss" xmlUrl="https://deep.example/atom.xml"/>
      </outline>
    </outline>
    <outline text="Just a bookmark" type="link" url="https://example.org/page"/>
    <outline text="Lower case" xmlurl="https://lower.example/rss"/>
    <outline text="Duplicate" xmlUrl="https://example.org/feed"/>
    <outline text="Blank" xmlUrl="  "/>
    <outline text="https://untitled.example/" xmlUrl="https://untitled.example/"/>
  </body>
</opml>
"""


def test_nested_outlines_with_xml_url_are_read_in_order():
    assert parse_opml(NESTED, "subs.opml") == [
        Subscription("https://example.org/feed", "Example News"),
        Subscription("https://deep.example/atom.xml", "Deep"),
        Subscription("https://lower.example/rss", "Lower case"),
        Subscription("https://untitled.example/", None),
    ]


def test_round_trip_with_characters_that_need_escaping():
    subs = [
        Subscription("https://a.example/feed?x=1&y=<2>", 'Tom & Jerry\'s "best" <news>'),
        Subscription("https://b.example/rss", "Zürich – Café ☕"),
        Subscription("https://c.example/atom", None),
        Subscription("https://d.example/", "line\nbreak\tand\x00control"),
    ]
    data = render_opml(subs, "My <feeds> & more", NOW)
    back = parse_opml(data, "export.opml")
    assert back[:3] == subs[:3]
    assert back[3] == Subscription("https://d.example/", "line\nbreak\tandcontrol")


def test_render_is_opml_2_with_an_rfc822_date():
    root = ET.fromstring(render_opml([Subscription("https://a.example/")], "Subs", NOW))
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Subs"
    assert root.findtext("head/dateCreated") == "Wed, 01 May 2024 12:30:15 GMT"
    (outline,) = root.findall("body/outline")
    assert outline.attrib == {
        "type": "rss",
        "text": "https://a.example/",
        "xmlUrl": "https://a.example/",
    }


def test_render_wants_utc():
    with pytest.raises(ValueError, match="UTC"):
        render_opml([], "t", datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))))


@given(
    st.lists(
        st.builds(
            Subscription,
            st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1).map(
                lambda s: "https://x.example/" + s.strip()
            ),
            st.none()
            | st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1),
        ),
        max_size=5,
        unique_by=lambda s: s.url,
    )
)
def test_round_trip_property(subs):
    back = parse_opml(render_opml(subs, "t", NOW), "p")
    expected = []
    for sub in subs:
        title = sub.title.strip() if sub.title else None
        expected.append(Subscription(sub.url, title if title and title != sub.url else None))
    assert back == expected


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not well-formed"),
        (b"garbage", "not well-formed"),
        (b"<opml><body><outline xmlUrl='x'></body>", "not well-formed"),
        (b"<rss version='2.0'><channel/></rss>", "not OPML"),
        (b"\xff\xfe\x00garbage", "not well-formed"),
        (  # billion laughs
            b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<opml><body><outline xmlUrl="&b;"/></body></opml>',
            "DOCTYPE",
        ),
        (  # XXE
            b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<opml><body><outline title="&x;" xmlUrl="https://a/"/></body></opml>',
            "DOCTYPE",
        ),
        (b'<!DOCTYPE opml SYSTEM "http://127.0.0.1:1/x.dtd"><opml/>', "DOCTYPE"),
        (b"<opml><body><outline title='&undefined;' xmlUrl='x'/></body></opml>", "not well-formed"),
    ],
)
def test_garbage_and_entities_are_refused_naming_the_origin(data, match):
    with pytest.raises(ParseError, match=match) as info:
        parse_opml(data, "bad.opml")
    assert "bad.opml" in str(info.value)


def test_utf16_opml_is_read():
    data = NESTED.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert len(parse_opml(data, "u16.opml")) == 4
