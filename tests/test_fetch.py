"""fetch.py against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest

from aggregator.errors import FetchError
from aggregator.fetch import USER_AGENT, Validators, fetch, make_client
from tests.conftest import FeedServer, Route

BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def client():
    with make_client(timeout=5) as http:
        yield http


def test_fetch_returns_body_headers_and_validators(server: FeedServer, client):
    server.routes["/feed"] = Route(
        BODY, etag='"v1"', headers={"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    )
    fetched = fetch(client, server.url("/feed"), Validators(), 1000)
    assert fetched is not None
    assert fetched.content == BODY
    assert fetched.validators == Validators('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    _, headers = server.requests[-1]
    assert headers["User-Agent"] == USER_AGENT
    assert "If-None-Match" not in headers


def test_conditional_request_gets_not_modified(server: FeedServer, client):
    server.routes["/feed"] = Route(BODY, etag='"v1"')
    assert fetch(client, server.url("/feed"), Validators(etag='"v1"'), 1000) is None
    _, headers = server.requests[-1]
    assert headers["If-None-Match"] == '"v1"'


def test_last_modified_is_sent_back(server: FeedServer, client):
    server.routes["/feed"] = Route(BODY)
    fetch(
        client, server.url("/feed"), Validators(last_modified="Tue, 02 Jan 2024 00:00:00 GMT"), 1000
    )
    assert server.requests[-1][1]["If-Modified-Since"] == "Tue, 02 Jan 2024 00:00:00 GMT"


def test_redirect_is_followed_and_final_url_reported(server: FeedServer, client):
    server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    server.routes["/new"] = Route(BODY)
    fetched = fetch(client, server.url("/old"), Validators(), 1000)
    assert fetched is not None
    assert fetched.url == server.url("/new")


def test_redirect_loop_is_an_error(server: FeedServer, client):
    server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(client, server.url("/a"), Validators(), 1000)


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_error_status_names_the_url(server: FeedServer, client, status):
    server.routes["/feed"] = Route(b"nope", status=status)
    with pytest.raises(FetchError, match=f"HTTP {status}") as info:
        fetch(client, server.url("/feed"), Validators(), 1000)
    assert server.url("/feed") in str(info.value)


def test_gzip_body_is_decoded(server: FeedServer, client):
    server.routes["/feed"] = Route(BODY, gzip=True)
    fetched = fetch(client, server.url("/feed"), Validators(), 1000)
    assert fetched is not None and fetched.content == BODY


def test_size_cap_applies_to_decoded_bytes(server: FeedServer, client):
    # 2 MB of zeros gzip to a few KB: the cap must count what it inflates to.
    server.routes["/bomb"] = Route(b"0" * 2_000_000, gzip=True)
    with pytest.raises(FetchError, match="cap"):
        fetch(client, server.url("/bomb"), Validators(), 100_000)


def test_declared_length_over_cap_is_refused_before_reading(server: FeedServer, client):
    server.routes["/big"] = Route(b"x" * 5000)
    with pytest.raises(FetchError, match="5000 bytes"):
        fetch(client, server.url("/big"), Validators(), 1000)


def test_slow_body_times_out(server: FeedServer):
    server.routes["/slow"] = Route(BODY, delay=3)
    with make_client(timeout=0.3) as http, pytest.raises(FetchError, match="timed out"):
        fetch(http, server.url("/slow"), Validators(), 1000)


def test_truncated_body_is_an_error(server: FeedServer, client):
    server.routes["/cut"] = Route(BODY, truncate=True)
    with pytest.raises(FetchError, match="could not fetch"):
        fetch(client, server.url("/cut"), Validators(), 10_000)


def test_dead_host_is_an_error(closed_port_url: str, client):
    with pytest.raises(FetchError, match="could not fetch") as info:
        fetch(client, closed_port_url, Validators(), 1000)
    assert closed_port_url in str(info.value)
