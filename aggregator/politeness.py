"""When to fetch a source next, and from where: pure, the clock is a parameter.

Given a source's :class:`Politeness` and the outcome of one fetch, compute the
next state (reader's ``_update`` ``Decider`` style: it only processes data):

- a success resets the failure count; ``Cache-Control: max-age`` or
  ``Expires`` sets a floor on the next fetch (capped at :data:`MAX_DELAY`);
- a 301/308 target is remembered, and adopted as :attr:`Politeness.url` only
  after :data:`REDIRECT_CONFIRMATIONS` fetches in a row agree, so one flaky
  answer does not move a subscription; 302/307 never change it;
- 410 Gone marks the source gone: it is not fetched again until a success;
- 429/503 with ``Retry-After`` wait as asked (capped at :data:`MAX_DELAY`);
- any other failure (404, 5xx, network) backs off exponentially with a
  jitter derived from the source key and failure count, never random, so
  sources failing together spread out yet every run is reproducible.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .errors import FetchError
from .model import check_utc

__all__ = [
    "BACKOFF_BASE",
    "JITTER",
    "MAX_DELAY",
    "REDIRECT_CONFIRMATIONS",
    "Politeness",
    "after_failure",
    "after_success",
    "backoff",
    "due",
    "freshness",
    "parse_retry_after",
]

BACKOFF_BASE = timedelta(minutes=5)  # the first retry of a failing source
MAX_DELAY = timedelta(hours=24)  # no source waits longer, whatever it or its errors say
JITTER = 0.25  # +-25 %: enough to spread a host's sources over a quarter of the delay
REDIRECT_CONFIRMATIONS = 2  # fetches in a row that must agree on a 301/308 target

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_FLOOR = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Politeness:
    """What we owe a source's server between fetches; persist it per source.

    ``next_fetch`` is the earliest the source may be fetched again (None: any
    time). ``moved_to``/``moved_seen`` track an unconfirmed 301/308 target;
    ``url`` is the confirmed new URL to fetch instead of the configured one.
    """

    failures: int = 0
    next_fetch: datetime | None = None
    gone: bool = False
    moved_to: str | None = None
    moved_seen: int = 0
    url: str | None = None

    def __post_init__(self) -> None:
        check_utc("next_fetch", self.next_fetch)
        if self.failures < 0 or self.moved_seen < 0:
            raise ValueError("Politeness counts must be >= 0")


def due(state: Politeness, now: datetime) -> bool:
    """Whether the source may be fetched at *now* (its own interval aside)."""
    check_utc("now", now)
    if state.gone:
        return False
    return state.next_fetch is None or now >= state.next_fetch


def after_success(
    state: Politeness,
    *,
    now: datetime,
    headers: Mapping[str, str],
    permanent_redirect: str | None,
    key: str,
) -> Politeness:
    """The state after a 2xx or 304; *permanent_redirect* as :class:`fetch.Fetched` has it."""
    check_utc("now", now)
    lifetime = freshness(headers, now)
    moved_to, moved_seen, url = _redirect(state, permanent_redirect)
    return Politeness(
        failures=0,
        next_fetch=now + lifetime if lifetime else None,
        gone=False,
        moved_to=moved_to,
        moved_seen=moved_seen,
        url=url,
    )


def after_failure(state: Politeness, *, now: datetime, error: FetchError, key: str) -> Politeness:
    """The state after a failed fetch; *error* may carry ``status`` and ``retry_after``."""
    check_utc("now", now)
    failures = state.failures + 1
    status = getattr(error, "status", None)
    if status == 410:
        return replace(state, failures=failures, gone=True, next_fetch=None)
    retry_after = getattr(error, "retry_after", None)
    if status in (429, 503) and isinstance(retry_after, int | float):
        delay = min(timedelta(seconds=max(float(retry_after), 0.0)), MAX_DELAY)
    else:
        delay = backoff(failures, key)
    # A failure is no evidence about a redirect: a streak of 301s stays as it was.
    return replace(state, failures=failures, next_fetch=now + delay)


def backoff(failures: int, key: str) -> timedelta:
    """The wait after the *failures*-th failure in a row: 5 min doubling, jittered.

    The jitter factor is in ``[1 - JITTER, 1 + JITTER]``, derived from a hash
    of *key* and *failures*; the doubling stops at ``MAX_DELAY / (1 + JITTER)``
    so that even the jittered wait never exceeds :data:`MAX_DELAY`.
    """
    if failures <= 0:
        return timedelta(0)
    ceiling = MAX_DELAY / (1 + JITTER)
    base = ceiling if failures > 20 else min(BACKOFF_BASE * 2 ** (failures - 1), ceiling)
    digest = hashlib.sha256(f"{key}\0{failures}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64  # [0, 1)
    return base * (1 + JITTER * (2 * unit - 1))


def freshness(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long the response says it stays fresh (``max-age``, else ``Expires``), capped.

    ``Expires`` is measured against the response's ``Date`` (the server's own
    clock) when it has one, else against *now*. None when neither is given,
    or ``no-cache``/``no-store`` say not to rely on it.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    control = lower.get("cache-control", "")
    if _NO_FLOOR.search(control):
        return None
    if match := _MAX_AGE.search(control):
        seconds = timedelta(seconds=min(int(match[1]), int(MAX_DELAY.total_seconds())))
        return seconds or None
    expires = _http_date(lower.get("expires"))
    if expires is None:
        return None
    lifetime = expires - (_http_date(lower.get("date")) or now)
    return min(lifetime, MAX_DELAY) if lifetime > timedelta(0) else None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds from *now*: delta-seconds or an HTTP-date; None if unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    when = _http_date(text)
    if when is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" and obsolete zones: HTTP dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _redirect(state: Politeness, target: str | None) -> tuple[str | None, int, str | None]:
    """(moved_to, moved_seen, url) after a success that did or did not redirect permanently."""
    if target is None:
        return None, 0, state.url
    seen = state.moved_seen + 1 if target == state.moved_to else 1
    if seen >= REDIRECT_CONFIRMATIONS:
        return None, 0, target
    return target, seen, state.url
