"""``aggregator run`` as a subprocess: folder watching, conditional GETs, signals, kill -9.

Each test starts the daemon on 127.0.0.1 port 0 and reads the bound port from
its log ("serving http://127.0.0.1:PORT/feed.atom"). Waits poll the server
with a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import feedparser
import httpx
import pytest
import wordfreq

from aggregator.workers import MIN_POOLED_FEEDS
from tests.conftest import REPO, FeedServer, Route, rss, write_config

READER_CHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "reader_check.sh"
SERVING = re.compile(r"serving (http://127\.0\.0\.1:\d+)/feed\.atom")


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> object:
    """Poll *check* every *every* seconds until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Daemon:
    """One ``aggregator run`` subprocess with its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log_path = config, log
        self._log: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,  # its own process group, refresh process included
        )
        self.url = str(wait_for(self._bound_url, 20, "the daemon to listen"))
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def _bound_url(self) -> str | None:
        if self.process.poll() is not None:
            raise AssertionError(f"the daemon exited {self.process.returncode}:\n{self.log()}")
        found = SERVING.findall(self.log())
        return found[-1] if found else None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def health(self) -> dict[str, object]:
        result: dict[str, object] = self.http.get("/healthz").json()
        return result

    def wait_refreshed(self, timeout: float = 20) -> None:
        wait_for(lambda: self.health()["last_refresh"], timeout, "the first refresh")

    def feed(self) -> bytes:
        return self.http.get("/feed.atom").content

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, float]:
        """Send *sig*; returns the exit status and the seconds it took to exit."""
        began = time.monotonic()
        self.process.send_signal(sig)
        status = self.process.wait(timeout)
        return status, time.monotonic() - began

    def kill(self, group: bool) -> None:
        """kill -9 the daemon alone (its refresh process is orphaned), or its whole group."""
        if group:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[Path], Daemon]]:
    daemons: list[Daemon] = []

    def starter(config: Path) -> Daemon:
        daemon = Daemon(config, tmp_path / f"daemon-{len(daemons)}.log")
        daemons.append(daemon)
        return daemon

    yield starter
    for daemon in daemons:
        daemon.close()


# Words of middling frequency, eight of its own for each story, so that no two
# made-up stories share anything to cluster on but the commonest words.
WORDS = [w for w in wordfreq.top_n_list("en", 6000)[2000:] if w.isalpha() and len(w) >= 6]


def article(n: int) -> tuple[str, str]:
    """A distinct made-up story: its headline and the file's text."""
    w = WORDS[8 * n : 8 * n + 8]
    name = f"{w[0].capitalize()}ovich"
    town = f"{w[1].capitalize()}burg"
    headline = f"{name} {w[2]} {w[3]} at {town} story {n}"
    body = (
        f"{name} said the {w[2]} {w[3]} at {town} drew {1000 + 37 * n} people. "
        f"The {w[4]} and the {w[5]} were praised, and {w[6]} {w[7]} followed."
    )
    return headline, f"{headline}\n\n{body}\n"


def drop(folder: Path, n: int) -> str:
    headline, text = article(n)
    tmp = folder / f".story-{n}.txt"  # hidden, then renamed: what a careful writer does
    tmp.write_text(text, encoding="utf-8")
    tmp.rename(folder / f"story-{n}.txt")
    return headline


def folder_config(tmp_path: Path, interval: float = 60) -> tuple[Path, Path]:
    folder = tmp_path / "articles"
    folder.mkdir(exist_ok=True)
    config = write_config(
        tmp_path,
        f'[[sources]]\npath = "articles"\nname = "Pasted"\ninterval = {interval}\n',
        extra="[server]\nport = 0\n",
    )
    return config, folder


def entries(feed: bytes) -> list[feedparser.FeedParserDict]:
    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    result: list[feedparser.FeedParserDict] = parsed.entries
    return result


def test_a_dropped_file_is_served_within_5_seconds(tmp_path, start):
    config, folder = folder_config(tmp_path)
    drop(folder, 0)
    daemon = start(config)
    daemon.wait_refreshed()
    first = daemon.http.get("/feed.atom")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert article(0)[0] in first.text
    etag = first.headers["etag"]
    assert daemon.http.get("/feed.atom", headers={"If-None-Match": etag}).status_code == 304
    since = {"If-Modified-Since": first.headers["last-modified"]}
    assert daemon.http.get("/feed.atom", headers=since).status_code == 304

    began = time.monotonic()
    headline = drop(folder, 1)
    wait_for(lambda: headline.encode() in daemon.feed(), 5, "the new story in /feed.atom")
    elapsed = time.monotonic() - began
    sys.stderr.write(f"file to feed: {elapsed:.2f} s\n")
    assert elapsed < 5
    again = daemon.http.get("/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert (
        daemon.http.get("/feed.atom", headers={"If-None-Match": again.headers["etag"]}).status_code
        == 304
    )
    assert len(entries(again.content)) == 2
    assert "watch: source Pasted: 1 file(s) changed (story-1.txt), refreshing" in daemon.log()
    assert "source Pasted: ok, 1 new, 0 updated" in daemon.log()

    status, seconds = daemon.stop(signal.SIGTERM)
    sys.stderr.write(f"SIGTERM to exit: {seconds:.2f} s\n")
    assert status == 0
    assert seconds < 5
    assert "SIGTERM received, stopping" in daemon.log()
    assert "daemon: stopped" in daemon.log()


