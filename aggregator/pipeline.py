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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from .cluster import ClusterSettings
from .config import Config
from .errors import AggregatorError, FetchError
from .fetch import Fetched, Limits, NotModified304, Outcome, Request, Validators, fetch_all
from .ingest import Body, Ingested, ingest, ingest_feed
from .intake import Intake
from .local import folder_signature, read_folder
from .model import (
    Item,
    NotModified,
    RefreshReport,
    Skipped,
    Source,
    SourceError,
    SourceResult,
    Story,
    Updated,
)
from .normalize import warm_up_language_model
from .politeness import Politeness, after_failure, after_success, due
from .publish import FeedMeta, SharedEntries, fsync_dir, render, write_atomic
from .store import SourceState, SQLiteStore
from .stories import ClusterCache, cluster_new_items, tag_stories
from .subscribe import all_sources
from .tagging import BackgroundTagger
from .topics import term_of
from .workers import WorkerPool

__all__ = [
    "MIN_TOPIC_STORIES",
    "TOPICS_DIR",
    "Outcome",
    "Progress",
    "feed_id",
    "limits",
    "publish",
    "refresh",
    "refresh_source",
]

log = logging.getLogger(__name__)

TOPICS_DIR = "topics"  # beside the merged feed: <output dir>/topics/<term>.atom
# A tag on one story is a tag; a topic, with a feed of its own, is what two or
# more stories are about (or what the user listed in [[topics]]). On the dev
# corpus 41 stories carry 206 tags: a feed for each was 90% of a refresh's
# publishing time, and 200 files nobody subscribes to (bench/topics.py).
MIN_TOPIC_STORIES = 2

Progress = Callable[[int, int, Source], None]
"""Called after each source with (done, total, source)."""

_FEED_ID_KEY = "feed.id"


@dataclass(frozen=True, slots=True)
class _Read:
    ingested: Ingested
    validators: Validators


def refresh(
    config: Config,
    store: SQLiteStore,
    now: datetime,
    *,
    progress: Progress | None = None,
    sources: Sequence[Source] | None = None,
    base_url: str | None = None,
    cache: ClusterCache | None = None,
) -> RefreshReport:
    """Refresh every source (or just *sources*) once, cluster what is new, publish.

    Every source means those of ``config.toml`` and those added from the
    command line (``aggregator add``, ``import-opml``).

    Feed URLs are fetched first, all at once within the ``[fetch]`` limits;
    then each source is parsed and stored in turn. A source its server asked
    us to leave alone for now (backoff, Retry-After, max-age, 410 Gone) is
    skipped. *base_url* is where the feed is served when ``[output] base_url``
    does not say (the daemon passes its own address); *cache* keeps the
    clusterer in memory between calls (the daemon passes one).

    Raises:
        StorageError: the state database failed outside any one source.
        PublishError: the feed could not be written.
    """
    todo = all_sources(config, store) if sources is None else tuple(sources)
    states = {s.key: store.source_state(s.key) for s in todo}
    due_urls = [s for s in todo if s.url and due(states[s.key].politeness, now)]
    requests = [_request(s, states[s.key]) for s in due_urls]
    # A feed fetched in full will likely be parsed (a conditional fetch is mostly a 304).
    full = sum(r.validators == Validators() for r in requests)
    fetching = {r.key for r in requests}

    def store_one(
        source: Source, outcome: Outcome | None, pending: Future[Ingested] | None
    ) -> SourceResult:
        if source.url is not None and outcome is None:
            return SourceResult(source, Skipped(_why_not(states[source.key], now)))
        state = states[source.key]
        return refresh_source(config, store, source, now, outcome, pending, state)

    # Workers parse, normalise and extract features while feeds download,
    # then go before clustering: they hold the models' memory (~200 MB in all).
    with WorkerPool.for_feeds(full) or nullcontext() as pool:
        if pool is not None:
            log.info("refresh: reading %d feeds in %d worker processes", full, pool.workers)
        elif full:
            warm_up_language_model()  # while we wait on the network
        submit = partial(_submit, pool, now=now, settings=config.cluster) if pool else None
        intake = Intake(todo, fetching, store_one, submit, progress)
        # With workers, each source is stored as soon as it is ready (intake.py).
        arrived, admit = (intake, intake.admit) if pool else (None, None)
        fetched = fetch_all(requests, limits(config), arrived, admit) if requests else {}
        results = intake.finish(fetched)
        big = pool is not None
    if big:  # each batch is saved and tagged while the next clusters (tagging.py)
        with BackgroundTagger(config, store) as tagger:
            tagger.finish(cluster_new_items(config, store, cache, tagger).stories)
    else:
        tag_stories(config, store, cluster_new_items(config, store, cache).stories)
    stories = publish(config, store, now, base_url=base_url)
    new = sum(r.value.new for r in results if isinstance(r.value, Updated))
    changed = sum(r.value.changed for r in results if isinstance(r.value, Updated))
    return RefreshReport(tuple(results), stories, config.output.path, new, changed)


