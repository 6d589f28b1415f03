"""[I/O] The HTTP server: the published feeds, the subscriptions, item pages, health.

A stdlib ``ThreadingHTTPServer``; every route is listed here and nothing else
is ever read from disk::

    /feed.atom            the merged feed file            ETag, Last-Modified, 304, gzip, HEAD
    /topics/<term>.atom   a topic feed file ([a-z0-9-]+) same treatment; 404 when absent
    /opml                 OPML 2.0 of the URL sources (folder sources have no URL: omitted)
    /healthz              200, JSON: last refresh, sources by status
    /items/<id>           an item as a self-contained HTML page (article files have no URL)

Feed files are published by ``os.replace``, so a request reads the old file or
the new one, never half; the bytes, their hash and their gzip are cached per
(inode, mtime, size).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import AF_INET6
from typing import Any, cast
from urllib.parse import urlsplit

from .config import Config
from .errors import AggregatorError
from .model import Item, Source
from .store import open_store

__all__ = [
    "ATOM_TYPE",
    "FeedServer",
    "Site",
    "accepts_gzip",
    "render_item_page",
    "render_opml",
    "site_for",
    "start_server",
]

log = logging.getLogger(__name__)

ATOM_TYPE = "application/atom+xml; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
# Idle keep-alive connections are closed after this many seconds, freeing their thread.
REQUEST_TIMEOUT = 30.0
_TOPIC = re.compile(r"/topics/([a-z0-9-]{1,100})\.atom")
_ITEM = re.compile(r"/items/([A-Za-z0-9_-]{1,100})")
_CACHED_FILES = 64
# An item page may show the article's own images, nothing else may load or run.
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:"


@dataclass(frozen=True, slots=True)
class Site:
    """What the server serves: two places on disk and three callables.

    ``find_item`` returns the item with exactly this id, or None; ``health``
    returns the details ``/healthz`` reports.
    """

    feed: Path
    topics: Path
    opml: bytes
    find_item: Callable[[str], Item | None]
    health: Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class _File:
    key: tuple[int, int, int]
    data: bytes
    gzipped: bytes
    tag: str  # the ETag's opaque part, without quotes
    mtime: float


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class FeedServer:
    """A running server: ``url`` is where it listens, ``close()`` stops it."""

    def __init__(self, httpd: _HTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def serve(self, site: Site) -> None:
        """Serve *site* from now on (requests in flight finish with the old one)."""
        self._httpd.site = site

    def close(self) -> None:
        """Stop accepting requests and close the socket (requests in flight may finish)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds up shutdown

    def __init__(self, address: tuple[str, int], site: Site) -> None:
        if ":" in address[0]:
            self.address_family = AF_INET6
        self.site = site
        self.cache: dict[Path, _File] = {}
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("server: error answering %s", client_address[0])


def start_server(host: str, port: int, site: Site, *, poll_interval: float = 0.5) -> FeedServer:
    """Listen on *host*:*port* (0 picks a free port) and serve *site* in a thread.

    ``close()`` takes up to *poll_interval* seconds.

    Raises:
        AggregatorError: the address cannot be bound (in use, not local, no permission).
    """
    try:
        httpd = _HTTPServer((host, port), site)
    except OSError as exc:
        raise AggregatorError(f"{host}:{port}", "cannot listen") from exc
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": poll_interval},
        name="http",
        daemon=True,
    )
    thread.start()
    return FeedServer(httpd, thread)


def site_for(
    config: Config,
    health: Callable[[], Mapping[str, Any]],
    sources: Iterable[Source] | None = None,
) -> Site:
    """The site of *config*: its output feed, its topic feeds, its items, and *sources*
    (by default the config's) in the OPML."""
    output = config.output.path
    return Site(
        feed=output,
        topics=output.parent / "topics",  # where pipeline.publish writes the topic feeds
        opml=render_opml(config.output.title, config.sources if sources is None else sources),
        find_item=lambda item_id: _find_item(config.database, item_id),
        health=health,
    )


def _find_item(database: Path, item_id: str) -> Item | None:
    # A short-lived connection per request: SQLite connections belong to one
    # thread, and WAL lets this read run beside the daemon's writes.
    if not database.exists():
        return None
    store = open_store(database)
    try:
        item = store.find_item(item_id)
    finally:
        store.close()
    return item if item is not None and item.id == item_id else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT
    server_version = "story-aggregator"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("server: %s %s", self.address_string(), format % args)

    def _answer(self, *, head: bool) -> None:
        response = self._route(urlsplit(self.path).path)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 304:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not head and response.status != 304:
            self.wfile.write(response.body)

    def _route(self, path: str) -> _Response:
        server = cast(_HTTPServer, self.server)
        site = server.site
        if path == "/feed.atom":
            return self._file(site.feed, "the feed is not published yet: the first refresh runs")
        if topic := _TOPIC.fullmatch(path):
            return self._file(site.topics / f"{topic[1]}.atom", None)
        if path == "/opml":
            return _Response(200, site.opml, (("Content-Type", OPML_TYPE),))
        if path == "/healthz":
            body = json.dumps({"status": "ok", **site.health()}, default=str, indent=1)
            json_headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
            return _Response(200, body.encode() + b"\n", json_headers)
        if item_match := _ITEM.fullmatch(path):
            try:
                item = site.find_item(item_match[1])
            except AggregatorError as exc:
                log.warning("server: cannot read item %s: %s", item_match[1], exc)
                return _unavailable("the state database cannot be read just now")
            if item is not None:
                headers = (
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Security-Policy", _PAGE_POLICY),
                    ("X-Content-Type-Options", "nosniff"),
                )
                return _Response(200, render_item_page(item), headers)
        return _text(404, "not found")

    def _file(self, path: Path, missing: str | None) -> _Response:
        server = cast(_HTTPServer, self.server)
        found = _read(server, path)
        if found is None:
            return _text(404, "not found") if missing is None else _unavailable(missing)
        zipped = accepts_gzip(self.headers.get("Accept-Encoding"))
        etag = f'"{found.tag}-gzip"' if zipped else f'"{found.tag}"'
        headers = [
            ("ETag", etag),
            ("Last-Modified", formatdate(found.mtime, usegmt=True)),
            ("Vary", "Accept-Encoding"),
            ("Cache-Control", "no-cache"),
        ]
        if _not_modified(self.headers.get("If-None-Match"), self.headers, found):
            return _Response(304, b"", tuple(headers))
        headers.append(("Content-Type", ATOM_TYPE))
        if zipped:
            headers.append(("Content-Encoding", "gzip"))
        return _Response(200, found.gzipped if zipped else found.data, tuple(headers))


