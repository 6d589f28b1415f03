"""pipeline.refresh end to end: real HTTP server, real folders, real SQLite, real Atom."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from aggregator.config import load_config
from aggregator.fetch import Request, fetch_all
from aggregator.ingest import Ingested
from aggregator.model import NotModified, SourceError, Updated
from aggregator.pipeline import refresh, refresh_source
from aggregator.store import open_store
from aggregator.subscribe import all_sources
from aggregator.workers import WorkerPool
from tests.conftest import SHARED, FeedServer, Route, rss, write_config

NOW = datetime(2024, 12, 1, 12, tzinfo=UTC)
VALIDATOR = SHARED / "tools" / "validate_atom.sh"
DATA = Path(__file__).parent / "data" / "feeds"

WIRE = rss(
    "Example Wire",
    [
        {
            "title": "Storm closes coastal highway",
            "link": "https://wire.example.org/storm",
            "guid": "w1",
            "pubDate": "Sat, 30 Nov 2024 09:00:00 GMT",
            "description": "A winter storm closed the coastal highway near Port Alder on Saturday.",
        },
        {
            "title": "Library reopens after renovation",
            "link": "https://wire.example.org/library",
            "guid": "w2",
            "pubDate": "Fri, 29 Nov 2024 15:00:00 GMT",
            "description": "The central library reopened with a new reading room and longer hours.",
        },
    ],
)


def run(config_path: Path, now: datetime = NOW):
    config = load_config(config_path)
    store = open_store(config.database)
    try:
        return config, refresh(config, store, now)
    finally:
        store.close()


def read_feed(path: Path):
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.version == "atom10"
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def validate(path: Path, *flags: str) -> None:
    if not VALIDATOR.exists():
        return
    result = subprocess.run(
        ["bash", str(VALIDATOR), *flags, str(path)], capture_output=True, text=True, timeout=300
    )
    if result.returncode == 2:
        pytest.skip(f"the Atom validator cannot run here: {result.stdout}{result.stderr}")
    assert result.stdout.strip() == "OK", result.stdout + result.stderr


@pytest.fixture
def sources(tmp_path, server: FeedServer, closed_port_url):
    server.routes["/wire.xml"] = Route(WIRE, etag='"w-1"')
    folder = tmp_path / "feeds"
    folder.mkdir()
    shutil.copy(DATA / "atom10.atom", folder)
    (folder / "note.txt").write_text(
        "Harbour festival draws record crowds\n\nPORT ALDER — Organisers counted more than "
        "40,000 visitors at the harbour festival on Sunday, a record for the event.\n",
        encoding="utf-8",
    )
    return write_config(
        tmp_path,
        f'[[sources]]\nurl = "{server.url("/wire.xml")}"\nname = "Wire"\n'
        f'[[sources]]\nurl = "{closed_port_url}"\nname = "Dead"\n'
        f'[[sources]]\npath = "feeds"\n',
    )


def test_refresh_publishes_a_valid_feed_despite_a_dead_source(sources, server):
    config, report = run(sources)
    wire, dead, folder = (r.value for r in report.results)
    assert isinstance(wire, Updated) and wire.new == 2
    assert isinstance(dead, SourceError) and "127.0.0.1" in dead.message
    assert isinstance(folder, Updated) and folder.new == 2
    feed = read_feed(config.output.path)
    titles = {e.title for e in feed.entries}
    assert titles == {
        "Storm closes coastal highway",
        "Library reopens after renovation",
        "Council approves budget",
        "Harbour festival draws record crowds",
    }
    assert len(feed.entries) == report.stories
    validate(config.output.path)
    validate(config.output.path, "--no-active-content")


def test_second_refresh_adds_nothing_and_keeps_ids(sources, server):
    config, _ = run(sources)
    ids = [e.id for e in read_feed(config.output.path).entries]
    config, second = run(sources, NOW + timedelta(hours=1))
    wire, _, folder = (r.value for r in second.results)
    assert isinstance(wire, NotModified)  # the ETag came back and got a 304
    assert isinstance(folder, NotModified)  # no file changed
    assert second.new == 0 and second.changed == 0
    again = [e.id for e in read_feed(config.output.path).entries]
    assert again == ids and len(set(again)) == len(again)


def test_an_edited_item_updates_in_place(sources, server, tmp_path):
    config, _ = run(sources)
    server.routes["/wire.xml"] = Route(
        WIRE.replace(b"closed the coastal highway", b"shut the coastal highway for hours"),
        etag='"w-2"',
    )
    _, report = run(sources, NOW + timedelta(hours=1))
    assert isinstance(report.results[0].value, Updated)
    assert report.results[0].value.changed == 1 and report.new == 0
    feed = read_feed(config.output.path)
    storm = [e for e in feed.entries if e.title == "Storm closes coastal highway"]
    assert len(storm) == 1 and "for hours" in storm[0].summary


def test_a_broken_feed_keeps_what_was_stored(sources, server):
    config, _ = run(sources)
    server.routes["/wire.xml"] = Route(b"<html>maintenance</html>")
    _, report = run(sources, NOW + timedelta(hours=1))
    assert isinstance(report.results[0].value, SourceError)
    titles = {e.title for e in read_feed(config.output.path).entries}
    assert "Storm closes coastal highway" in titles


def test_syndicated_copy_is_stored_once(tmp_path, server):
    server.routes["/a.xml"] = Route(WIRE)
    copy = WIRE.replace(b"wire.example.org", b"mirror.example.net").replace(
        b"Example Wire", b"Mirror"
    )
    server.routes["/b.xml"] = Route(copy)
    path = write_config(
        tmp_path,
        f'[[sources]]\nurl = "{server.url("/a.xml")}"\n'
        f'[[sources]]\nurl = "{server.url("/b.xml")}"\n',
    )
    config, report = run(path)
    assert [r.value.new for r in report.results] == [2, 0]
    assert len(read_feed(config.output.path).entries) == 2


def test_old_news_flows_through_and_max_age_is_opt_in(tmp_path, server):
    old = WIRE.replace(b"2024", b"2005")
    server.routes["/old.xml"] = Route(old)
    path = write_config(tmp_path, f'[[sources]]\nurl = "{server.url("/old.xml")}"\n')
    _, report = run(path)
    assert report.stories == 2
    aged = write_config(
        tmp_path, f'[[sources]]\nurl = "{server.url("/old.xml")}"\n', "max_age_days = 30"
    )
    _, report = run(aged, NOW + timedelta(minutes=1))
    assert report.stories == 0


def test_unwritable_output_is_an_error(tmp_path, server):
    from aggregator.errors import PublishError

    server.routes["/a.xml"] = Route(WIRE)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    path = write_config(tmp_path, f'[[sources]]\nurl = "{server.url("/a.xml")}"\n')
    path.write_text(
        path.read_text().replace('path = "state/feed.atom"', 'path = "blocker/feed.atom"')
    )
    with pytest.raises(PublishError, match="blocker"):
        run(path)


def test_topic_feeds_are_written_valid_and_filters_apply(tmp_path, server):
    server.routes["/a.xml"] = Route(WIRE)
    source = f'[[sources]]\nurl = "{server.url("/a.xml")}"\n'
    rules = '[[topics]]\nname = "Weather"\naliases = ["storm", "snow"]\n'
    config, _ = run(write_config(tmp_path, source + rules))
    topics = config.output.path.parent / "topics"
    weather = read_feed(topics / "weather.atom")
    assert [e.title for e in weather.entries] == ["Storm closes coastal highway"]
    assert weather.feed.title == "Test feed: Weather"
    assert {t.term for t in weather.entries[0].tags} >= {"weather"}
    store = open_store(config.database)
    counts = {topic.term: n for topic, n in store.topic_counts()}
    store.close()
    assert any(n == 1 for n in counts.values())  # tags of one story alone...
    for path in sorted(topics.glob("*.atom")):
        # ...get no feed: only the user's topics and those stories share do.
        assert path.stem == "weather" or counts[path.stem] >= 2
        read_feed(path)
        validate(path)
    # The merged feed can leave a topic out, or keep only one.
    config, _ = run(write_config(tmp_path, source + rules, 'exclude_topics = ["Weather"]'))
    titles = [e.title for e in read_feed(config.output.path).entries]
    assert titles == ["Library reopens after renovation"]
    config, _ = run(write_config(tmp_path, source + rules, 'include_topics = ["Weather"]'))
    titles = [e.title for e in read_feed(config.output.path).entries]
    assert titles == ["Storm closes coastal highway"]


def test_topic_feeds_hold_their_stories_whatever_the_merged_feed_holds(tmp_path, server):
    server.routes["/a.xml"] = Route(WIRE)
    source = f'[[sources]]\nurl = "{server.url("/a.xml")}"\n'
    rules = (
        '[[topics]]\nname = "Port Alder"\naliases = ["storm", "library"]\n'
        '[[topics]]\nname = "Weather"\naliases = ["storm"]\n'
    )
    for output, expected in [
        ("", 2),  # the merged feed holds every story: the topic feed is a part of it
        ("limit = 1", 1),  # a feed of one entry, whichever it is
        ('exclude_topics = ["Weather"]', 2),  # the storm is left out of the merged feed only
    ]:
        config, _ = run(write_config(tmp_path, source + rules, output))
        topic = read_feed(config.output.path.parent / "topics" / "port-alder.atom")
        assert len(topic.entries) == expected, output
        assert topic.entries[0].title == "Storm closes coastal highway", output


def test_a_feed_without_a_language_gets_one_for_all_its_items(tmp_path, server):
    server.routes["/a.xml"] = Route(WIRE)
    config, _ = run(write_config(tmp_path, f'[[sources]]\nurl = "{server.url("/a.xml")}"\n'))
    store = open_store(config.database)
    try:
        assert {m.language for s in store.stories(10) for m in s.members} == {"en"}
    finally:
        store.close()


def _many_feeds(tmp_path, server, name):
    """25 feeds of two items, one broken and one a syndicated copy, configured
    in a folder of their own."""
    sources = []
    for n in range(25):
        body = WIRE.replace(b"wire.example.org", f"outlet{n}.example.org".encode())
        body = body.replace(b"Example Wire", f"Outlet {n}".encode())
        body = body.replace(b"Port Alder", f"Port Alder {n}".encode())
        if n == 7:
            body = b"<html>maintenance</html>"
        if n == 9:
            body = server.routes["/many/0.xml"].body  # syndicates feed 0
        server.routes[f"/many/{n}.xml"] = Route(body)
        sources.append(f'[[sources]]\nurl = "{server.url(f"/many/{n}.xml")}"\n')
    folder = tmp_path / name
    folder.mkdir()
    return write_config(folder, "".join(sources))


def _outcome(config_path):
    config, report = run(config_path)
    values = [r.value for r in report.results]
    summary = [
        (type(v).__name__, getattr(v, "new", None), getattr(v, "message", None)) for v in values
    ]
    feed = read_feed(config.output.path)
    entries = [
        (
            e.id,
            e.title,
            tuple(sorted(link.href for link in e.links)),
            tuple(t.term for t in e.get("tags", [])),
        )
        for e in feed.entries
    ]
    return summary, entries


def test_a_refresh_ingested_by_workers_is_the_same_as_one_ingested_here(
    tmp_path, server, monkeypatch
):
    pools = []
    real = WorkerPool.for_feeds

    def counted(feeds):
        pool = real(feeds)
        pools.append(pool)
        return pool

    monkeypatch.setattr(WorkerPool, "for_feeds", counted)
    monkeypatch.setattr("aggregator.workers.MIN_POOLED_FEEDS", 10)
    pooled = _outcome(_many_feeds(tmp_path, server, "pooled"))
    monkeypatch.setattr("aggregator.workers.MIN_POOLED_FEEDS", 1000)
    alone = _outcome(_many_feeds(tmp_path, server, "alone"))
    assert pools[0] is not None and pools[1] is None  # the first used workers, the second not
    assert pooled == alone
    summary, entries = pooled
    assert summary[7][0] == "SourceError" and "not a feed" in summary[7][2]
    assert summary[9] == ("Updated", 0, None)  # the wire's copy, stored once
    assert entries and max(len(links) for _, _, links, _ in entries) > 10  # merged across outlets
    assert any(tags for *_, tags in entries)  # and tagged


def test_a_feed_whose_worker_died_is_ingested_here(sources, server):
    config = load_config(sources)
    store = open_store(config.database)
    try:
        source = next(s for s in all_sources(config, store) if s.url)
        fetched = fetch_all([Request(source.key, source.url)])[source.key]
        dead: Future[Ingested] = Future()
        dead.set_exception(BrokenProcessPool("a worker died"))
        result = refresh_source(config, store, source, NOW, fetched, dead)
    finally:
        store.close()
    assert isinstance(result.value, Updated) and result.value.new == 2


def test_a_refresh_whose_workers_are_killed_loses_no_feed(tmp_path, server, monkeypatch):
    import os
    import signal

    import aggregator.pipeline

    alone = _outcome(_many_feeds(tmp_path, server, "alone"))
    real = aggregator.pipeline._submit
    handed = []

    def submit_then_kill(pool, source, body, **kwargs):
        handed.append(source.key)
        pending = real(pool, source, body, **kwargs)
        if len(handed) == 5:  # mid-refresh, every worker dies
            for pid in list(pool._pool._processes):
                os.kill(pid, signal.SIGKILL)
        return pending

    monkeypatch.setattr(aggregator.pipeline, "_submit", submit_then_kill)
    monkeypatch.setattr("aggregator.workers.MIN_POOLED_FEEDS", 10)
    assert _outcome(_many_feeds(tmp_path, server, "killed")) == alone
    assert len(handed) >= 5
