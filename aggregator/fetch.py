"""[I/O] Fetch feed URLs over HTTP: the only module that uses httpx.

One :class:`httpx.Client` is made by :func:`make_client` and passed in, with
explicit timeouts, redirects followed and a descriptive User-Agent. Bodies are
streamed and cut off at a size cap, counted on the decoded bytes so a small
gzip body that inflates to gigabytes stops at the cap too. ETag and
Last-Modified go back as ``If-None-Match`` / ``If-Modified-Since``; a 304
becomes :data:`NOT_MODIFIED` (reader's ``_parser/http.py::caching_get``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from . import __version__
from .errors import FetchError

__all__ = [
    "DEFAULT_MAX_REDIRECTS",
    "USER_AGENT",
    "Fetched",
    "Validators",
    "fetch",
    "make_client",
]

USER_AGENT = f"story-aggregator/{__version__} (+feed aggregator; httpx/{httpx.__version__})"
DEFAULT_MAX_REDIRECTS = 5
# Connecting should be quick; a slow feed gets longer to send its body.
CONNECT_TIMEOUT = 10.0
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server gave us to make the next request conditional."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 2xx response read in full: the final URL after redirects, body, headers."""

    url: str
    content: bytes
    headers: Mapping[str, str]
    validators: Validators


def make_client(timeout: float, max_redirects: int = DEFAULT_MAX_REDIRECTS) -> httpx.Client:
    """The one client a refresh uses, with our timeouts, redirects and User-Agent."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
        follow_redirects=True,
        max_redirects=max_redirects,
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
    )


def fetch(client: httpx.Client, url: str, validators: Validators, max_bytes: int) -> Fetched | None:
    """GET *url*; None means 304 Not Modified.

    Raises:
        FetchError: the host is unreachable, the request timed out, the status
            is not 2xx/304, there were too many redirects, or the body is
            larger than *max_bytes*.
    """
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return None
            if not response.is_success:
                reason = response.reason_phrase or "error"
                raise FetchError(url, f"HTTP {response.status_code} {reason}")
            content = _read_capped(response, url, max_bytes)
            return Fetched(
                url=str(response.url),
                content=content,
                headers=dict(response.headers),
                validators=Validators(
                    response.headers.get("ETag"), response.headers.get("Last-Modified")
                ),
            )
    except httpx.TooManyRedirects as exc:
        raise FetchError(url, "too many redirects") from exc
    except httpx.TimeoutException as exc:
        raise FetchError(url, "timed out") from exc
    except httpx.HTTPError as exc:
        raise FetchError(url, "could not fetch") from exc


def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"response is {declared} bytes, over the {max_bytes}-byte cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(url, f"response is over the {max_bytes}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)