def _submit(
    pool: WorkerPool, source: Source, body: Body, *, now: datetime, settings: ClusterSettings
) -> Future[Ingested]:
    return pool.submit(ingest_feed, source, body, now, settings)


def limits(config: Config) -> Limits:
    f = config.fetch
    return Limits(
        concurrency=f.concurrency,
        per_host=f.per_host,
        connect=f.connect_timeout,
        read=f.timeout,
        total=f.total_timeout,
        max_bytes=f.max_bytes,
        max_redirects=f.max_redirects,
    )


def _request(source: Source, state: SourceState) -> Request:
    assert source.url is not None
    validators = Validators(state.etag, state.last_modified)
    if state.status == "error":
        validators = Validators()  # a failed run may have stored nothing: fetch in full
    return Request(source.key, state.politeness.url or source.url, validators)


def _why_not(state: SourceState, now: datetime) -> str:
    p = state.politeness
    if p.gone:
        return "gone: the server answered 410 Gone; remove it from the config"
    when = p.next_fetch.strftime("%Y-%m-%d %H:%M UTC") if p.next_fetch else "later"
    reason = f"after {p.failures} failure(s)" if p.failures else "as the server asked"
    return f"not fetched before {when}, {reason}"


def refresh_source(
    config: Config,
    store: SQLiteStore,
    source: Source,
    now: datetime,
    fetched: Outcome | None = None,
    pending: Future[Ingested] | None = None,
    previous: SourceState | None = None,
) -> SourceResult:
    """Refresh one source; never raises for a problem of this source's own.

    For a feed URL, *fetched* is what :func:`fetch_all` brought back (fetched
    now if not given), and *pending* its ingest by a worker process, if one
    has it; a folder is read here. *previous* is the source's stored state,
    when the caller has just read it.
    """
    if previous is None:
        previous = store.source_state(source.key)
    attempt = replace(previous, last_attempt=now)
    try:
        if source.url is not None and fetched is None:
            request = _request(source, previous)
            fetched = fetch_all([request], limits(config))[source.key]
        if fetched is not None:
            attempt = replace(attempt, politeness=_after(previous, now, fetched, source))
        if isinstance(fetched, FetchError):
            raise fetched
        read = _read(config, source, previous, now, fetched, pending)
        if read is None:
            store.save_source_state(
                source.key, replace(attempt, status="not-modified", message=None)
            )
            return SourceResult(source, NotModified())
        ingested = read.ingested
        message = "; ".join(ingested.warnings) or None
        state = replace(
            attempt,
            etag=read.validators.etag,
            last_modified=read.validators.last_modified,
            status="ok",
            message=message,
            last_success=now,
        )
        new, changed = store.update_source(source.key, ingested.items, state, ingested.features)
        return SourceResult(source, Updated(len(new), changed, ingested.warnings))
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


def _after(previous: SourceState, now: datetime, outcome: Outcome, source: Source) -> Politeness:
    """The source's politeness after this fetch (backoff, floors, redirects, 410)."""
    state = previous.politeness
    if isinstance(outcome, FetchError):
        return after_failure(state, now=now, error=outcome, key=source.key)
    return after_success(
        state,
        now=now,
        headers=outcome.headers,
        permanent_redirect=outcome.permanent_redirect,
        key=source.key,
    )