def test_sigint_stops_it_too(tmp_path, start):
    config, _ = folder_config(tmp_path)
    daemon = start(config)
    daemon.wait_refreshed()
    assert daemon.health()["sources"] == {
        "total": 1,
        "ok": 1,
        "not-modified": 0,
        "skipped": 0,
        "error": 0,
        "pending": 0,
    }
    status, seconds = daemon.stop(signal.SIGINT)
    assert (status, seconds < 5) == (0, True)


def test_each_source_is_refreshed_on_its_interval(tmp_path, start, server: FeedServer):
    feed = rss("Wire", [{"title": "Dam opens", "guid": "d1", "link": "https://w.example/d"}])
    server.routes["/feed.xml"] = Route(feed, etag='"v1"')
    config = write_config(
        tmp_path,
        # 0.02 minutes: a run every 1.2 s (give or take its 0.12 s of jitter).
        f'[[sources]]\nurl = "{server.url("/feed.xml")}"\nname = "Wire"\ninterval = 0.02\n',
        extra="[server]\nport = 0\n",
    )
    daemon = start(config)
    daemon.wait_refreshed()
    wait_for(lambda: server.hits("/feed.xml") >= 3, 10, "three scheduled fetches")
    # After the first fetch every request is conditional, and 304 is not an error.
    assert all(h.get("If-None-Match") == '"v1"' for _, h in server.requests[1:])
    assert daemon.health()["sources"]["not-modified"] == 1  # type: ignore[index]
    outlines = daemon.http.get("/opml").text
    assert server.url("/feed.xml") in outlines
    assert daemon.stop()[0] == 0


