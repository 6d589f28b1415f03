"""fetch.py against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from email.utils import formatdate

import pytest

from aggregator.errors import FetchError
from aggregator.fetch import (
    USER_AGENT,
    Fetched,
    HTTPStatusError,
    Limits,
    NotModified304,
    Request,
    Validators,
    fetch,
    fetch_all,
)
from tests.conftest import FeedServer, Route

BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
FAST = Limits(connect=2, read=2, total=5)


def ok(result: object) -> Fetched:
    assert isinstance(result, Fetched), result
    return result


def test_fetch_returns_body_headers_and_validators(server: FeedServer):
    server.routes["/feed"] = Route(
        BODY, etag='"v1"', headers={"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    )
    fetched = ok(fetch(server.url("/feed"), limits=FAST))
    assert fetched.content == BODY
    assert fetched.status == 200
    assert fetched.url == server.url("/feed")
    assert fetched.permanent_redirect is None
    assert fetched.validators == Validators('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    assert fetched.headers["etag"] == '"v1"'
    _, headers = server.requests[-1]
    assert headers["User-Agent"] == USER_AGENT
    assert "story-aggregator/" in USER_AGENT
    assert "If-None-Match" not in headers


def test_conditional_request_gets_not_modified(server: FeedServer):
    server.routes["/feed"] = Route(BODY, etag='"v1"')
    result = fetch(server.url("/feed"), Validators(etag='"v1"'), FAST)
    assert isinstance(result, NotModified304)
    assert result.headers["etag"] == '"v1"'
    assert server.requests[-1][1]["If-None-Match"] == '"v1"'


def test_last_modified_is_sent_back(server: FeedServer):
    server.routes["/feed"] = Route(BODY)
    fetch(server.url("/feed"), Validators(last_modified="Tue, 02 Jan 2024 00:00:00 GMT"), FAST)
    assert server.requests[-1][1]["If-Modified-Since"] == "Tue, 02 Jan 2024 00:00:00 GMT"


@pytest.mark.parametrize(
    ("statuses", "permanent"),
    [
        ([301], True),
        ([308], True),
        ([301, 308], True),
        ([302], False),
        ([307], False),
        ([303], False),
        ([301, 302], False),
        ([307, 301], False),
    ],
)
def test_redirects_are_followed_and_permanence_detected(server: FeedServer, statuses, permanent):
    for n, status in enumerate(statuses):
        target = f"/hop{n + 1}" if n + 1 < len(statuses) else "/new"
        server.routes[f"/hop{n}"] = Route(status=status, headers={"Location": target})
    server.routes["/new"] = Route(BODY)
    fetched = ok(fetch(server.url("/hop0"), limits=FAST))
    assert fetched.url == server.url("/new")
    assert fetched.content == BODY
    assert fetched.permanent_redirect == (server.url("/new") if permanent else None)


def test_absolute_location_and_304_after_permanent_redirect(server: FeedServer):
    server.routes["/old"] = Route(status=308, headers={"Location": server.url("/new")})
    server.routes["/new"] = Route(BODY, etag='"e"')
    result = fetch(server.url("/old"), Validators(etag='"e"'), FAST)
    # An unchanged moved feed answers 304, and the move must still be reported.
    assert result == NotModified304(result.headers, server.url("/new"))


def test_redirect_loop_is_an_error(server: FeedServer):
    server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="redirect loop") as info:
        fetch(server.url("/a"), limits=FAST)
    assert server.url("/a") in str(info.value)
    assert server.hits("/a") == 1


@pytest.mark.parametrize(("hops", "fails"), [(3, False), (4, True)])
def test_too_many_redirects_is_an_error(server: FeedServer, hops, fails):
    for n in range(hops):
        server.routes[f"/r{n}"] = Route(status=302, headers={"Location": f"/r{n + 1}"})
    server.routes[f"/r{hops}"] = Route(BODY)
    limits = Limits(total=5, max_redirects=3)
    if fails:
        with pytest.raises(FetchError, match="too many redirects"):
            fetch(server.url("/r0"), limits=limits)
    else:
        assert ok(fetch(server.url("/r0"), limits=limits)).content == BODY


def test_redirect_without_location_is_a_status_error(server: FeedServer):
    server.routes["/feed"] = Route(status=302)
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/feed"), limits=FAST)
    assert info.value.status == 302


@pytest.mark.parametrize("status", [400, 403, 404, 410, 500, 502])
def test_error_status_names_the_url(server: FeedServer, status):
    server.routes["/feed"] = Route(b"nope", status=status)
    with pytest.raises(HTTPStatusError, match=f"HTTP {status}") as info:
        fetch(server.url("/feed"), limits=FAST)
    assert server.url("/feed") in str(info.value)
    assert info.value.status == status
    assert info.value.retry_after is None


def test_error_after_redirect_names_both_urls(server: FeedServer):
    server.routes["/old"] = Route(status=301, headers={"Location": "/gone"})
    server.routes["/gone"] = Route(status=410)
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/old"), limits=FAST)
    assert info.value.where == server.url("/old")
    assert server.url("/gone") in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (+300, 300.0),  # an HTTP-date 300 s ahead
        (-300, 0.0),  # an HTTP-date in the past: retry now
        ("soon", None),
        ("-5", None),
    ],
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_parsed(server: FeedServer, status, value, expected):
    if isinstance(value, int):
        value = formatdate(time.time() + value, usegmt=True)
    server.routes["/feed"] = Route(status=status, headers={"Retry-After": value})
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/feed"), limits=FAST)
    assert info.value.status == status
    if expected is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after == pytest.approx(expected, abs=3)


def test_gzip_body_is_decoded(server: FeedServer):
    server.routes["/feed"] = Route(BODY, gzip=True)
    assert ok(fetch(server.url("/feed"), limits=FAST)).content == BODY
    assert "gzip" in server.requests[-1][1]["Accept-Encoding"]


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
def test_deflate_body_zlib_or_raw_is_decoded(server: FeedServer, wbits):
    packer = zlib.compressobj(wbits=wbits)
    body = packer.compress(BODY) + packer.flush()
    server.routes["/feed"] = Route(body, headers={"Content-Encoding": "deflate"})
    assert ok(fetch(server.url("/feed"), limits=FAST)).content == BODY


@pytest.mark.parametrize(("encoding", "body"), [("br", b"\x1b\x00"), ("gzip", b"not gzip at all")])
def test_undecodable_body_is_an_error(server: FeedServer, encoding, body):
    server.routes["/feed"] = Route(body, headers={"Content-Encoding": encoding})
    with pytest.raises(FetchError, match=encoding):
        fetch(server.url("/feed"), limits=FAST)


def test_size_cap_applies_to_decoded_bytes(server: FeedServer):
    # 20 MB of zeros gzip to ~20 KB: the cap must count what it inflates to.
    server.routes["/bomb"] = Route(b"0" * 20_000_000, gzip=True)
    with pytest.raises(FetchError, match="100000-byte cap"):
        fetch(server.url("/bomb"), limits=Limits(total=5, max_bytes=100_000))


def test_body_at_the_cap_is_accepted(server: FeedServer):
    server.routes["/feed"] = Route(b"x" * 1000, gzip=True)
    assert len(ok(fetch(server.url("/feed"), limits=Limits(max_bytes=1000))).content) == 1000


def test_declared_length_over_cap_is_refused_before_reading(server: FeedServer):
    server.routes["/big"] = Route(b"x" * 5000)
    with pytest.raises(FetchError, match="5000 bytes"):
        fetch(server.url("/big"), limits=Limits(max_bytes=1000))


def test_slow_body_hits_the_read_timeout(server: FeedServer):
    server.routes["/slow"] = Route(BODY, delay=3)
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(server.url("/slow"), limits=Limits(read=0.3, total=10))
    assert time.monotonic() - start < 2


def test_total_deadline_covers_the_whole_request(server: FeedServer):
    server.routes["/slow"] = Route(BODY, delay=3)
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0\.5 s"):
        fetch(server.url("/slow"), limits=Limits(read=10, total=0.5))
    assert time.monotonic() - start < 2


def test_truncated_body_is_an_error(server: FeedServer):
    server.routes["/cut"] = Route(BODY, truncate=True)
    with pytest.raises(FetchError, match="could not fetch"):
        fetch(server.url("/cut"), limits=FAST)


def test_dead_host_is_an_error(closed_port_url: str):
    with pytest.raises(FetchError, match="could not fetch") as info:
        fetch(closed_port_url, limits=FAST)
    assert closed_port_url in str(info.value)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed", "http://", "not a url"])
def test_bad_url_is_an_error(url):
    with pytest.raises(FetchError) as info:
        fetch(url, limits=FAST)
    assert info.value.where == url


def test_fetch_all_keys_every_outcome(server: FeedServer, closed_port_url: str):
    server.routes["/a"] = Route(BODY, etag='"a"')
    server.routes["/b"] = Route(status=404)
    results = fetch_all(
        [
            Request("a", server.url("/a")),
            Request("a304", server.url("/a"), Validators('"a"')),
            Request("b", server.url("/b")),
            Request("dead", closed_port_url),
        ],
        FAST,
    )
    assert ok(results["a"]).content == BODY
    assert isinstance(results["a304"], NotModified304)
    assert isinstance(results["b"], HTTPStatusError)
    assert isinstance(results["dead"], FetchError)


def test_fetch_all_edge_cases():
    assert fetch_all([], FAST) == {}
    with pytest.raises(ValueError, match="unique"):
        fetch_all([Request("k", "http://a/"), Request("k", "http://b/")], FAST)
    with pytest.raises(ValueError, match="per_host"):
        Limits(per_host=0)


def test_fetch_all_runs_in_a_worker_thread(server: FeedServer):
    server.routes["/feed"] = Route(BODY)
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.append(fetch_all([Request("k", server.url("/feed"))], FAST))
    )
    worker.start()
    worker.join(10)
    assert ok(results[0]["k"]).content == BODY  # type: ignore[index]


@pytest.fixture
def other_server() -> Iterator[FeedServer]:
    feed_server = FeedServer()
    feed_server.thread.start()
    yield feed_server
    feed_server.stopping.set()
    feed_server.httpd.shutdown()
    feed_server.httpd.server_close()


class InFlight:
    """Counts the requests a server is holding open at once, per server and in all.

    A request counts while its answer waits out the route's delay: that
    starts after the client has taken its slot and ends before the body is
    written, so the count can never see one request ending and the next
    beginning at once, whatever the threads' timing.
    """

    def __init__(self, *servers: FeedServer) -> None:
        self.lock = threading.Lock()
        self.now: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.total = self.peak_total = 0
        for n, server in enumerate(servers):
            self.now[n] = self.peak[n] = 0
            server.hold = self.wrap(n, server.hold)  # type: ignore[method-assign]

    def wrap(self, n: int, hold: Callable[[Route], None]) -> Callable[[Route], None]:
        def counted(route: Route) -> None:
            with self.lock:
                self.now[n] += 1
                self.total += 1
                self.peak[n] = max(self.peak[n], self.now[n])
                self.peak_total = max(self.peak_total, self.total)
            try:
                hold(route)
            finally:
                with self.lock:
                    self.now[n] -= 1
                    self.total -= 1

        return counted


def test_per_host_and_global_limits_are_enforced(server: FeedServer, other_server: FeedServer):
    counter = InFlight(server, other_server)
    requests = []
    for n in range(8):
        for name, srv in (("a", server), ("b", other_server)):
            srv.routes[f"/{n}"] = Route(BODY, delay=0.3)
            requests.append(Request(f"{name}{n}", srv.url(f"/{n}")))
    results = fetch_all(requests, Limits(concurrency=3, per_host=2, total=10))
    assert all(isinstance(r, Fetched) for r in results.values())
    assert counter.peak == {0: 2, 1: 2}  # per host (host:port), reached and not exceeded
    assert counter.peak_total == 3


def test_concurrency_is_used(server: FeedServer):
    counter = InFlight(server)
    for n in range(8):
        server.routes[f"/{n}"] = Route(BODY, delay=0.3)
    start = time.monotonic()
    fetch_all([Request(str(n), server.url(f"/{n}")) for n in range(8)], Limits(per_host=8))
    # Above the default of 4 per host (all 8 at once, unless the machine is busy).
    assert counter.peak[0] > 4
    assert time.monotonic() - start < 2  # not 8 x 0.3 s in a row