def _read(
    config: Config,
    source: Source,
    previous: SourceState,
    now: datetime,
    fetched: Outcome | None,
    pending: Future[Ingested] | None,
) -> _Read | None:
    """Ingest what was fetched, or read a folder; None when nothing changed."""
    if source.path is not None:
        signature = folder_signature(source.path)
        if signature == previous.etag and previous.status in ("ok", "not-modified"):
            return None
        folder = read_folder(source.path, source.key)
        ingested = ingest(folder.entries, now, config.cluster, folder.warnings)
        return _Read(ingested, Validators(etag=signature))
    assert source.url is not None and fetched is not None
    if isinstance(fetched, NotModified304):
        return None
    assert isinstance(fetched, Fetched)
    if pending is not None:
        try:
            return _Read(pending.result(), fetched.validators)
        except BrokenProcessPool:  # a worker died: its feeds are ingested here instead
            log.warning("an ingest worker stopped; reading %s here", source.label)
    body = Body(fetched.content, fetched.url, fetched.headers)
    return _Read(ingest_feed(source, body, now, config.cluster), fetched.validators)


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


def publish(
    config: Config, store: SQLiteStore, now: datetime, *, base_url: str | None = None
) -> int:
    """Write the merged feed, and a feed per topic beside it in ``topics/``;
    returns the number of stories in the merged feed.

    With a public base URL (``[output] base_url``, else *base_url*), the
    feeds' ``rel="self"`` is under it and items that have no URL of their
    own (article files) link to ``<base>/items/<id>``.

    Raises:
        PublishError: an output file cannot be written.
    """
    output = config.output
    since = now - output.max_age if output.max_age else None
    base = output.base_url or (base_url.rstrip("/") if base_url else None)
    include = tuple(term_of(name) for name in output.include_topics)
    exclude = tuple(term_of(name) for name in output.exclude_topics)
    stories = store.stories(output.limit, since, include=include, exclude=exclude)
    # Every story of the window is in hand when the merged feed is unfiltered
    # and not full: each topic feed is then a part of it, not another query.
    whole = not include and not exclude and store.story_count(since) <= output.limit
    main_id = feed_id(store, config)
    shared: SharedEntries = {}  # each story's entry, built once for every feed

    def item_url(item: Item) -> str | None:
        return item.url or (f"{base}/items/{item.id}" if base else None)

    def feed(meta: FeedMeta, chosen: Sequence[Story]) -> bytes:
        return render(chosen, meta, now, limit=output.limit, item_url=item_url, shared=shared)

    main = FeedMeta(main_id, output.title, _self(base, output.path, "feed.atom"))
    write_atomic(output.path, feed(main, stories))
    _publish_topics(config, store, stories, stories if whole else None, since, main_id, base, feed)
    return len(stories)


def _publish_topics(
    config: Config,
    store: SQLiteStore,
    stories: Sequence[Story],
    whole: Sequence[Story] | None,
    since: datetime | None,
    main_id: str,
    base: str | None,
    feed: Callable[[FeedMeta, Sequence[Story]], bytes],
) -> None:
    """A feed per topic of the merged feed's stories that more than one story
    shares, and per topic of the user's taxonomy; stale topic feeds go.
    *whole* is every story of the window, when the caller has them all."""
    folder = config.output.path.parent / TOPICS_DIR
    counts = {topic.term: n for topic, n in store.topic_counts()}
    chosen = {term_of(rule.name) for rule in config.topics}
    topics = {
        t.term: t
        for story in stories
        for t in story.topics
        if t.term in chosen or counts.get(t.term, 0) >= MIN_TOPIC_STORIES
    }
    written = False
    for term, topic in sorted(topics.items()):
        path = folder / f"{term}.atom"
        meta = FeedMeta(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"{main_id}/topics/{term}").urn,
            title=f"{config.output.title}: {topic.label}",
            self_url=_self(base, path, f"{TOPICS_DIR}/{term}.atom"),
        )
        if whole is not None:
            tagged = [s for s in whole if any(t.term == term for t in s.topics)]
        else:
            tagged = store.stories(config.output.limit, since, include=(term,))
        # One fsync of the folder for all its renames, not one a file.
        written |= write_atomic(path, feed(meta, tagged), sync_dir=False)
    if written:
        fsync_dir(folder)
    if folder.is_dir():
        for stale in folder.glob("*.atom"):
            if stale.stem not in topics:
                stale.unlink(missing_ok=True)


def _self(base: str | None, path: Path, relative: str) -> str:
    return f"{base}/{relative}" if base else path.as_uri()