def test_feeds_added_and_removed_while_it_runs_are_picked_up(tmp_path, start, server: FeedServer):
    server.routes["/feed.xml"] = Route(
        rss(
            "Wire",
            [{"title": "Ferry service resumes", "guid": "f1", "link": "https://w.example/f"}],
        )
    )
    config, _ = folder_config(tmp_path)
    daemon = start(config)
    daemon.wait_refreshed()
    url = server.url("/feed.xml")

    def cli(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", *args, "--config", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    cli("add", url)
    # Within a look at the subscriptions (SUBSCRIPTIONS_POLL) and one refresh.
    wait_for(lambda: b"Ferry service resumes" in daemon.feed(), 20, "the added feed's story")
    assert url in daemon.http.get("/opml").text
    assert daemon.health()["sources"]["total"] == 2  # type: ignore[index]
    assert "subscriptions: Wire added; refreshing it now" in daemon.log()

    cli("remove", url)
    wait_for(lambda: url not in daemon.http.get("/opml").text, 20, "the feed to leave the OPML")
    assert daemon.health()["sources"]["total"] == 1  # type: ignore[index]
    fetches = server.hits("/feed.xml")
    assert "subscriptions: Wire removed; no longer refreshed" in daemon.log()
    assert daemon.stop()[0] == 0
    assert server.hits("/feed.xml") == fetches


def wal_state(config: Path) -> tuple[int, int] | None:
    """When the state database's write-ahead log last changed, and its size."""
    try:
        st = (config.parent / "state" / "aggregator.sqlite-wal").stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def wal_written(config: Path, times: int) -> Callable[[], bool]:
    """A check that turns true once the WAL has changed *times* times since now."""
    seen = [wal_state(config)]

    def check() -> bool:
        now = wal_state(config)
        if now != seen[-1]:
            seen.append(now)
        return len(seen) > times

    return check


def test_kill_9_during_a_refresh_loses_and_doubles_nothing(tmp_path, start):
    config, folder = folder_config(tmp_path)
    feed_file = config.parent / "state" / "feed.atom"
    daemon = start(config)
    daemon.wait_refreshed()
    # Kill points: once the refresh has written to the database (items stored, not
    # yet in stories or published), at its second write, and before it writes at all;
    # the whole process group (as systemd or a power cut would) or the daemon alone
    # (its orphaned refresh process then works beside the next daemon's).
    plan: list[tuple[Callable[[], Callable[[], bool]], bool]] = [
        (lambda: wal_written(config, 1), True),
        (lambda: wal_written(config, 1), False),
        (lambda: wal_written(config, 2), True),
        (lambda: lambda: True, True),
    ]
    headlines: list[str] = []
    for round, (make_check, group) in enumerate(plan):
        check = make_check()  # the WAL as it is before the drop
        first = 30 if round == 0 else 10
        headlines += [drop(folder, len(headlines) + n) for n in range(first)]
        wait_for(check, 10, f"kill point {round}", every=0.002)
        daemon.kill(group=group)
        # The published file is whole at any moment: the old feed or the new one.
        entries(feed_file.read_bytes())
        daemon = start(config)
    daemon.wait_refreshed()

    def complete() -> bytes | None:
        feed = daemon.feed()
        return feed if all(h.encode() in feed for h in headlines) else None

    found = entries(wait_for(complete, 20, "every story after the restarts"))  # type: ignore[arg-type]
    ids = Counter(e.id for e in found)
    assert [i for i, n in ids.items() if n > 1] == []
    titles = Counter(e.title for e in found)
    assert all(titles[h] == 1 for h in headlines), [h for h in headlines if titles[h] != 1]
    assert len(found) == len(headlines) == 60
    assert daemon.stop()[0] == 0


def test_refresh_command_while_the_daemon_runs(tmp_path, start):
    config, folder = folder_config(tmp_path)
    daemon = start(config)
    daemon.wait_refreshed()
    headlines = [drop(folder, n) for n in range(20)]
    # Race the daemon's own refresh of the same folder, as a cron job might.
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "refresh", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    headlines.append(drop(folder, 20))  # and the daemon publishes once more after it

    def complete() -> bytes | None:
        feed = daemon.feed()
        return feed if all(h.encode() in feed for h in headlines) else None

    found = entries(wait_for(complete, 10, "every story"))  # type: ignore[arg-type]
    assert [i for i, n in Counter(e.id for e in found).items() if n > 1] == []
    assert len(found) == 21
    assert all(e.link.startswith(daemon.url + "/items/") for e in found)
    assert daemon.stop()[0] == 0


def test_a_port_in_use_is_one_error_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, "", extra=f"[server]\nport = {port}\n")
        result = subprocess.run(
            [sys.executable, "-m", "aggregator", "run", "--config", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen: '127.0.0.1:{port}'" in result.stderr


@pytest.mark.skipif(not READER_CHECK.exists(), reason="no shared reader_check.sh")
@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_a_real_feed_reader_subscribes(tmp_path, start):
    config, folder = folder_config(tmp_path)
    headlines = [drop(folder, n) for n in range(3)]
    daemon = start(config)
    daemon.wait_refreshed()
    # The first run may apt-get install newsboat.
    result = subprocess.run(
        ["bash", str(READER_CHECK), "--expect", "3", f"{daemon.url}/feed.atom"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode == 2:
        pytest.skip(f"reader_check.sh cannot run its reader: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(h in result.stdout for h in headlines), result.stdout


def test_sigterm_during_a_slow_fetch_still_exits_promptly(tmp_path, start, server: FeedServer):
    feed = rss("Slow", [{"title": "Late news", "guid": "s1", "link": "https://s.example/1"}])
    server.routes["/slow.xml"] = Route(feed, delay=30)
    config = write_config(
        tmp_path,
        f'[[sources]]\nurl = "{server.url("/slow.xml")}"\nname = "Slow"\n',
        extra="[server]\nport = 0\n",
    )
    daemon = start(config)
    wait_for(lambda: server.hits("/slow.xml"), 10, "the fetch to start")
    assert daemon.health()["refreshing"] is True
    status, seconds = daemon.stop()
    assert status == 0
    assert seconds < 6  # STOP_GRACE, then the refresh process is killed
    assert "killed the refresh in progress" in daemon.log()


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_first_refresh_of_many_feeds_runs_on_workers_and_stops_promptly(
    tmp_path, start, server: FeedServer
):
    n = MIN_POOLED_FEEDS + 10
    for i in range(n):
        items = [{"title": f"Story {i}", "guid": f"g{i}", "link": f"https://o{i}.example/1"}]
        server.routes[f"/f{i}.xml"] = Route(rss(f"Outlet {i}", items))
    sources = "".join(f'[[sources]]\nurl = "{server.url(f"/f{i}.xml")}"\n' for i in range(n))
    config = write_config(tmp_path, sources, extra="[server]\nport = 0\n")
    daemon = start(config)
    daemon.wait_refreshed(60)
    assert f"reading {n} feeds in" in daemon.log()  # the refresh process has a pool
    assert len(entries(daemon.feed())) == n
    assert daemon.stop()[0] == 0
    assert wait_for(lambda: _group_gone(daemon.process.pid), 10, "its processes to exit")

    # A fresh state, and slow servers: stopped while its workers wait for feeds.
    shutil.rmtree(tmp_path / "state")
    for i in range(4, n):
        server.routes[f"/f{i}.xml"].delay = 1.0
    before = len(server.requests)
    daemon = start(config)
    wait_for(lambda: f"reading {n} feeds in" in daemon.log(), 30, "the pooled refresh")
    wait_for(lambda: len(server.requests) - before >= 8, 30, "the slow downloads to start")
    status, seconds = daemon.stop()
    assert status == 0
    assert seconds < 6  # within STOP_GRACE, without waiting for every download
    assert "killed the refresh in progress" not in daemon.log()  # it stopped by itself
    assert wait_for(lambda: _group_gone(daemon.process.pid), 10, "its processes to exit")
