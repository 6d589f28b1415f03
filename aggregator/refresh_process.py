"""[I/O] The refresh process: where the daemon's refreshes run.

It is started when work comes and exits after ``IDLE_EXIT`` seconds without
any: the language and word-frequency models a refresh loads take some 120 MB,
which an idle daemon gives back (issue 6: idle under 150 MB). It keeps a
``ClusterCache`` while it lives, so consecutive refreshes skip reloading the
clusterer. Its log records come back over the pipe and are logged by the
daemon. A refresh of many new feeds reads them in a worker pool of its own
(``workers.py``), gone when the refresh ends. SIGTERM stops it after its
current source, and no more downloads start; the daemon kills it after
``STOP_GRACE`` seconds if it does not stop (SQLite rolls an open transaction
back, and the feed file is only ever replaced whole).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from .config import Config
from .errors import AggregatorError
from .model import RefreshReport, Source
from .store import open_store

__all__ = ["IDLE_EXIT", "STOP_GRACE", "Refresher"]

log = logging.getLogger("aggregator.daemon")

# Seconds the refresh in hand gets on SIGTERM before its process is killed.
STOP_GRACE = 3.0
# Seconds the refresh process waits for more work before it exits, freeing its memory.
IDLE_EXIT = 30.0


class _Abandoned(AggregatorError):
    """Raised between two sources of a refresh when the daemon is stopping."""


class Refresher:
    """The refresh process as the worker thread sees it: started on demand, idle exits."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._stopping = False
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def run(self, sources: tuple[Source, ...], base_url: str) -> RefreshReport | None:
        """Refresh *sources* in the process; None when it failed (and was logged)."""
        for _ in range(2):  # again once, if the process exited idle just as work came
            if self._process is None or self._conn is None or not self._process.is_alive():
                self._spawn()
            assert self._process is not None and self._conn is not None
            try:
                self._conn.send((sources, base_url))
            except OSError:
                self._reap()
                continue
            report, again = self._receive(self._conn, self._process)
            if not again:
                return report
        return None

    def _spawn(self) -> None:
        self._reap()
        ours, theirs = self._context.Pipe()
        levels = (logging.getLogger().level, logging.getLogger("aggregator").level)
        self._process = self._context.Process(
            target=_refresh_process,
            args=(self.config, theirs, levels),
            name="aggregator-refresh",
            # Not daemonic, so that it may start the worker pool of a first
            # refresh of many feeds; SIGTERM and the pipe's end still stop it.
            daemon=False,
        )
        self._process.start()
        theirs.close()
        self._conn = ours
        log.debug("refresh: started refresh process %s", self._process.pid)

    def _receive(self, conn: Connection, process: BaseProcess) -> tuple[RefreshReport | None, bool]:
        """The report (or None), and whether to ask again: the process had exited idle."""
        while True:
            wait([conn, process.sentinel])
            try:
                kind, value = conn.recv()
            except (EOFError, OSError):
                break
            if kind == "log":
                logging.getLogger(value.name).handle(value)
            elif kind == "done":
                report: RefreshReport = value
                return report, False
            else:
                log.log(
                    logging.INFO if kind == "abandoned" else logging.ERROR, "refresh: %s", value
                )
                return None, False
        process.join(timeout=5)
        idle = process.exitcode == 0
        if not idle and not self._stopping:
            log.error("refresh: the refresh process died (exit status %s)", process.exitcode)
        self._reap()
        return None, idle

    def reap(self) -> None:
        """Forget the process if it has exited (when idle)."""
        if self._process is not None and not self._process.is_alive():
            self._reap()

    def _reap(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.join(timeout=1)
        self._process = self._conn = None

    def terminate(self) -> None:
        """Ask the process to stop after the source in hand (SIGTERM, as systemd would)."""
        self._stopping = True
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()

    def kill(self) -> bool:
        """Kill the process if it is still running; whether it was."""
        process = self._process
        if process is None or not process.is_alive():
            return False
        process.kill()
        process.join(timeout=2)
        return True

    def close(self) -> None:
        """Let the process exit (closing the pipe tells it), then reap it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=2)


class _PipeHandler(logging.Handler):
    """In the refresh process: sends each log record to the daemon, ready to pickle."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # As logging.handlers.QueueHandler.prepare: args and tracebacks into the text.
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.msg, record.args, record.exc_info, record.exc_text = message, None, None, None
            self.conn.send(("log", record))
        except (OSError, ValueError):
            self.handleError(record)


def _refresh_process(config: Config, conn: Connection, levels: tuple[int, int]) -> None:
    """The refresh process: one refresh per request until the pipe closes or IDLE_EXIT."""
    stopping: list[int] = []
    # SIGTERM (from the daemon, or from systemd to the whole group) and a terminal's
    # Ctrl-C stop the refresh after the source in hand; the daemon then closes the pipe.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    logging.getLogger().handlers[:] = [_PipeHandler(conn)]
    logging.getLogger().setLevel(levels[0])
    logging.getLogger("aggregator").setLevel(levels[1])
    from .pipeline import refresh  # imported here: the daemon itself never needs them
    from .stories import ClusterCache

    def check(done: int, total: int, source: Source) -> None:
        # After each source: what is stored stays stored, and the items not yet
        # in a story are clustered by the next refresh.
        if done < total and stopping:
            raise _Abandoned("", f"stopped after {source.label} ({done} of {total} sources)")

    store = open_store(config.database)
    cache = ClusterCache()  # the clusterer stays in memory while this process lives
    try:
        while conn.poll(IDLE_EXIT):
            sources, base_url = conn.recv()
            try:
                now = datetime.now(UTC)
                report = refresh(
                    config,
                    store,
                    now,
                    sources=sources,
                    base_url=base_url,
                    cache=cache,
                    progress=check,
                )
                conn.send(("done", report))
            except _Abandoned as exc:
                conn.send(("abandoned", exc.message))
            except AggregatorError as exc:
                conn.send(("failed", f"failed: {exc}"))
    except (EOFError, OSError):
        pass  # the daemon is gone or closed the pipe: stop
    finally:
        store.close()
