"""plain_feed.py: the fast reader gives exactly what feedparser gives, or steps aside."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.parse import ParsedFeed, parse_feed
from aggregator.plain_feed import read_plain
from tests.conftest import SHARED, rss

ORIGIN = "https://feeds.example.org/news/feed.xml"
CORPUS = SHARED / "corpus" / "wild-feeds"


def both(
    data: bytes, headers: dict[str, str] | None = None, origin: str = ORIGIN
) -> tuple[object, object]:
    """What parse_feed gives with the plain reader and with feedparser alone."""
    results = []
    for plain in (True, False):
        try:
            results.append(
                parse_feed(data, source="s", origin=origin, headers=headers, plain=plain)
            )
        except ParseError as exc:
            results.append(type(exc))
    return results[0], results[1]


def plain_reads(data: bytes, headers: dict[str, str] | None = None, origin: str = ORIGIN) -> bool:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return read_plain(data, source="s", origin=origin, headers=lowered) is not None


RSS_ITEMS = [
    {
        "title": "Council &amp; mayor agree budget",
        "link": "https://example.org/a/1?utm_source=x",
        "guid": "a-1",
        "pubDate": "Tue, 05 Mar 2024 10:00:00 GMT",
        "description": "&lt;p&gt;The &lt;a href='/budget'&gt;budget&lt;/a&gt; passed.&lt;/p&gt;",
    },
    {"title": "Relative link", "link": "/a/2", "pubDate": "Tue, 05 Mar 2024 11:30:00 +0100"},
    {"title": "Guid as link", "guid": "https://example.org/a/3"},
    {"description": "No title, only text."},
]


def test_plain_rss_reads_as_feedparser_reads_it():
    data = rss("Example Wire", RSS_ITEMS)
    assert plain_reads(data)
    fast, slow = both(data)
    assert isinstance(fast, ParsedFeed) and fast == slow
    assert [e.link for e in fast.entries] == [
        "https://example.org/a/1?utm_source=x",
        "https://feeds.example.org/a/2",
        "https://example.org/a/3",
        None,
    ]


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">Atom Wire</title>
<id>urn:feed</id><updated>2024-03-05T12:00:00Z</updated>
<entry><title type="html">Storm &amp;amp; flood</title><id>urn:e1</id>
<link href="/e/1"/><link rel="related" href="https://other.example.org/"/>
<updated>2024-03-05T12:00:00Z</updated><published>2024-03-05T09:15:30+02:00</published>
<author><name>Jo Reporter</name><email>jo@example.org</email></author>
<category term="weather" label="Weather"/><category term="floods"/>
<summary>Short.</summary>
<content type="html">&lt;p&gt;Long &lt;b&gt;text&lt;/b&gt;.&lt;/p&gt;</content>
</entry>
<entry><title>Only updated</title><id>urn:e2</id><updated>2024-03-04T08:00:00.123Z</updated></entry>
</feed>"""


def test_plain_atom_reads_as_feedparser_reads_it():
    assert plain_reads(ATOM)
    fast, slow = both(ATOM)
    assert isinstance(fast, ParsedFeed) and fast == slow
    assert fast.entries[0].link == "https://feeds.example.org/e/1"
    assert fast.entries[0].tags == ("Weather", "floods")


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel/></rss>', {}),
        (rss("t", RSS_ITEMS[:1]), {"Content-Type": "text/xml; charset=windows-1252"}),
        (b'<!DOCTYPE rss [<!ENTITY x "y">]><rss version="2.0"><channel/></rss>', {}),
        (b'<rss version="0.91"><channel><title>t</title></channel></rss>', {}),
        (
            b'<rss version="2.0"><channel><title>t</title><item><title>a</title>'
            b"<dc:date xmlns:dc='http://purl.org/dc/elements/1.1/'>2024-03-05</dc:date>"
            b"</item></channel></rss>",
            {},
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><item><title>a</title>'
            b"<title>b</title></item></channel></rss>",
            {},
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><item><title>a</title>'
            b"<pubDate>yesterday</pubDate></item></channel></rss>",
            {},
        ),
        (rss("t", [{"title": "a", "pubDate": "Tue, 05 Mar 24 10:00:00 GMT"}]), {}),
        (rss("t", [{"title": "a", "pubDate": "Tue, 05 Mar 2024 10:00:00 CEST"}]), {}),
        (rss("t", [{"title": "a", "pubDate": "Tue, 05 Mar 1850 10:00:00 GMT"}]), {}),
        (ATOM.replace(b"2024-03-04T08:00:00.123Z", b"0001-01-01T00:00:00Z"), {}),
        (ATOM.replace(b'type="html">Storm', b'type="xhtml">Storm'), {}),
        (ATOM.replace(b"<feed ", b'<feed xml:base="https://b.example.org/" '), {}),
        (ATOM, {"Content-Language": "fr"}),
        (
            rss("t", RSS_ITEMS[:1]).replace(
                b"</item>",
                b"<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
                b"Le texte.</content:encoded></item>",
            ),
            {"Content-Language": "fr"},
        ),
        (b"<rss version='2.0'><channel><title>a &nbsp; b</title></channel></rss>", {}),
        (b"\xef\xbb\xbf<rss version='2.0'><channel><title>t</title></channel></rss>", {}),
        (
            b"<rss version='2.0'><channel><title>t</title></channel>"
            b"<item><title>a</title></item></rss>",
            {},
        ),
        (
            b"<rss version='2.0'><channel><title>t</title><image><item><title>a</title></item>"
            b"</image></channel></rss>",
            {},
        ),
        (
            ATOM.replace(b"<entry>", b"<source><entry><title>x</title></entry></source><entry>", 1),
            {},
        ),
    ],
)
def test_anything_unusual_goes_to_feedparser(data, headers):
    assert not plain_reads(data, headers)
    fast, slow = both(data, headers)
    assert fast == slow


