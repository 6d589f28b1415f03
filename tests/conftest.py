"""Shared fixtures: a real HTTP server on 127.0.0.1, config files, the shared folder."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aggregator.model import Item

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Route:
    """What the test server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answer 304 when If-None-Match matches
    gzip: bool = False
    delay: float = 0.0  # seconds before the body, to test timeouts
    truncate: bool = False  # promise more bytes than are sent


class FeedServer:
    """A ThreadingHTTPServer on 127.0.0.1 port 0 with per-path routes.

    Records every request as (path, headers) so tests can check what the
    client sent (conditional headers, User-Agent).
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                server.answer(self, route)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def hold(self, route: Route) -> None:
        """Wait out a route's delay, in small steps so shutting down is not held up."""
        deadline = time.monotonic() + route.delay
        while time.monotonic() < deadline and not self.stopping.is_set():
            self.stopping.wait(0.05)

    def answer(self, handler: BaseHTTPRequestHandler, route: Route) -> None:
        if route.etag and handler.headers.get("If-None-Match") == route.etag:
            handler.send_response(304)
            handler.send_header("ETag", route.etag)
            handler.end_headers()
            return
        body = gzip.compress(route.body) if route.gzip else route.body
        handler.send_response(route.status)
        length = len(body) + (100 if route.truncate else 0)
        handler.send_header("Content-Length", str(length))
        handler.send_header("Date", formatdate(usegmt=True))
        if route.gzip:
            handler.send_header("Content-Encoding", "gzip")
        if route.etag:
            handler.send_header("ETag", route.etag)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if route.delay:
            self.hold(route)
        try:
            handler.wfile.write(body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if route.truncate:
            handler.close_connection = True


@pytest.fixture
def server() -> Iterator[FeedServer]:
    feed_server = FeedServer()
    feed_server.thread.start()
    try:
        yield feed_server
    finally:
        feed_server.stopping.set()
        feed_server.httpd.shutdown()
        feed_server.httpd.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


def rss(title: str, items: list[dict[str, str]]) -> bytes:
    """A small RSS 2.0 document; each item dict may have title, link, guid, pubDate, description."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{title}</title><link>https://example.org/</link><description>d</description>",
    ]
    for item in items:
        parts.append("<item>")
        for key, value in item.items():
            parts.append(f"<{key}>{value}</{key}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def write_config(tmp_path: Path, sources: str, extra: str = "") -> Path:
    """A config.toml in *tmp_path* with state and output under it."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[state]\ndir = "state"\n[output]\npath = "state/feed.atom"\ntitle = "Test feed"\n'
        f"{extra}\n{sources}\n",
        encoding="utf-8",
    )
    return path


ITEM_DEFAULTS: dict[str, Any] = {
    "id": "item",
    "source": "test",
    "title": "Title",
    "url": None,
    "guid": None,
    "summary": "",
    "text": "",
    "content_html": "",
    "published": datetime(2024, 1, 1, tzinfo=UTC),
    "updated": None,
    "seen": datetime(2024, 1, 1, tzinfo=UTC),
    "author": None,
    "outlet": "Example Wire",
    "tags": (),
    "language": "en",
    "fingerprint": "",
}


def make_item(**fields: Any) -> Item:
    """An Item for tests of the pure stages: defaults for what a test does not name."""
    values = ITEM_DEFAULTS | fields
    values["fingerprint"] = values["fingerprint"] or values["id"]
    return Item(**values)


@pytest.fixture
def shared() -> Path:
    """The shared folder beside the checkout; skips when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("the shared folder beside the checkout is absent")
    return SHARED
