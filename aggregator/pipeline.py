"""``refresh()``: wires the stages together and isolates failures.

For each source: fetch or read -> parse -> normalise -> dedupe -> store, in one
transaction per source. A source that fails for any reason is recorded on its
:class:`SourceResult` and the run goes on; the one broad ``except`` of the
project is here, at that boundary. Then the new items are clustered into
stories and the merged feed is published.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import httpx

from .cluster import Clusterer, IndexEntry, Signature
from .config import Config
from .dedupe import unique
from .errors import AggregatorError, FetchError
from .fetch import Validators, fetch, make_client
from .local import folder_signature, read_folder
from .model import (
    Entry,
    NotModified,
    RefreshReport,
    Source,
    SourceError,
    SourceResult,
    Updated,
)
from .normalize import normalize
from .parse import parse_feed
from .publish import FeedMeta, render, write_atomic
from .store import SourceState, SQLiteStore, StoryRow

__all__ = [
    "Progress",
    "cluster_new_items",
    "feed_id",
    "publish",
    "refresh",
    "refresh_source",
]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, Source], None]
"""Called after each source with (done, total, source)."""

_FEED_ID_KEY = "feed.id"


@dataclass(frozen=True, slots=True)
class _Read:
    entries: tuple[Entry, ...]
    state: SourceState
    warnings: tuple[str, ...]


def refresh(
    config: Config,
    store: SQLiteStore,
    now: datetime,
    *,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> RefreshReport:
    """Refresh every source once, cluster what is new, publish the feed.

    Raises:
        StorageError: the state database failed outside any one source.
        PublishError: the feed could not be written.
    """
    own_client = client is None
    http = client or make_client(config.fetch.timeout)
    results: list[SourceResult] = []
    try:
        for n, source in enumerate(config.sources, 1):
            results.append(refresh_source(config, store, source, now, http))
            if progress:
                progress(n, len(config.sources), source)
    finally:
        if own_client:
            http.close()
    cluster_new_items(config, store)
    stories = publish(config, store, now)
    new = sum(r.value.new for r in results if isinstance(r.value, Updated))
    changed = sum(r.value.changed for r in results if isinstance(r.value, Updated))
    return RefreshReport(tuple(results), stories, config.output.path, new, changed)


def refresh_source(
    config: Config, store: SQLiteStore, source: Source, now: datetime, client: httpx.Client
) -> SourceResult:
    """Refresh one source; never raises for a problem of this source's own."""
    previous = store.source_state(source.key)
    attempt = replace(previous, last_attempt=now)
    try:
        read = _read(config, source, previous, client)
        if read is None:
            store.save_source_state(
                source.key, replace(attempt, status="not-modified", message=None)
            )
            return SourceResult(source, NotModified())
        items = unique(normalize(entry, now) for entry in read.entries)
        message = "; ".join(read.warnings) or None
        state = replace(
            read.state, status="ok", message=message, last_attempt=now, last_success=now
        )
        new, changed = store.update_source(source.key, items, state)
        return SourceResult(source, Updated(len(new), changed, read.warnings))
    except Exception as exc:
        # The one broad except: whatever went wrong stays with this source.
        if not isinstance(exc, AggregatorError):
            log.exception("unexpected error refreshing %s", source.label)
        message = str(exc) if isinstance(exc, AggregatorError) else f"{type(exc).__name__}: {exc}"
        try:
            store.save_source_state(source.key, replace(attempt, status="error", message=message))
        except AggregatorError:
            log.exception("cannot record the failure of %s", source.label)
        return SourceResult(source, SourceError(message))