@pytest.mark.parametrize(
    "item",
    [
        b"<title>a</title><category>War</category><category>War</category>",  # one tag
        b"<title>a</title><description></description><content:encoded>x</content:encoded>",
        b"<guid>abc-1</guid><link></link>",  # an empty link still beats the guid
        b"<title>a</title><link>https://e.org/?a=1&amp;amp;b=2</link>",
    ],
)
def test_feedparser_quirks_are_kept(item):
    data = rss("t", []).replace(
        b"</channel>",
        b"<item xmlns:content='http://purl.org/rss/1.0/modules/content/'>" + item + b"</item>"
        b"</channel>",
    )
    assert plain_reads(data)
    fast, slow = both(data)
    assert fast == slow


def test_element_truthiness_is_never_asked(recwarn):
    # ElementTree warns when an element is used as a bool; pytest makes that an error.
    data = rss("t", RSS_ITEMS).replace(
        b"<item>",
        b"<item><dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>Ann</dc:creator>",
        1,
    )
    fast, slow = both(data)
    assert isinstance(fast, ParsedFeed) and fast == slow
    assert fast.entries[0].author == "Ann"


def wild_files() -> list[Path]:
    return (
        sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".txt")
        if CORPUS.is_dir()
        else []
    )


# feedparser's test files say in a comment what HTTP headers they are served with.
HEADER = re.compile(rb"^Header:\s+([\w-]+):\s*(.*?)\s*$", re.M)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared wild-feeds corpus is absent")
@pytest.mark.parametrize(
    ("with_headers", "origin"),
    [(False, ORIGIN), (True, ORIGIN), (False, "feeds/local/wild.xml")],  # fetched, or a file
)
def test_every_wild_feed_the_plain_reader_takes_reads_as_feedparser_reads_it(with_headers, origin):
    taken = 0
    for path in wild_files():
        data = path.read_bytes()
        headers = {k.decode(): v.decode() for k, v in HEADER.findall(data)} if with_headers else {}
        if not plain_reads(data, headers, origin):
            continue
        taken += 1
        fast, slow = both(data, headers, origin)
        assert fast == slow, path.name
    assert taken >= 10  # the corpus is mostly odd cases, but some are plain


# Random documents from the pieces real feeds are made of, odd ones included:
# wherever the plain reader takes one, it must read it exactly as feedparser.
TEXTS = [
    "Plain title",
    "  spaced  out  ",
    "A &amp; B",
    "&lt;b&gt;bold&lt;/b&gt; x",
    "<![CDATA[<p>cdata <a href='/r'>l</a></p>]]>",
    "Ünïcödé — dash",
    "",
    "x\n y",
    "&#233;t&#xe9;",
]
URLS = [
    "https://e.org/a?x=1&amp;y=2",
    "/rel/path",
    "rel2",
    "http://e.org/b#f",
    "urn:x:1",
    "  https://e.org/sp  ",
    "http:///e.org/x",
    "",
    "tag:e.org,2024:1",
]
RSS_DATES = [
    "Tue, 05 Mar 2024 10:00:00 GMT",
    "Tue, 05 Mar 2024 10:00:00 +0100",
    "5 Mar 2024 10:00 EST",
    "Tue, 05 Mar 2024 10:00:00 -0000",
    "Tue, 05 Mar 24 10:00:00 GMT",
    "2024-03-05T10:00:00Z",
]
ATOM_DATES = [
    "2024-03-05T10:00:00Z",
    "2024-03-05T10:00:00+02:00",
    "2024-03-05T10:00:00.5Z",
    "2024-03-05",
    "2024-03-05 10:00:00Z",
    "2024-03-05t10:00:00z",
]