def _text(status: int, message: str) -> _Response:
    return _Response(status, message.encode() + b"\n", (("Content-Type", "text/plain"),))


def _unavailable(message: str) -> _Response:
    headers = (("Content-Type", "text/plain"), ("Retry-After", "5"))
    return _Response(503, message.encode() + b"\n", headers)


def _read(server: _HTTPServer, path: Path) -> _File | None:
    """The file at *path*, from the cache while it is the same file; None if absent."""
    try:
        with path.open("rb") as file:
            # fstat of the open file: the bytes and the key describe the same inode
            # even if a publish replaces the path meanwhile.
            st = os.fstat(file.fileno())
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            with server.lock:
                cached = server.cache.get(path)
            if cached is not None and cached.key == key:
                return cached
            data = file.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        log.warning("server: cannot read %s: %s", path, exc)
        return None
    found = _File(
        key,
        data,
        gzip.compress(data, compresslevel=6, mtime=0),
        hashlib.sha256(data).hexdigest()[:32],
        st.st_mtime,
    )
    with server.lock:
        if len(server.cache) >= _CACHED_FILES:
            server.cache.pop(next(iter(server.cache)))
        server.cache[path] = found
    return found


def _not_modified(if_none_match: str | None, headers: Any, found: _File) -> bool:
    """RFC 9110 13.1: If-None-Match (weak comparison) wins over If-Modified-Since."""
    if if_none_match is not None:
        ours = {f'"{found.tag}"', f'"{found.tag}-gzip"'}
        tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
        return any(t == "*" or t in ours for t in tags)
    since = headers.get("If-Modified-Since")
    if not since:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(found.mtime) <= when.timestamp()


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (q > 0, directly or by ``*``)."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name.strip().lower()] = weight
    for name in ("gzip", "x-gzip"):
        if name in weights:
            return weights[name] > 0
    return weights.get("*", 0.0) > 0


def render_opml(title: str, sources: Iterable[Source]) -> bytes:
    """OPML 2.0 listing the URL sources; folder sources have no URL a reader could fetch."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = f"{title}: sources"
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    for source in sources:
        if source.url is not None:
            ET.SubElement(
                body,
                "outline",
                type="rss",
                text=source.label,
                title=source.label,
                xmlUrl=source.url,
            )
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


_PAGE = """<!DOCTYPE html>
<html{lang}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; background: #fff;
  font: 1.1rem/1.6 Georgia, "Times New Roman", serif; }}
h1 {{ line-height: 1.25; margin-bottom: .4rem; }}
.meta, footer {{ color: #555; font: .9rem/1.5 system-ui, sans-serif; }}
img, video {{ max-width: 100%; height: auto; }}
footer {{ margin-top: 2.5rem; border-top: 1px solid #ddd; padding-top: 1rem; }}
</style>
</head>
<body>
<article>
<h1>{title}</h1>
<p class="meta">{meta}</p>
{content}
</article>
<footer>{footer}</footer>
</body>
</html>
"""


def render_item_page(item: Item) -> bytes:
    """A readable, self-contained HTML page of one item (its HTML is already sanitised)."""
    esc = html.escape
    date = item.date
    meta = [esc(item.outlet)] if item.outlet else []
    if item.author:
        meta.append(f"By {esc(item.author)}")
    meta.append(f'<time datetime="{date.isoformat()}">{_human(date)}</time>')
    content = item.content_html.strip() or _paragraphs(item.text.split("\n\n"))
    footer: list[str] = []
    if item.url and urlsplit(item.url).scheme in ("http", "https"):
        footer.append(f'<a href="{esc(item.url)}" rel="noopener noreferrer">Original article</a>')
    if item.tags:
        footer.append("Tags: " + ", ".join(esc(tag) for tag in item.tags))
    page = _PAGE.format(
        lang=f' lang="{esc(item.language)}"' if item.language else "",
        title=esc(item.title),
        meta=" · ".join(meta),
        content=content,
        footer=" · ".join(footer) or esc(f"From {item.outlet or item.source}"),
    )
    return page.encode("utf-8")


def _human(date: datetime) -> str:
    return f"{date.day} {date:%B %Y, %H:%M} UTC"


def _paragraphs(texts: Sequence[str]) -> str:
    return "\n".join(f"<p>{html.escape(t.strip())}</p>" for t in texts if t.strip())
