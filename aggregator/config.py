"""``config.toml`` -> a frozen :class:`Config`.

Every key is checked: unknown keys, wrong types and bad values raise one
:class:`ConfigError` that names the file and the key, e.g.
``config.toml: sources[3].interval: must be > 0``. TOML syntax errors keep
the line number tomllib gives. Relative paths resolve against the folder of
the config file, so a config works from any working directory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from .cluster import ClusterSettings
from .errors import ConfigError
from .model import Source, TopicRule

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "Config",
    "FetchSettings",
    "OutputSettings",
    "ServerSettings",
    "load_config",
]

DEFAULT_INTERVAL = timedelta(minutes=30)
DEFAULT_LIMIT = 200
# The fetch defaults, chosen and measured in fetch.py, restated here so that
# reading the config never imports httpx.
DEFAULT_TIMEOUT = 20.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TOTAL_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_CONCURRENCY = 16
DEFAULT_PER_HOST = 4
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_TITLE = "Top stories"
DEFAULT_MAX_TAGS = 8
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutputSettings:
    path: Path
    title: str = DEFAULT_TITLE
    limit: int = DEFAULT_LIMIT
    max_age: timedelta | None = None
    feed_id: str | None = None
    base_url: str | None = None
    max_tags: int = DEFAULT_MAX_TAGS
    include_topics: tuple[str, ...] = ()
    exclude_topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How hard we may pull on other people's servers (see fetch.Limits)."""

    timeout: float = DEFAULT_TIMEOUT  # the longest silence while reading
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT  # a whole request, headers and body
    max_bytes: int = DEFAULT_MAX_BYTES
    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    max_redirects: int = DEFAULT_MAX_REDIRECTS


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    state_dir: Path
    output: OutputSettings
    sources: tuple[Source, ...]
    fetch: FetchSettings = field(default_factory=FetchSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    topics: tuple[TopicRule, ...] = ()

    @property
    def database(self) -> Path:
        return self.state_dir / "aggregator.sqlite"


class _Table:
    """A TOML table being read: typed getters that name the key on error."""

    def __init__(self, file: str, prefix: str, data: Mapping[str, Any]) -> None:
        self.file, self.prefix, self.data = file, prefix, data
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.prefix}{key}", message)

    def get(self, key: str, kind: type[T], default: T) -> T:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        # bool is an int in Python, but `limit = true` is a mistake, not a 1.
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(key, f"must be {_KIND_NAMES.get(kind, kind.__name__)}")
        return cast(T, value)

    def optional(self, key: str, kind: type[T]) -> T | None:
        self.used.add(key)
        return self.get(key, kind, cast(T, None)) if key in self.data else None

    def positive(self, key: str, kind: type[T], default: T) -> T:
        value = self.get(key, kind, default)
        if value <= 0:  # type: ignore[operator]
            raise self.error(key, "must be > 0")
        return value

    def check(self, key: str, value: T | None, test: Callable[[T], bool], message: str) -> None:
        if value is not None and not test(value):
            raise self.error(key, message)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def load_config(path: Path) -> Config:
    """Read and check *path*.

    Raises:
        ConfigError: the file is missing, not TOML, or a key is wrong.
    """
    path = Path(path)
    name = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "no such config file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line N, column M)".
        raise ConfigError(name, f"invalid TOML: {exc}") from None
    base = path.resolve().parent
    top = _Table(name, "", raw)
    state = _Table(name, "state.", _subtable(top, "state"))
    state_dir = _resolve(base, state.get("dir", str, "state"))
    state.finish()
    output = _read_output(_Table(name, "output.", _subtable(top, "output")), base, state_dir)
    fetch = _read_fetch(_Table(name, "fetch.", _subtable(top, "fetch")))
    cluster = _read_cluster(_Table(name, "cluster.", _subtable(top, "cluster")))
    server = _read_server(_Table(name, "server.", _subtable(top, "server")))
    sources = _read_sources(top, name, base)
    topics = _read_topics(top, name)
    top.finish()
    return Config(path.resolve(), state_dir, output, sources, fetch, cluster, server, topics)


def _subtable(top: _Table, key: str) -> Mapping[str, Any]:
    value = top.get(key, dict, {})
    return value


def _resolve(base: Path, value: str) -> Path:
    return (base / Path(value).expanduser()).resolve()