def _read(
    config: Config, source: Source, previous: SourceState, client: httpx.Client
) -> _Read | None:
    """Fetch or read a source; None when nothing changed since last time."""
    if source.path is not None:
        signature = folder_signature(source.path)
        if signature == previous.etag and previous.status in ("ok", "not-modified"):
            return None
        folder = read_folder(source.path, source.key)
        return _Read(folder.entries, SourceState(etag=signature), folder.warnings)
    assert source.url is not None
    validators = Validators(previous.etag, previous.last_modified)
    if previous.status == "error":
        validators = Validators()  # a failed run may have stored nothing: fetch in full
    fetched = fetch(client, source.url, validators, config.fetch.max_bytes)
    if fetched is None:
        return None
    parsed = parse_feed(
        fetched.content, source=source.key, origin=fetched.url, headers=fetched.headers
    )
    if not parsed.entries and parsed.warnings:
        raise FetchError(source.url, f"feed is broken ({parsed.warnings[0]})")
    entries = tuple(
        replace(e, outlet=source.name) if source.name and e.outlet == parsed.title else e
        for e in parsed.entries
    )
    state = SourceState(
        etag=fetched.validators.etag, last_modified=fetched.validators.last_modified
    )
    return _Read(entries, state, parsed.warnings)


def cluster_new_items(config: Config, store: SQLiteStore) -> int:
    """Put every item not yet in a story into one; returns how many were placed."""
    items = store.unclustered()
    if not items:
        return 0
    settings = config.cluster
    dated = [i.published for i in items if i.published is not None]
    # Only stories within the window of this batch can take its items; an
    # undated item may join a story of any date, so then every story is a candidate.
    since = min(dated) - settings.window if dated and len(dated) == len(items) else None
    clusterer = Clusterer(
        settings,
        entries=map(IndexEntry.from_text, store.index_entries(since)),
        load=lambda story_id: Signature.from_bytes(store.signature(story_id)),
    )
    assignments = clusterer.add_batch(items)
    # A later item may bridge two stories: follow each merge to the survivor.
    survivor = {old: a.story_id for a in assignments for old in a.merged}

    def resolve(story_id: str) -> str:
        while story_id in survivor:
            story_id = survivor[story_id]
        return story_id

    placed = [(a.item_id, resolve(a.story_id)) for a in assignments]
    changed = [s for s in clusterer.changed() if s.story_id not in survivor]
    stored = store.story_rows([*(s.story_id for s in changed), *survivor])
    # A story's date span covers its stored rows (its own and those of the
    # stories merged into it) and its new members.
    dates: dict[str, list[datetime]] = {s.story_id: [] for s in changed}
    for row in stored.values():
        dates[resolve(row.id)] += [row.first, row.last]
    by_id = {i.id: i for i in items}
    for item_id, story_id in placed:
        dates[story_id] += [by_id[item_id].date, by_id[item_id].last_modified]
    rows = [_story_row(s, dates[s.story_id], settings.index_keys) for s in changed]
    store.save_clusters(placed, rows, [(old, resolve(old)) for old in survivor])
    return len(placed)


def _story_row(signature: Signature, dates: list[datetime], index_keys: int) -> StoryRow:
    if signature.lead is None:  # the clusterer elects a lead as each member joins
        raise AssertionError(f"story {signature.story_id} has no lead")
    return StoryRow(
        id=signature.story_id,
        lead_id=signature.lead,
        first=min(dates),
        last=max(dates),
        signature=signature.to_bytes(),
        entry=IndexEntry.of(signature, index_keys).to_text(),
    )


def feed_id(store: SQLiteStore, config: Config) -> str:
    """The feed's Atom id: configured, or made once and kept in the state."""
    if config.output.feed_id:
        return config.output.feed_id
    stored = store.meta(_FEED_ID_KEY)
    if stored:
        return stored.decode()
    made = uuid.uuid4().urn
    store.set_meta(_FEED_ID_KEY, made.encode())
    return made


def publish(config: Config, store: SQLiteStore, now: datetime) -> int:
    """Write the merged feed; returns the number of stories in it.

    Raises:
        PublishError: the output file cannot be written.
    """
    output = config.output
    since = now - output.max_age if output.max_age else None
    stories = store.stories(output.limit, since)
    base = output.base_url
    meta = FeedMeta(
        id=feed_id(store, config),
        title=output.title,
        self_url=f"{base}/feed.atom" if base else output.path.as_uri(),
        alternate_url=base,
    )
    write_atomic(output.path, render(stories, meta, now, limit=output.limit))
    return len(stories)
