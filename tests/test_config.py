"""config.py: a typed, frozen Config, and one clear line for every mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import DEFAULT_INTERVAL, load_config
from aggregator.errors import ConfigError
from tests.conftest import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_config_loads():
    config = load_config(REPO / "config.toml")
    assert config.sources
    assert config.output.path.is_absolute()
    assert all(s.path and s.path.is_dir() for s in config.sources if s.kind == "folder")


def test_contract_shape_and_relative_paths(tmp_path):
    config = load_config(
        write(
            tmp_path,
            """
[state]
dir = "state"
[output]
path = "state/feed.atom"
title = "Top stories"
[[sources]]
url = "https://example.org/rss.xml"
name = "Example"
[[sources]]
path = "feeds/articles"
""",
        )
    )
    assert config.state_dir == tmp_path.resolve() / "state"
    assert config.output.path == tmp_path.resolve() / "state" / "feed.atom"
    assert config.output.title == "Top stories"
    assert config.output.limit == 200 and config.output.max_age is None
    url, folder = config.sources
    assert (url.url, url.name, url.interval) == (
        "https://example.org/rss.xml",
        "Example",
        DEFAULT_INTERVAL,
    )
    assert folder.key == "feeds/articles"
    assert folder.path == tmp_path.resolve() / "feeds" / "articles"


def test_defaults_when_tables_are_missing(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.sources == ()
    assert config.output.path == tmp_path.resolve() / "state" / "feed.atom"


def test_optional_keys(tmp_path):
    config = load_config(
        write(
            tmp_path,
            '[output]\nmax_age_days = 2\nlimit = 5\nbase_url = "https://news.example.org/"\n'
            "[cluster]\nwindow_hours = 24\n"
            '[[sources]]\nurl = "https://example.org/a"\ninterval = 5\n',
        )
    )
    assert config.output.max_age == timedelta(days=2)
    assert config.output.limit == 5
    assert config.output.base_url == "https://news.example.org"
    assert config.cluster.window == timedelta(hours=24)
    assert config.sources[0].interval == timedelta(minutes=5)


def test_server_topics_and_topic_filters(tmp_path):
    config = load_config(
        write(
            tmp_path,
            '[server]\nhost = "0.0.0.0"\nport = 9000\n'
            '[output]\nmax_tags = 5\ninclude_topics = ["Ukraine war"]\nexclude_topics = ["Sport"]\n'
            '[[topics]]\nname = "Ukraine war"\naliases = ["Ukraine", "Kyiv"]\n',
        )
    )
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert config.output.max_tags == 5
    assert config.output.include_topics == ("Ukraine war",)
    assert config.output.exclude_topics == ("Sport",)
    (rule,) = config.topics
    assert (rule.name, rule.aliases) == ("Ukraine war", ("Ukraine", "Kyiv"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[output]\ncolour = 'red'\n", "config.toml: output.colour: unknown key"),
        ("colour = 'red'\n", "config.toml: colour: unknown key"),
        ("[output]\nlimit = 'ten'\n", "config.toml: output.limit: must be an integer"),
        ("[output]\nlimit = true\n", "config.toml: output.limit: must be an integer"),
        ("[output]\nlimit = 0\n", "config.toml: output.limit: must be > 0"),
        ("[output]\ntitle = ''\n", "config.toml: output.title: must not be empty"),
        ("[state]\ndir = 3\n", "config.toml: state.dir: must be a string"),
        (
            "[[sources]]\nurl = 'https://a.example/'\n"
            "[[sources]]\nurl = 'https://b.example/'\ninterval = -1\n",
            "config.toml: sources[1].interval: must be > 0",
        ),
        (
            "[[sources]]\nurl = 'ftp://a.example/'\n",
            "config.toml: sources[0].url: must be an http(s) URL",
        ),
        ("[[sources]]\nname = 'x'\n", "config.toml: sources[0]: needs exactly one of url or path"),
        (
            "[[sources]]\nurl = 'https://a.example/'\npath = 'x'\n",
            "config.toml: sources[0]: needs exactly one",
        ),
        (
            "[[sources]]\nurl = 'https://a.example/'\n[[sources]]\nurl = 'https://a.example/'\n",
            "config.toml: sources[1].url: is listed twice",
        ),
        (
            "[[sources]]\nurl = 'https://a.example/'\nfrequency = 3\n",
            "config.toml: sources[0].frequency: unknown key",
        ),
        ("[cluster]\nthreshold = 2\n", "config.toml: cluster.threshold: must be between 0 and 1"),
        (
            "[cluster]\nentity_floor = -1\n",
            "config.toml: cluster.entity_floor: must be between 0 and 1",
        ),
        ("sources = 'x'\n", "config.toml: sources: must be"),
        ("[output]\nid = 'no-scheme'\n", "config.toml: output.id: must be an absolute IRI"),
        ("[server]\nport = 70000\n", "config.toml: server.port: must be between 0 and 65535"),
        ("[output]\nexclude_topics = [1]\n", "config.toml: output.exclude_topics: must be a list"),
        ("[[topics]]\naliases = ['x']\n", "config.toml: topics[0].name: is required"),
        (
            "[[topics]]\nname = 'x'\nkeywords = ['y']\n",
            "config.toml: topics[0].keywords: unknown key",
        ),
    ],
)
def test_mistakes_are_one_clear_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_toml_syntax_error_keeps_its_line_number(tmp_path):
    with pytest.raises(ConfigError, match=r"config.toml: invalid TOML: .*line 3"):
        load_config(write(tmp_path, "[state]\ndir = 'state'\ntitle = \n"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, ""))
    with pytest.raises(AttributeError):
        config.output = None  # type: ignore[misc]