def _read_output(t: _Table, base: Path, state_dir: Path) -> OutputSettings:
    path = t.optional("path", str)
    title = t.get("title", str, DEFAULT_TITLE)
    t.check("title", title, lambda v: bool(v.strip()), "must not be empty")
    limit = t.positive("limit", int, DEFAULT_LIMIT)
    max_age_days = t.optional("max_age_days", float)
    t.check("max_age_days", max_age_days, lambda v: v > 0, "must be > 0")
    feed_id = t.optional("id", str)
    t.check("id", feed_id, lambda v: bool(urlsplit(v).scheme), "must be an absolute IRI")
    base_url = t.optional("base_url", str)
    t.check("base_url", base_url, _is_http_url, "must be an http(s) URL")
    max_tags = t.positive("max_tags", int, DEFAULT_MAX_TAGS)
    include = _strings(t, "include_topics")
    exclude = _strings(t, "exclude_topics")
    t.finish()
    return OutputSettings(
        path=_resolve(base, path) if path else state_dir / "feed.atom",
        title=title.strip(),
        limit=limit,
        max_age=timedelta(days=max_age_days) if max_age_days else None,
        feed_id=feed_id,
        base_url=base_url.rstrip("/") if base_url else None,
        max_tags=max_tags,
        include_topics=include,
        exclude_topics=exclude,
    )


def _strings(t: _Table, key: str) -> tuple[str, ...]:
    values = t.get(key, list, [])
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise t.error(key, "must be a list of non-empty strings")
    return tuple(v.strip() for v in values)


def _read_server(t: _Table) -> ServerSettings:
    host = t.get("host", str, DEFAULT_HOST)
    t.check("host", host, lambda v: bool(v.strip()), "must not be empty")
    port = t.get("port", int, DEFAULT_PORT)
    t.check("port", port, lambda v: 0 <= v <= 65535, "must be between 0 and 65535")
    t.finish()
    return ServerSettings(host=host, port=port)


def _read_topics(top: _Table, name: str) -> tuple[TopicRule, ...]:
    rules = []
    for n, entry in enumerate(top.get("topics", list, [])):
        if not isinstance(entry, dict):
            raise ConfigError(f"{name}: topics[{n}]", "must be a table ([[topics]])")
        t = _Table(name, f"topics[{n}].", entry)
        topic = t.get("name", str, "")
        t.check("name", topic, lambda v: bool(v.strip()), "is required")
        aliases = _strings(t, "aliases")
        t.finish()
        rules.append(TopicRule(topic.strip(), aliases))
    return tuple(rules)


def _read_fetch(t: _Table) -> FetchSettings:
    settings = FetchSettings(
        timeout=t.positive("timeout", float, DEFAULT_TIMEOUT),
        connect_timeout=t.positive("connect_timeout", float, DEFAULT_CONNECT_TIMEOUT),
        total_timeout=t.positive("total_timeout", float, DEFAULT_TOTAL_TIMEOUT),
        max_bytes=t.positive("max_bytes", int, DEFAULT_MAX_BYTES),
        concurrency=t.positive("concurrency", int, DEFAULT_CONCURRENCY),
        per_host=t.positive("per_host", int, DEFAULT_PER_HOST),
        max_redirects=t.positive("max_redirects", int, DEFAULT_MAX_REDIRECTS),
    )
    t.finish()
    return settings


def _read_cluster(t: _Table) -> ClusterSettings:
    default = ClusterSettings()
    window_hours = t.positive("window_hours", float, default.window.total_seconds() / 3600)
    bars = {}
    for key in ("threshold", "undated_margin", "merge_margin", "entity_floor", "term_floor"):
        value = t.get(key, float, getattr(default, key))
        t.check(key, value, lambda v: 0 <= v < 1, "must be between 0 and 1")
        bars[key] = value
    t.finish()
    return replace(default, window=timedelta(hours=window_hours), **bars)


def _read_sources(top: _Table, name: str, base: Path) -> tuple[Source, ...]:
    raw = top.get("sources", list, [])
    sources: list[Source] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        prefix = f"sources[{n}]."
        if not isinstance(entry, dict):
            raise ConfigError(f"{name}: sources[{n}]", "must be a table ([[sources]])")
        source = _read_source(_Table(name, prefix, entry), base)
        if source.key in seen:
            raise ConfigError(f"{name}: {prefix}{source.kind}", "is listed twice")
        seen.add(source.key)
        sources.append(source)
    return tuple(sources)


def _read_source(t: _Table, base: Path) -> Source:
    url = t.optional("url", str)
    path = t.optional("path", str)
    if (url is None) == (path is None):
        raise ConfigError(f"{t.file}: {t.prefix.rstrip('.')}", "needs exactly one of url or path")
    t.check("url", url, _is_http_url, "must be an http(s) URL")
    name = t.optional("name", str)
    minutes = t.positive("interval", float, DEFAULT_INTERVAL.total_seconds() / 60)
    t.finish()
    interval = timedelta(minutes=minutes)
    if url is not None:
        return Source(key=url, url=url, name=name, interval=interval)
    # The key is the path as written, not the resolved one, so that moving the
    # checkout keeps every stored item's id.
    written = Path(path or ".").as_posix()
    return Source(key=written, path=_resolve(base, written), name=name, interval=interval)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
