"""[I/O] Fetch feed URLs over HTTP: the only module that uses httpx.

:func:`fetch_all` runs one :class:`httpx.AsyncClient` on its own event loop
(so the CLI and daemon worker threads can call it) and fetches every request
concurrently, under a global limit and a per-host limit. Each request has
connect and read timeouts and a total deadline around everything (headers,
redirects, body), so a server trickling a byte a second cannot hold a refresh.

Bodies are read raw and inflated here, in bounded steps, so a small gzip body
that inflates to gigabytes stops at the size cap instead of being inflated
first: httpx's own decoder inflates each 64 KiB network chunk in one go (up to
~64 MB for a deflate bomb). Redirects are followed here too, hop by hop,
because httpx reads every redirect body in full when it follows them itself;
doing it here also tells permanent moves (301/308) from temporary ones.

ETag and Last-Modified go back as ``If-None-Match`` / ``If-Modified-Since``;
a 304 becomes :class:`NotModified304` (reader's ``_parser/http.py::caching_get``).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from . import __version__
from .errors import FetchError
from .politeness import parse_retry_after

__all__ = [
    "ACCEPT",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_PER_HOST",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "USER_AGENT",
    "Admit",
    "Arrived",
    "Fetched",
    "HTTPStatusError",
    "Limits",
    "NotModified304",
    "Outcome",
    "Request",
    "Validators",
    "fetch",
    "fetch_all",
]

USER_AGENT = (
    f"story-aggregator/{__version__} (+feed aggregator; polite: honours 304, "
    f"Retry-After and 410; httpx/{httpx.__version__})"
)
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
# Only what _Inflater can inflate in bounded steps.
_ACCEPT_ENCODING = "gzip, deflate"

# Loopback fetch of 1,000 25-item feeds (issue 5): 16 connections took ~3 s, 64
# twice as long, because httpcore scans every pooled connection per request
# (encode/httpcore#1035). Measured here (two cores, the stdlib test server),
# concurrency/per-host: 4/4 2.0 s, 16/4 2.0 s, 16/16 2.7 s, 32/32 2.5 s, 64/64 7.9 s.
DEFAULT_CONCURRENCY = 16
# Four at once per host (host:port) cost nothing in that measurement, and is
# what a small site bears from one client without noticing.
DEFAULT_PER_HOST = 4
DEFAULT_CONNECT_TIMEOUT = 10.0  # a reachable host answers SYN in well under 1 s
DEFAULT_READ_TIMEOUT = 20.0  # the longest silence between two reads
# Headers + redirects + body: what stops a slowloris server. Issue 5 wants a
# refresh with every hostile endpoint as a source done in 60 s, parse and
# publish included, and a /hang source costs exactly this; 30 s still lets a
# 2 MB feed (the largest real ones) arrive at 0.6 Mbit/s.
DEFAULT_TOTAL_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # issue 5; the largest real news feeds are ~2 MB
DEFAULT_MAX_REDIRECTS = 5

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server gave us to make the next request conditional."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """One URL to fetch; ``key`` names its result (the source's key)."""

    key: str
    url: str
    validators: Validators = Validators()


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 2xx response read in full (and inflated).

    ``url`` is the final URL after redirects. ``permanent_redirect`` is that
    URL when every hop was a 301 or 308, else None (no redirect, or one
    temporary hop on the way).
    """

    url: str
    content: bytes
    headers: Mapping[str, str]
    validators: Validators
    status: int = 200
    permanent_redirect: str | None = None


@dataclass(frozen=True, slots=True)
class NotModified304:
    """The server answered 304: what we have is current.

    ``permanent_redirect`` as for :class:`Fetched`: a moved feed that has not
    changed answers 304 at its new URL, and the move must still be seen.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    permanent_redirect: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a refresh may ask of the network, and wait for it; seconds and bytes."""

    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    total: float = DEFAULT_TOTAL_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    def __post_init__(self) -> None:
        for name in ("concurrency", "per_host", "connect", "read", "total", "max_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be > 0")
        if self.max_redirects < 0:
            raise ValueError("Limits.max_redirects must be >= 0")


class HTTPStatusError(FetchError):
    """The server answered with an error status (or a redirect we cannot follow).

    ``status`` is the HTTP status; ``retry_after`` the seconds the server asked
    us to wait (``Retry-After``, as seconds or an HTTP-date), or None.
    """

    def __init__(
        self, where: str, message: str, *, status: int, retry_after: float | None = None
    ) -> None:
        super().__init__(where, message)
        self.status = status
        self.retry_after = retry_after


Outcome = Fetched | NotModified304 | FetchError
Arrived = Callable[[str, Outcome], Outcome]
"""Told each request's key and outcome as soon as it has one; returns the
outcome to keep for the result (the same, or a lighter one)."""
Admit = Callable[[], Awaitable[None]]
"""Awaited before each request starts: a caller that cannot take more bodies
yet holds the downloads back until it can."""


def fetch_all(
    requests: Sequence[Request],
    limits: Limits = Limits(),
    on_result: Arrived | None = None,
    admit: Admit | None = None,
) -> dict[str, Outcome]:
    """Fetch every request concurrently; one result per ``key``, never raising for one URL.

    *on_result*, if given, hears of each outcome as it arrives, so a caller can
    get a feed parsed elsewhere while others download; what it returns is kept
    in the result in its place. It must not raise. *admit*, if given, is
    awaited before each request starts, once it has its host's and the global
    slot (and before its deadline runs); what it raises ends the fetching.
    Runs its own event loop: call it from a thread with no running loop.

    Raises:
        ValueError: two requests share a key.
    """
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("fetch_all: request keys must be unique")
    if not requests:
        return {}
    return asyncio.run(_fetch_all(requests, limits, on_result, admit))


def fetch(
    url: str, validators: Validators = Validators(), limits: Limits = Limits()
) -> Fetched | NotModified304:
    """Fetch one URL.

    Raises:
        FetchError: unreachable, timed out, over the size cap, a redirect loop
            or too many hops; :class:`HTTPStatusError` for an error status.
    """
    result = fetch_all([Request(url, url, validators)], limits)[url]
    if isinstance(result, FetchError):
        raise result
    return result


async def _fetch_all(
    requests: Sequence[Request], limits: Limits, on_result: Arrived | None, admit: Admit | None
) -> dict[str, Outcome]:
    pool = httpx.Limits(
        max_connections=limits.concurrency, max_keepalive_connections=limits.concurrency
    )
    timeout = httpx.Timeout(
        connect=limits.connect, read=limits.read, write=limits.read, pool=limits.total
    )
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": _ACCEPT_ENCODING}
    async with httpx.AsyncClient(
        limits=pool, timeout=timeout, headers=headers, follow_redirects=False
    ) as client:
        fetcher = _Fetcher(client, limits, admit)

        async def one(request: Request) -> Outcome:
            outcome = await fetcher.one(request)
            return outcome if on_result is None else on_result(request.key, outcome)

        results = await asyncio.gather(*map(one, requests))
    return {r.key: result for r, result in zip(requests, results, strict=True)}


class _Fetcher:
    """The limits shared by every request of one :func:`fetch_all` call."""

    def __init__(
        self, client: httpx.AsyncClient, limits: Limits, admit: Admit | None = None
    ) -> None:
        self.client = client
        self.limits = limits
        self.admit = admit
        self.everyone = asyncio.Semaphore(limits.concurrency)
        self.hosts: dict[str, asyncio.Semaphore] = {}

    def host(self, url: str) -> asyncio.Semaphore:
        try:
            key = httpx.URL(url).netloc.decode("ascii", "replace").lower()
        except httpx.InvalidURL:
            key = url
        return self.hosts.setdefault(key, asyncio.Semaphore(self.limits.per_host))

    async def one(self, request: Request) -> Fetched | NotModified304 | FetchError:
        # The host slot first, so requests queued for a busy host hold no global
        # slot, nor a place of admit()'s: a slow host holds back only its own
        # feeds. Then the deadline starts, so queueing does not count against it.
        # A redirect to another host stays in the first host's slot.
        try:
            async with self.host(request.url), self.everyone:
                if self.admit is not None:
                    await self.admit()
                async with asyncio.timeout(self.limits.total):
                    return await self._follow(request)
        except FetchError as exc:
            return exc
        except TimeoutError as exc:
            error = FetchError(request.url, f"timed out after {self.limits.total:g} s")
            error.__cause__ = exc
            return error

    async def _follow(self, request: Request) -> Fetched | NotModified304:
        url = request.url
        headers = _conditional_headers(request.validators)
        seen = {url}
        permanent = True
        for _hop in range(self.limits.max_redirects + 1):
            response = await self._send(request.url, url, headers)
            try:
                if response.status_code not in _REDIRECTS or "location" not in response.headers:
                    result = await self._final(request.url, response)
                    if url != request.url and permanent:
                        return _with_redirect(result, url)
                    return result
                permanent = permanent and response.status_code in _PERMANENT
                url = _location(request.url, response)
            finally:
                await response.aclose()
            if url in seen:
                raise FetchError(request.url, f"redirect loop at {url}")
            seen.add(url)
        raise FetchError(request.url, f"too many redirects (more than {self.limits.max_redirects})")

    async def _send(self, source: str, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            request = self.client.build_request("GET", url, headers=headers)
            return await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise FetchError(source, "timed out") from exc
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(source, f"not an http(s) URL: {url}") from exc
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise FetchError(source, "could not fetch") from exc

    async def _final(self, source: str, response: httpx.Response) -> Fetched | NotModified304:
        headers = dict(response.headers)
        if response.status_code == 304:
            return NotModified304(headers)
        if not response.is_success:
            raise _status_error(source, response)
        content = await _read_capped(source, response, self.limits.max_bytes)
        return Fetched(
            url=str(response.url),
            content=content,
            headers=headers,
            validators=Validators(headers.get("etag"), headers.get("last-modified")),
            status=response.status_code,
        )


def _conditional_headers(validators: Validators) -> dict[str, str]:
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _location(source: str, response: httpx.Response) -> str:
    try:
        return str(response.url.join(response.headers["location"]))
    except httpx.InvalidURL as exc:
        raise FetchError(source, "redirect to an invalid URL") from exc


def _with_redirect(result: Fetched | NotModified304, url: str) -> Fetched | NotModified304:
    if isinstance(result, NotModified304):
        return NotModified304(result.headers, url)
    return Fetched(
        result.url, result.content, result.headers, result.validators, result.status, url
    )


def _status_error(source: str, response: httpx.Response) -> HTTPStatusError:
    status = response.status_code
    where = "" if str(response.url) == source else f" (at {response.url})"
    message = f"HTTP {status} {response.reason_phrase or 'error'}{where}"
    retry_after = parse_retry_after(response.headers.get("retry-after"), _server_now(response))
    return HTTPStatusError(source, message, status=status, retry_after=retry_after)


def _server_now(response: httpx.Response) -> datetime:
    """The server's clock when it answered: Retry-After dates are on its clock."""
    dates = response.headers.get_list("date")  # some servers send two
    try:
        date = parsedate_to_datetime(dates[0]) if dates else None
    except (TypeError, ValueError, IndexError):
        date = None
    if date is None or date.tzinfo is None:
        return datetime.now(UTC)
    return date.astimezone(UTC)


async def _read_capped(source: str, response: httpx.Response, max_bytes: int) -> bytes:
    """The body, inflated, or FetchError as soon as it passes *max_bytes* either way."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(source, f"response is {declared} bytes, over the {max_bytes}-byte cap")
    inflater = _Inflater(source, response.headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    raw = size = 0
    try:
        async for chunk in response.aiter_raw():
            raw += len(chunk)
            data = inflater.feed(chunk, max_bytes - size)
            size += len(data)
            if raw > max_bytes or size > max_bytes:
                raise FetchError(source, f"response is over the {max_bytes}-byte cap")
            chunks.append(data)
    except httpx.TimeoutException as exc:
        raise FetchError(source, "timed out reading the body") from exc
    except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
        raise FetchError(source, "could not fetch the body") from exc
    tail = inflater.flush()
    if size + len(tail) > max_bytes:
        raise FetchError(source, f"response is over the {max_bytes}-byte cap")
    chunks.append(tail)
    return b"".join(chunks)


class _Inflater:
    """Content-Encoding decoding that never inflates more than it is allowed to."""

    def __init__(self, source: str, encoding: str) -> None:
        self.source = source
        self.encoding = encoding.strip().lower()
        self.first = True
        if self.encoding in ("", "identity"):
            self.zlib = None
        elif self.encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise FetchError(source, f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        """Inflate *data*, stopping one byte past *room* (the caller then gives up)."""
        if self.zlib is None:
            return data
        first, self.first = self.first, False
        try:
            return self.zlib.decompress(data, max(room, 0) + 1)
        except zlib.error as exc:
            if first and self.encoding == "deflate":
                # "deflate" is zlib-wrapped by the RFC, raw in some servers.
                self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise FetchError(self.source, f"cannot decode {self.encoding} body") from exc

    def flush(self) -> bytes:
        # Every input byte went in unlimited (or we stopped at the cap), so
        # what is left in zlib's buffers is at most a window's worth.
        if self.zlib is None:
            return b""
        try:
            return self.zlib.flush()
        except zlib.error as exc:
            raise FetchError(self.source, f"cannot decode {self.encoding} body") from exc