def rss_item(rng: random.Random) -> str:
    pieces = [
        lambda: f"<title>{rng.choice(TEXTS)}</title>",
        lambda: f"<link>{rng.choice(URLS)}</link>",
        lambda: "<guid{}>{}</guid>".format(
            rng.choice(
                ["", " isPermaLink='false'", " isPermaLink='FALSE'", " ispermalink='false'"]
            ),
            rng.choice([*URLS, "abc-1"]),
        ),
        lambda: f"<description>{rng.choice(TEXTS)}</description>",
        lambda: f"<pubDate>{rng.choice(RSS_DATES)}</pubDate>",
        lambda: f"<author>{rng.choice(['jo@e.org (Jo)', 'Jo Smith', ''])}</author>",
        lambda: rng.choice(
            ["<category>{}</category>", "<category domain='d'>{}</category>"]
        ).format(rng.choice(TEXTS)),
        lambda: f"<content:encoded>{rng.choice(TEXTS)}</content:encoded>",
        lambda: f"<dc:creator>{rng.choice(TEXTS)}</dc:creator>",
        lambda: f"<source url='http://s.org/'>{rng.choice(TEXTS)}</source>",
        lambda: "<enclosure url='http://e.org/a.mp3' length='1' type='audio/mpeg'/>",
    ]
    return "<item>" + "".join(rng.choice(pieces)() for _ in range(rng.randint(0, 8))) + "</item>"


def atom_entry(rng: random.Random) -> str:
    def typed() -> str:
        return rng.choice(["", " type='text'", " type='html'"])

    pieces = [
        lambda: f"<title{typed()}>{rng.choice(TEXTS)}</title>",
        lambda: f"<id>{rng.choice(URLS)}</id>",
        lambda: "<link{}{} href='{}'/>".format(
            rng.choice(["", " rel='alternate'", " rel='related'", " rel='ALTERNATE'"]),
            rng.choice(["", " type='text/html'", " type='application/pdf'", " Type='x/y'"]),
            rng.choice(URLS),
        ),
        lambda: f"<summary{typed()}>{rng.choice(TEXTS)}</summary>",
        lambda: f"<content{typed()}>{rng.choice(TEXTS)}</content>",
        lambda: f"<published>{rng.choice(ATOM_DATES)}</published>",
        lambda: f"<updated>{rng.choice(ATOM_DATES)}</updated>",
        lambda: "<author>{}</author>".format(
            rng.choice(["<name>Jo</name>", "<name>Jo</name><email>j@e.org</email>", ""])
        ),
        lambda: rng.choice(
            ["<category term='t1'/>", "<category term='t2' label='Two'/>", "<category term=''/>"]
        ),
        lambda: f"<source><title>{rng.choice(TEXTS)}</title></source>",
    ]
    return "<entry>" + "".join(rng.choice(pieces)() for _ in range(rng.randint(0, 8))) + "</entry>"


def random_feed(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        items = "".join(rss_item(rng) for _ in range(rng.randint(0, 3)))
        head = rng.choice(["", "<title>Chan</title>"]) + rng.choice(["", "<language>fr</language>"])
        return (
            "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'"
            f" xmlns:dc='http://purl.org/dc/elements/1.1/'><channel>{head}{items}</channel></rss>"
        ).encode()
    entries = "".join(atom_entry(rng) for _ in range(rng.randint(0, 3)))
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>Feed</title><id>urn:f</id>"
        f"{entries}</feed>"
    ).encode()


@pytest.mark.parametrize("seed", range(4))
def test_random_feeds_read_as_feedparser_reads_them(seed):
    rng = random.Random(seed)
    taken = 0
    for _ in range(300):
        data, origin = random_feed(rng), rng.choice([ORIGIN, "feeds/local/random.xml"])
        if plain_reads(data, origin=origin):
            taken += 1
            fast, slow = both(data, origin=origin)
            assert fast == slow, data.decode()
    assert taken > 50
