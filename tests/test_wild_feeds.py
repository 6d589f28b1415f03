"""Real-world feed files (../shared/corpus/wild-feeds/tests): no crash, nothing lost.

``parse_feed`` must return entries or raise ParseError on every file, and keep
every entry a bare ``feedparser.parse(data)`` reads (filtered as parse.py
filters empty fragments). A sample is also served over HTTP and fetched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from aggregator.config import load_config
from aggregator.errors import ParseError
from aggregator.fetch import Fetched, Limits, Request, fetch_all
from aggregator.parse import parse_feed
from aggregator.pipeline import refresh
from aggregator.store import open_store
from aggregator.workers import WorkerPool
from tests.conftest import FeedServer, Route, write_config

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "wild-feeds" / "tests"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file()) if CORPUS.is_dir() else []
IDS = [str(p.relative_to(CORPUS)) for p in FILES]
SAMPLE = 30
NOW = datetime(2024, 12, 1, 12, tzinfo=UTC)

pytestmark = pytest.mark.skipif(not FILES, reason=f"{CORPUS} is absent")


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _readable(entry: Any) -> bool:
    """What parse.py keeps: an entry with a title, link, summary or content."""
    content = entry.get("content") or []
    body = content[0].get("value") if content else None
    return any(
        _text(v) for v in (entry.get("title"), entry.get("link"), entry.get("summary"), body)
    )


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_parse_keeps_every_entry_feedparser_reads(path: Path):
    data = path.read_bytes()
    bare = [e for e in feedparser.parse(data).entries if _readable(e)]
    titled = [e for e in bare if _text(e.get("title")) or _text(e.get("link"))]
    try:
        entries = parse_feed(data, source="wild", origin="http://example.org/feed.xml").entries
    except ParseError:
        entries = ()
    assert len(entries) == len(bare)
    assert len(entries) >= len(titled)


def test_a_sample_served_over_http_is_fetched_intact(server: FeedServer):
    step = max(len(FILES) // SAMPLE, 1)
    sample = FILES[::step][:SAMPLE]
    for n, path in enumerate(sample):
        server.routes[f"/{n}.xml"] = Route(
            path.read_bytes(),
            gzip=n % 2 == 1,
            headers={"Content-Type": "application/xml"},
        )
    requests = [Request(str(p), server.url(f"/{n}.xml")) for n, p in enumerate(sample)]
    results = fetch_all(requests, Limits(total=10))
    assert len(results) == len(sample) == SAMPLE
    for path in sample:
        result = results[str(path)]
        assert isinstance(result, Fetched), result
        assert result.content == path.read_bytes()
        try:
            parse_feed(result.content, source="wild", origin=result.url, headers=result.headers)
        except ParseError as exc:
            assert result.url in str(exc)


def _refresh_all(tmp_path: Path, server: FeedServer, name: str):
    folder = tmp_path / name
    folder.mkdir()
    sources = "".join(
        f'[[sources]]\nurl = "{server.url(f"/wild/{n}")}"\n' for n in range(len(FILES))
    )
    config = load_config(write_config(folder, sources))
    store = open_store(config.database)
    try:
        report = refresh(config, store, NOW)
        results = [
            (
                type(r.value).__name__,
                getattr(r.value, "new", None),
                getattr(r.value, "message", None),
            )
            for r in report.results
        ]
        stories = [(s.id, tuple(m.id for m in s.members), s.topics) for s in store.stories(10_000)]
    finally:
        store.close()
    return results, stories, config.output.path.read_bytes().count(b"<entry>")


def test_every_wild_feed_refreshed_by_workers_comes_out_as_refreshed_here(
    tmp_path, server: FeedServer, monkeypatch
):
    # The whole corpus through the pipeline, once parsed by the worker pool and
    # once in this process: every outcome, item and story the same.
    for n, path in enumerate(FILES):
        server.routes[f"/wild/{n}"] = Route(path.read_bytes())
    pools = []
    real = WorkerPool.for_feeds
    monkeypatch.setattr(
        WorkerPool, "for_feeds", lambda feeds: pools.append(real(feeds)) or pools[-1]
    )
    pooled = _refresh_all(tmp_path, server, "pooled")
    assert pools[0] is not None
    monkeypatch.setattr("aggregator.workers.MIN_POOLED_FEEDS", 10**6)
    alone = _refresh_all(tmp_path, server, "alone")
    assert pooled == alone
    results, stories, entries = pooled
    assert sum(1 for kind, _, _ in results if kind == "Updated") > len(FILES) // 2
    assert stories and entries == min(len(stories), 200)
