"""Every endpoint of ../shared/tools/hostile_server.py, with the outcome a user expects.

The server runs as a subprocess on 127.0.0.1. Every endpoint is fetched in
ONE ``fetch_all`` call with a 5 s deadline, so the slow ones (/hang, /slow,
/slow-headers) cost 5 s together, not each; then what was fetched goes
through ``parse_feed`` (and ``normalize``, for active content).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from aggregator.discover import feed_links
from aggregator.errors import FetchError, ParseError
from aggregator.fetch import (
    USER_AGENT,
    Fetched,
    HTTPStatusError,
    Limits,
    NotModified304,
    Request,
    fetch,
    fetch_all,
)
from aggregator.normalize import normalize
from aggregator.parse import ParsedFeed, parse_feed
from aggregator.politeness import Politeness, after_failure, after_success, due

HOSTILE = Path(__file__).resolve().parents[2] / "shared" / "tools" / "hostile_server.py"
TOTAL = 5.0  # the per-request deadline of the big fetch
LIMITS = Limits(total=TOTAL)  # the defaults otherwise: what a user's refresh uses
HUGE_MB = 20
NOW = datetime(2024, 5, 1, tzinfo=UTC)
ACTIVE = re.compile(r"<script|<iframe|<object|javascript:|\son\w+\s*=", re.IGNORECASE)
CAFE = "Café crème in Zürich"


@dataclass(frozen=True)
class Expect:
    """What a user expects of one endpoint: a check of the fetch result."""

    check: Callable[[object], None]
    parse: bool = False  # then also: parse_feed gives entries or ParseError, quickly


def feed(result: object) -> None:
    assert isinstance(result, Fetched), result
    assert result.permanent_redirect is None
    assert parse_feed(result.content, source="s", origin=result.url).entries


def moved(permanent: bool) -> Callable[[object], None]:
    def check(result: object) -> None:
        assert isinstance(result, Fetched), result
        assert result.url.endswith("/feed.atom")
        assert (result.permanent_redirect is not None) is permanent
        assert parse_feed(result.content, source="s", origin=result.url).entries

    return check


def fails(pattern: str) -> Callable[[object], None]:
    def check(result: object) -> None:
        assert isinstance(result, FetchError), result
        assert re.search(pattern, str(result)), str(result)
        assert "127.0.0.1" in str(result)  # names the URL

    return check


def status(code: int, retry_after: float | None = None) -> Callable[[object], None]:
    def check(result: object) -> None:
        assert isinstance(result, HTTPStatusError), result
        assert result.status == code
        if retry_after is None:
            assert result.retry_after is None
        else:
            assert result.retry_after == pytest.approx(retry_after, abs=3)
        state = after_failure(Politeness(), now=NOW, error=result, key="k")
        assert state.gone is (code == 410)  # 404 and 5xx back off, never remove
        if retry_after is not None:
            assert state.next_fetch == NOW + timedelta(seconds=result.retry_after or 0)
        elif code != 410:
            assert state.next_fetch is not None and not due(state, NOW)

    return check


def fetched(result: object) -> None:
    assert isinstance(result, Fetched), result


TIMED_OUT = fails(r"timed out after 5 s")
OVER_CAP = fails(r"over the 10485760-byte cap")

ENDPOINTS: dict[str, Expect] = {
    "/": Expect(fetched),
    "/stats": Expect(fetched),
    "/feed.atom": Expect(feed),
    "/feed.rss": Expect(feed),
    "/redirect/301": Expect(moved(permanent=True)),
    "/redirect/308": Expect(moved(permanent=True)),
    "/redirect/302": Expect(moved(permanent=False)),
    "/redirect/307": Expect(moved(permanent=False)),
    "/redirect/chain/5": Expect(moved(permanent=False)),  # the hop limit, reached
    "/redirect/chain/6": Expect(fails("too many redirects")),
    "/redirect/loop": Expect(fails("redirect loop")),
    "/404": Expect(status(404)),
    "/410": Expect(status(410)),
    "/500": Expect(status(500)),
    "/429": Expect(status(429, retry_after=120)),
    "/503": Expect(status(503, retry_after=300)),
    "/503?seconds=1": Expect(status(503, retry_after=1)),
    "/reset": Expect(fails("could not fetch")),
    "/hang": Expect(TIMED_OUT),
    "/slow": Expect(TIMED_OUT),
    "/slow-headers": Expect(TIMED_OUT),
    "/huge": Expect(fails(f"{HUGE_MB}000000 bytes, over the 10485760-byte cap")),
    "/huge-nolength": Expect(OVER_CAP),
    "/gzip-bomb": Expect(OVER_CAP),
    "/empty": Expect(fetched, parse=True),
    "/malformed": Expect(fetched, parse=True),
    "/truncated": Expect(fetched, parse=True),
    "/page.html": Expect(fetched, parse=True),
    "/billion-laughs": Expect(fetched, parse=True),
    "/xxe": Expect(fetched, parse=True),
    "/xss.atom": Expect(fetched, parse=True),
    "/xss.rss": Expect(fetched, parse=True),
    "/charset/latin1-declared-utf8": Expect(fetched, parse=True),
    "/charset/utf8-header-latin1": Expect(fetched, parse=True),
    "/charset/cp1252-declared-latin1": Expect(fetched, parse=True),
    "/charset/bogus": Expect(fetched, parse=True),
    "/charset/utf16-declared-utf8": Expect(fetched, parse=True),
}

# What parse_feed must make of the fetched hostile content: None = ParseError.
PARSED_TITLE: dict[str, str | None] = {
    "/empty": None,
    "/page.html": None,
    "/charset/latin1-declared-utf8": CAFE,
    "/charset/utf8-header-latin1": CAFE,
    "/charset/bogus": CAFE,
    "/charset/utf16-declared-utf8": CAFE,
    "/charset/cp1252-declared-latin1": "“Quoted” ‘words’",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not HOSTILE.is_file():
        pytest.skip(f"{HOSTILE} is absent")
    port_file = tmp_path_factory.mktemp("hostile") / "port"
    args = ["0", "--port-file", str(port_file), "--lifetime", "120", "--huge-mb", str(HUGE_MB)]
    args += ["--bomb-gib", "1", "--trickle-delay", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, str(HOSTILE), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, "hostile_server.py exited"
            assert time.monotonic() < deadline, "hostile_server.py did not start"
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)  # wait for the port file, or for the server to die
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Run:
    results: dict[str, Fetched | NotModified304 | FetchError]
    seconds: float
    rss_growth_mb: float


@pytest.fixture(scope="module")
def run(hostile: str) -> Run:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    results = fetch_all([Request(path, hostile + path) for path in ENDPOINTS], LIMITS)
    seconds = time.monotonic() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # KiB on Linux
    return Run(results, seconds, growth)


def test_every_listed_endpoint_is_covered(hostile: str):
    listing = fetch(hostile + "/", limits=LIMITS)
    assert isinstance(listing, Fetched)
    text = listing.content.decode()
    listed = set()
    for line in text[text.index("ENDPOINTS") :].splitlines():
        if re.match(r"^  /", line):
            for token in line.split():
                if not token.startswith("/"):
                    break
                listed.add(token.replace("/N", "/5"))
    assert len(listed) > 30
    # /bump changes the feeds, so it has its own sequential test below.
    assert listed <= {*ENDPOINTS, "/bump"}, listed - set(ENDPOINTS)


def test_one_fetch_of_everything_is_bounded_in_time_and_memory(run: Run):
    assert set(run.results) == set(ENDPOINTS)
    assert run.seconds < TOTAL + 10, run.seconds
    assert run.rss_growth_mb < 100, run.rss_growth_mb


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_endpoint(run: Run, path: str):
    ENDPOINTS[path].check(run.results[path])


@pytest.mark.parametrize("path", [p for p, e in ENDPOINTS.items() if e.parse])
def test_hostile_content_parses_safely(run: Run, path: str):
    result = run.results[path]
    assert isinstance(result, Fetched)
    start = time.monotonic()
    try:
        parsed: ParsedFeed | None = parse_feed(
            result.content, source="s", origin=result.url, headers=result.headers
        )
    except ParseError as exc:
        assert result.url in str(exc)
        parsed = None
    assert time.monotonic() - start < 2  # no entity expansion, no hang
    expected = PARSED_TITLE.get(path, "")
    if expected is None:
        assert parsed is None
        return
    assert parsed is not None and parsed.entries, f"{path}: no entries"
    items = [normalize(entry, NOW) for entry in parsed.entries]
    for item in items:
        text = " ".join([item.title, item.summary, item.text, item.content_html])
        assert "root:" not in text  # /etc/passwd never read
        assert len(text) < 100_000  # the billion laughs never expanded
        assert not ACTIVE.search(item.content_html), item.content_html
    assert any(expected in item.title for item in items), [i.title for i in items]


def test_truncated_and_malformed_keep_what_was_recovered(run: Run):
    for path in ("/truncated", "/malformed"):
        result = run.results[path]
        assert isinstance(result, Fetched)
        parsed = parse_feed(result.content, source="s", origin=result.url)
        assert parsed.entries
        assert parsed.warnings  # the problem is recorded on the source


def test_page_html_discovers_its_feeds(run: Run, hostile: str):
    page = run.results["/page.html"]
    assert isinstance(page, Fetched)
    assert feed_links(page.content, page.url) == [hostile + "/feed.atom", hostile + "/feed.rss"]


def test_caching_round_trip_and_user_agent(hostile: str):
    first = fetch(hostile + "/feed.atom", limits=LIMITS)
    assert isinstance(first, Fetched) and first.validators.etag
    again = fetch(hostile + "/feed.atom", first.validators, LIMITS)
    assert isinstance(again, NotModified304)
    state = after_success(
        Politeness(), now=NOW, headers=again.headers, permanent_redirect=None, key="k"
    )
    assert due(state, NOW)  # the server says max-age=0: no floor
    assert isinstance(fetch(hostile + "/bump", limits=LIMITS), Fetched)
    bumped = fetch(hostile + "/feed.atom", first.validators, LIMITS)
    assert isinstance(bumped, Fetched)
    assert bumped.validators.etag != first.validators.etag
    count = len(parse_feed(bumped.content, source="s", origin=bumped.url).entries)
    assert count == len(parse_feed(first.content, source="s", origin=first.url).entries) + 1
    assert isinstance(fetch(hostile + "/feed.atom", bumped.validators, LIMITS), NotModified304)
    stats = fetch(hostile + "/stats", limits=LIMITS)
    assert isinstance(stats, Fetched)
    recent = json.loads(stats.content)
    assert USER_AGENT in json.dumps(recent)


def test_a_permanent_move_is_adopted_on_the_second_fetch(hostile: str):
    state = Politeness()
    for _ in range(2):
        result = fetch(state.url or hostile + "/redirect/301", limits=LIMITS)
        assert isinstance(result, Fetched)
        state = after_success(
            state,
            now=NOW,
            headers=result.headers,
            permanent_redirect=result.permanent_redirect,
            key="k",
        )
    assert state.url == hostile + "/feed.atom"
    temporary = Politeness()
    for _ in range(3):
        result = fetch(hostile + "/redirect/302", limits=LIMITS)
        assert isinstance(result, Fetched)
        temporary = after_success(
            temporary, now=NOW, headers=result.headers, permanent_redirect=None, key="k"
        )
    assert temporary.url is None


VALIDATOR = HOSTILE.parent / "validate_atom.sh"


def test_a_refresh_of_every_endpoint_publishes_the_good_ones_cleanly(hostile: str, tmp_path):
    """The whole pipeline with every endpoint as a source: bounded, the good feeds
    published, and nothing active reaches the feed."""
    from aggregator.cli import main

    sources = "".join(f'[[sources]]\nurl = "{hostile}{path}"\n' for path in ENDPOINTS)
    config = tmp_path / "config.toml"
    config.write_text(f"[fetch]\ntotal_timeout = {TOTAL}\n{sources}", encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    assert main(["refresh", "--quiet", "--config", str(config)]) == 0
    assert time.monotonic() - start < 60
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 300
    feed = (tmp_path / "state" / "feed.atom").read_bytes()
    parsed = feedparser.parse(feed)
    assert parsed.version == "atom10" and not parsed.bozo
    assert len(parsed.entries) >= 5  # the valid feeds' stories, at least
    # Titles may *say* "javascript:" as text; no markup may *do* anything.
    markup = html.unescape(feed.decode("utf-8"))
    assert not re.search(r"<script|<iframe|<object|(href|src)=\"\s*javascript:", markup, re.I)
    assert not re.search(r"<[^>]*\son\w+\s*=", markup, re.I)
    if VALIDATOR.is_file():
        result = subprocess.run(
            ["bash", str(VALIDATOR), "--no-active-content", str(tmp_path / "state" / "feed.atom")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 2:
            assert result.stdout.strip() == "OK", result.stdout + result.stderr
    # A second run leaves alone what asked to be left alone.
    assert main(["refresh", "--quiet", "--config", str(config)]) == 0
