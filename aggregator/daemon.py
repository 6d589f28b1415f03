"""[I/O] ``aggregator run``: scheduled refreshes, folder watching and the server, one service.

::

    APScheduler 3.x (UTC): one interval job per source ──┐ each only names its
    watchfiles: a folder source's files changed ─────────┤ source to the worker
    start: every source ─────────────────────────────────┘
                          ▼
    the worker thread: takes every source named so far and has the refresh
    process run ``refresh()`` on them (store, cluster, publish atomically).
    One worker, one refresh process: the only writer of the database, so a
    source is never refreshed twice at once.

    the server thread (server.py) serves the published files.

The refresh process is started when work comes and exits after ``IDLE_EXIT``
seconds without any: the language and word-frequency models it loads take
some 120 MB, which an idle daemon gives back (issue 6: idle under 150 MB). Its
log records come back over the pipe and are logged here.

SIGTERM or SIGINT: the watcher and the scheduler stop, the refresh in hand
stops after its current source (or is killed after ``STOP_GRACE`` seconds:
SQLite rolls an open transaction back, and the feed file is only ever replaced
whole, as after a kill -9), the server closes, exit status 0.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from watchfiles import Change, watch

from .config import Config
from .errors import AggregatorError
from .local import ARTICLE_SUFFIXES, FEED_SUFFIXES
from .model import NotModified, RefreshReport, Skipped, Source, SourceError, SourceResult, Updated
from .refresh_process import IDLE_EXIT, STOP_GRACE, Refresher
from .server import FeedServer, site_for, start_server
from .store import open_store
from .subscribe import all_sources

__all__ = ["IDLE_EXIT", "MAX_JITTER", "STOP_GRACE", "SUBSCRIPTIONS_POLL", "Daemon", "run"]

log = logging.getLogger(__name__)

# Seconds either side of each scheduled run: a tenth of the interval, at most this.
MAX_JITTER = 300.0
# Seconds between looks at the subscriptions in the state, so that a feed
# added (or removed) with ``aggregator add`` while the daemon runs is picked
# up without a restart. A look is one small query: idle cost stays ~0.1%.
SUBSCRIPTIONS_POLL = 5.0
# watchfiles yields a burst once no change came for STEP ms, or after DEBOUNCE ms at
# the latest, so a folder change reaches the worker within about a second.
WATCH_DEBOUNCE_MS = 1000
WATCH_STEP_MS = 200
_WATCHED = FEED_SUFFIXES | ARTICLE_SUFFIXES
_STATES = ("ok", "not-modified", "skipped", "error", "pending")


class Daemon:
    """The running parts: server, worker thread and its refresh process, scheduler, watcher.

    ``start()``, then ``wait()`` until ``request_stop()`` (safe in a signal
    handler) or a failure; then ``stop()``, which is safe after a failed start.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base_url = config.output.base_url or ""
        self.failed = False
        self._stop_requested = False  # a plain flag: a signal handler must not take locks
        self._stopping = threading.Event()
        self._lock = threading.Condition()
        self._pending: set[str] = set()
        self.sources = config.sources  # and, from start(), the subscriptions in the state
        self._sources = {s.key: "pending" for s in config.sources}
        self._failing: dict[str, str] = {}
        started = datetime.now(UTC).isoformat()
        self._health: dict[str, Any] = {"started": started, "last_refresh": None, "stories": None}
        self._refresher = Refresher(config)
        self._server: FeedServer | None = None
        self._threads: list[threading.Thread] = []
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        """Listen; start the worker (refreshing every source first), the scheduler, the watcher.

        Raises:
            AggregatorError: the server cannot listen or the database cannot be opened.
        """
        store = open_store(self.config.database)  # fail here, on the CLI's one error line
        try:
            self.sources = all_sources(self.config, store)
            for source in self.sources:
                state = store.source_state(source.key)
                self._sources[source.key] = state.status or "pending"
                if state.status == "error":
                    self._failing[source.label] = state.message or "error"
        finally:
            store.close()
        site = site_for(self.config, self.health, self.sources)
        server = self._server = start_server(self.config.server.host, self.config.server.port, site)
        self.base_url = self.config.output.base_url or server.url
        log.info("daemon: serving %s/feed.atom", server.url)
        if self.config.server.host in ("0.0.0.0", "::") and not self.config.output.base_url:
            log.warning("daemon: listening on every interface; set [output] base_url for links")
        self._thread(self._work, "refresh")
        self._scheduler = self._schedule()
        folders = self._folders()
        if folders:
            self._thread(lambda: self._watch(folders), "watch")
        log.info("daemon: started: %d source(s), %d watched", len(self._sources), len(folders))

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def request(self, keys: Iterable[str]) -> None:
        """Ask the worker to refresh these sources (once each, however often asked)."""
        with self._lock:
            self._pending.update(keys)
            self._lock.notify()

    def request_stop(self) -> None:
        """Make ``wait()`` return; safe to call from a signal handler."""
        self._stop_requested = True

    def wait(self) -> None:
        """Block until ``request_stop()`` or a failure of the worker."""
        while not self._stop_requested and not self._stopping.is_set():
            self._stopping.wait(0.5)  # a timeout: a signal handler only sets a flag

    def stop(self) -> None:
        """Stop everything; the refresh in hand gets ``STOP_GRACE`` seconds."""
        began = time.monotonic()
        self._stopping.set()
        self._refresher.terminate()
        with self._lock:
            self._lock.notify()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=max(0.1, began + STOP_GRACE - time.monotonic()))
        if self._refresher.kill():
            log.warning("daemon: killed the refresh in progress; the next start redoes it")
            for thread in self._threads:
                thread.join(timeout=1)
        log.info("daemon: stopped in %.1f s", time.monotonic() - began)

    def health(self) -> dict[str, Any]:
        """The details /healthz reports."""
        with self._lock:
            counts = dict.fromkeys(_STATES, 0)
            for state in self._sources.values():
                counts[state] = counts.get(state, 0) + 1
            sources = {"total": len(self._sources), **counts}
            return {**self._health, "sources": sources, "failing": dict(self._failing)}

    # -- the worker thread -----------------------------------------------------

    def _work(self) -> None:
        try:
            keys: set[str] | None = {s.key for s in self.sources}  # all, first, even if none
            while keys is not None:
                sources = tuple(s for s in self.sources if s.key in keys)
                log.debug("refresh: %s", ", ".join(s.label for s in sources) or "no sources")
                with self._lock:
                    self._health["refreshing"] = True
                began = time.monotonic()
                report = self._refresher.run(sources, self.base_url)
                with self._lock:
                    self._health["refreshing"] = False
                if report is not None:
                    self._record(report, time.monotonic() - began)
                keys = self._next_batch()
        finally:
            self._refresher.close()
            if not self._stopping.is_set():  # a bug here: exit 1, a supervisor restarts us
                log.error("daemon: the refresh worker stopped unexpectedly; stopping")
                self.failed = True
                self._stopping.set()

    def _next_batch(self) -> set[str] | None:
        with self._lock:
            while not self._pending and not self._stopping.is_set():
                if not self._lock.wait(IDLE_EXIT + 5):
                    self._refresher.reap()  # an idle exit leaves no zombie behind
            if self._stopping.is_set():
                return None
            keys, self._pending = self._pending, set()
            return keys

    def _record(self, report: RefreshReport, seconds: float) -> None:
        for result in report.results:
            _log_result(result)
        errors = sum(1 for r in report.results if _state(r) == "error")
        log.log(
            logging.INFO if report.new or report.changed or errors else logging.DEBUG,
            "refresh: published %d stories to %s in %.2f s (%d new, %d updated, %d failed)",
            *(report.stories, report.output, seconds, report.new, report.changed, errors),
        )
        with self._lock:
            now = datetime.now(UTC).isoformat()
            self._health.update(last_refresh=now, stories=report.stories)
            for result in report.results:
                self._sources[result.source.key] = _state(result)
                self._failing.pop(result.source.label, None)
                if isinstance(result.value, SourceError):
                    self._failing[result.source.label] = result.value.message

    # -- the scheduler and the watcher -------------------------------------------

    def _schedule(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(2)})
        for source in self.sources:
            _add_job(scheduler, source, self.request)
        scheduler.add_job(
            self._sync_sources,
            IntervalTrigger(seconds=SUBSCRIPTIONS_POLL, timezone=UTC),
            id="subscriptions",
            name="look for added or removed subscriptions",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        return scheduler

    def _sync_sources(self) -> None:
        """Schedule the feeds added since the last look, and refresh them now;
        unschedule the removed ones. The config's own sources never change."""
        try:
            store = open_store(self.config.database)
            try:
                current = all_sources(self.config, store)
            finally:
                store.close()
        except AggregatorError as exc:  # busy or broken for now: look again next time
            log.warning("subscriptions: cannot read them: %s", exc)
            return
        known, wanted = {s.key for s in self.sources}, {s.key for s in current}
        added = [s for s in current if s.key not in known]
        removed = [s for s in self.sources if s.key not in wanted]
        if not added and not removed:
            return
        with self._lock:
            self.sources = current
            for source in removed:
                self._sources.pop(source.key, None)
                self._failing.pop(source.label, None)
            for source in added:
                self._sources[source.key] = "pending"
        scheduler = self._scheduler
        for source in removed:
            log.info("subscriptions: %s removed; no longer refreshed", source.label)
            if scheduler is not None and scheduler.get_job(f"refresh:{source.key}"):
                scheduler.remove_job(f"refresh:{source.key}")
        for source in added:
            log.info("subscriptions: %s added; refreshing it now", source.label)
            if scheduler is not None:
                _add_job(scheduler, source, self.request)
        if self._server is not None:
            self._server.serve(site_for(self.config, self.health, current))
        self.request(s.key for s in added)

    def _folders(self) -> dict[Path, list[Source]]:
        folders: dict[Path, list[Source]] = {}
        for source in self.sources:
            if source.path is not None and source.path.is_dir():
                folders.setdefault(source.path, []).append(source)
            elif source.path is not None:
                log.warning("watch: source %s: no folder %s to watch", source.label, source.path)
        return folders

    def _watch(self, folders: Mapping[Path, list[Source]]) -> None:
        def relevant(change: Change, path: str) -> bool:
            return self._relevant(folders, change, Path(path))

        try:
            for changes in watch(
                *folders,
                watch_filter=relevant,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                stop_event=self._stopping,
                raise_interrupt=False,
            ):
                self._changed(folders, {Path(path) for _, path in changes})
        except (OSError, RuntimeError) as exc:
            log.error("watch: stopped watching folders (%s); interval refreshes go on", exc)

    def _relevant(self, folders: Mapping[Path, list[Source]], change: Change, path: Path) -> bool:
        output = self.config.output.path
        if path == output or path.is_relative_to(self.config.state_dir):
            return False
        if path.is_relative_to(output.parent / "topics") or path.name.endswith(
            ("~", ".tmp", ".part", ".swp")
        ):
            return False
        for folder in folders:
            if path.is_relative_to(folder) and any(
                part.startswith((".", "#", "~")) for part in path.relative_to(folder).parts
            ):
                return False
        # A directory moved in or out brings or takes files without events of their own.
        return path.suffix.lower() in _WATCHED or change == Change.deleted or path.is_dir()

    def _changed(self, folders: Mapping[Path, list[Source]], paths: set[Path]) -> None:
        for folder, sources in folders.items():
            inside = sorted(p for p in paths if p.is_relative_to(folder))
            for source in sources if inside else ():
                log.info(
                    "watch: source %s: %d file(s) changed (%s), refreshing",
                    *(source.label, len(inside), inside[0].name),
                )
            if inside:
                self.request(s.key for s in sources)


def _add_job(
    scheduler: BackgroundScheduler, source: Source, request: Callable[[Iterable[str]], None]
) -> None:
    """Ask for *source* every interval, give or take the jitter."""
    seconds = source.interval.total_seconds()
    # The first run comes between half an interval and a whole one from now
    # (the start, or the add, refreshed it): sources spread out and stay spread.
    first = datetime.now(UTC) + source.interval * random.uniform(0.5, 1.0)
    jitter = min(seconds / 10, MAX_JITTER)
    scheduler.add_job(
        request,
        IntervalTrigger(seconds=seconds, start_date=first, timezone=UTC, jitter=jitter),
        args=[(source.key,)],
        id=f"refresh:{source.key}",
        name=f"refresh {source.label}",
        max_instances=1,
        coalesce=True,
        # After a sleep the missed runs coalesce into the latest, which is
        # less than one interval late: it runs, once.
        misfire_grace_time=max(1, int(seconds)),
    )


def _state(result: SourceResult) -> str:
    value = result.value
    if isinstance(value, Updated):
        return "ok"
    if isinstance(value, NotModified):
        return "not-modified"
    return "skipped" if isinstance(value, Skipped) else "error"


def _log_result(result: SourceResult) -> None:
    value, label = result.value, result.source.label
    if isinstance(value, Updated):
        level = logging.INFO if value.new or value.changed else logging.DEBUG
        log.log(level, "source %s: ok, %d new, %d updated", label, value.new, value.changed)
        for warning in value.warnings:
            log.warning("source %s: %s", label, warning)
    elif isinstance(value, NotModified):
        log.debug("source %s: not modified", label)
    elif isinstance(value, Skipped):
        log.debug("source %s: skipped: %s", label, value.reason)
    else:
        log.warning("source %s: error: %s", label, value.message)


def run(config: Config, *, verbose: bool = False) -> int:
    """Run the daemon until SIGTERM or SIGINT; 0 when it stopped cleanly, 1 on a failure.

    Raises:
        AggregatorError: the server cannot listen or the database cannot be opened.
    """
    # A daemon reports what it does: INFO by default, DEBUG with --verbose.
    logging.getLogger("aggregator").setLevel(logging.DEBUG if verbose else logging.INFO)
    daemon = Daemon(config)
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        daemon.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.start()
        daemon.wait()
        if received:
            log.info("daemon: %s received, stopping", signal.Signals(received[0]).name)
    finally:
        daemon.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if daemon.failed else 0
