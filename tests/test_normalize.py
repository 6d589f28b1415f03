"""normalize.py: canonical URLs, text, sanitised HTML, ids, UTC dates."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.model import Entry
from aggregator.normalize import (
    canonical_url,
    fingerprint,
    html_to_text,
    normalize,
    sanitize_html,
)

NOW = datetime(2024, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM/a/B", "https://example.com/a/B"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/x#section", "https://example.com/x"),
        ("https://example.com/x?utm_source=rss&utm_medium=feed", "https://example.com/x"),
        ("https://example.com/x?id=7&fbclid=abc&gclid=def", "https://example.com/x?id=7"),
        ("https://example.com/x?b=2&a=1", "https://example.com/x?b=2&a=1"),
        ("  https://example.com/x  ", "https://example.com/x"),
        ("not a url", "not a url"),
    ],
)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


@given(st.text())
def test_canonical_url_is_idempotent_on_any_text(text):
    once = canonical_url(text)
    assert canonical_url(once) == once


@given(
    st.from_regex(
        r"https?://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,4})?(/[a-zA-Z0-9_./%-]{0,20})?(\?[a-z_=&0-9]{0,30})?(#[a-z]*)?",
        fullmatch=True,
    )
)
def test_canonical_url_is_idempotent_on_urls(url):
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "#" not in once and "utm_" not in once


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<style>p{color:red}</style>",
        '<iframe src="https://evil.example"></iframe>',
        '<img src="x.png" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<p onclick="steal()">hi</p>',
    ],
)
def test_sanitize_removes_active_content(hostile):
    clean = sanitize_html(f"<p>ok</p>{hostile}").lower()
    for bad in ("<script", "<style", "<iframe", "onerror", "onclick", "javascript:"):
        assert bad not in clean


def test_sanitize_keeps_structure_and_wraps_plain_text():
    assert sanitize_html("<p>a <b>b</b></p>") == "<p>a <b>b</b></p>"
    assert sanitize_html("one\n\ntwo & three") == "<p>one</p><p>two &amp; three</p>"


def test_html_to_text_keeps_paragraphs_and_drops_scripts():
    text = html_to_text("<p>Hello &amp; <b>world</b></p><script>x = 1</script><p>Second</p>")
    assert text == "Hello & world\n\nSecond"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<ul><li>one</li><li>two</li></ul>", "one\n\ntwo"),
        ("<div>first</div><div>second</div>", "first\n\nsecond"),
        ("line<br>next<br/>last", "line\n\nnext\n\nlast"),
        ("<h2>Storm</h2><p>The road closed.</p>", "Storm\n\nThe road closed."),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\n\nc"),
        ("<span>in</span><span>line</span> <i>words</i>", "inline words"),
    ],
)
def test_html_to_text_never_glues_words_across_blocks(html, text):
    assert html_to_text(html) == text


def test_fingerprint_ignores_case_spacing_and_punctuation():
    assert fingerprint("Big News!", "Some  text.") == fingerprint("big news", "some text")
    assert fingerprint("Big News", "text") != fingerprint("Big News", "other text")


def _fingerprint_by_definition(title: str, text: str) -> str:
    words = re.findall(r"\w+", f"{title}\n{text}".casefold())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()[:32]


_TEXT_CHARS = st.sampled_from([*"aZ9_ \t\n.,-'", *"éÉßİﬁΩЖ中١²½’“”—…", "\u00a0", "\u200b"])


@given(st.text(), st.text(_TEXT_CHARS) | st.text())
def test_fingerprint_hashes_the_case_folded_words(title, text):
    # Stored fingerprints must keep matching: it is the hash of the \w+ words.
    assert fingerprint(title, text) == _fingerprint_by_definition(title, text)


def entry(**fields):
    base = {"source": "s", "origin": "https://example.org/feed", "title": "A title"}
    return Entry(**(base | fields))


def test_normalize_builds_a_clean_item():
    item = normalize(
        entry(
            guid="g1",
            link="https://Example.org/story?utm_campaign=x",
            summary="<p>First <em>para</em>.</p><script>bad()</script>",
            published=NOW,
            tags=("Politics", " Politics ", "World"),
            outlet="Example News",
        ),
        NOW,
    )
    assert item.url == "https://example.org/story"
    assert item.text == "First para."
    assert "<script" not in item.content_html
    assert item.tags == ("Politics", "World")
    assert item.published == NOW and item.seen == NOW
    assert item.outlet == "Example News"
    assert item.language == "en" or item.language is None


def test_item_id_is_stable_and_keyed_on_guid():
    a = normalize(entry(guid="g1", summary="one"), NOW)
    b = normalize(entry(guid="g1", summary="edited", title="New title"), NOW + timedelta(hours=1))
    c = normalize(entry(guid="g2", summary="one"), NOW)
    assert a.id == b.id != c.id


def test_missing_title_falls_back_to_first_line_and_outlet_to_host():
    item = normalize(
        entry(title=None, link="https://www.example.net/a", summary="Lead sentence here.\n\nMore."),
        NOW,
    )
    assert item.title == "Lead sentence here."
    assert item.outlet == "example.net"


def test_declared_language_is_reduced_to_its_code():
    assert normalize(entry(language="en-US", summary="x"), NOW).language == "en"


def test_dates_must_be_utc():
    with pytest.raises(ValueError, match="UTC"):
        entry(published=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="UTC"):
        entry(published=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))))


def test_the_language_model_warms_up_in_the_background_and_loads_once(monkeypatch):
    import py3langid

    from aggregator import normalize as module

    calls: list[str] = []
    real = py3langid.classify

    def counting(text: str):  # type: ignore[no-untyped-def]
        calls.append(text)
        return real(text)

    monkeypatch.setattr(py3langid, "classify", counting)
    monkeypatch.setattr(module, "_warm_up", None)
    module.warm_up_language_model()
    module.warm_up_language_model()  # a second call starts nothing
    assert module.detect_language("Der Bundestag hat am Freitag das Gesetz beschlossen.") == "de"
    assert calls[0] == "warm up the model" and len(calls) == 2


@given(st.text(alphabet=" \t\r\f\v\u00a0\u200b\nab", max_size=40))
def test_runs_of_spaces_collapse_as_the_regex_did(text):
    from aggregator.normalize import _spaces

    assert _spaces(text) == re.sub("[ \t\r\f\v\u00a0\u200b]+", " ", text)
