"""The aggregator command: output, exit codes, help, and the README agreeing with it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from aggregator.cli import COMMANDS, build_parser, main
from tests.conftest import REPO, FeedServer, Route, rss, write_config

FEED = rss(
    "Example Wire",
    [
        {
            "title": "Bridge opens to traffic",
            "link": "https://wire.example.org/bridge",
            "guid": "b1",
            "pubDate": "Sat, 30 Nov 2024 09:00:00 GMT",
            "description": "The new bridge opened on Saturday.",
        }
    ],
)


@pytest.fixture
def config(tmp_path, server: FeedServer, closed_port_url):
    server.routes["/feed.xml"] = Route(FEED, etag='"1"')
    return write_config(
        tmp_path,
        f'[[sources]]\nurl = "{server.url("/feed.xml")}"\nname = "Wire"\n'
        f'[[sources]]\nurl = "{closed_port_url}"\nname = "Dead"\n',
    )


def test_refresh_prints_a_line_per_source_and_a_summary(config, capsys):
    assert main(["refresh", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok") and "Wire" in out[0] and "1 new" in out[0]
    assert out[1].startswith("error") and "Dead" in out[1] and "could not fetch" in out[1]
    assert out[2].startswith(
        "1 ok, 0 not modified, 0 skipped, 1 failed; 1 new and 0 updated items; 1 stories in "
    )
    assert main(["refresh", "--config", str(config)]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0].startswith("not modified  Wire")
    # The dead host backs off instead of being hammered on every run.
    assert again[1].startswith("skipped       Dead  not fetched before ")
    assert "after 1 failure(s)" in again[1]


def test_sources_lists_last_status(config, capsys):
    main(["refresh", "--config", str(config)])
    capsys.readouterr()
    assert main(["sources", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ok\s+Wire\s+\[url\] 1 items", out, re.M)
    assert re.search(r"^error\s+Dead", out, re.M)


def test_stories_lists_members(config, capsys):
    main(["refresh", "--config", str(config)])
    capsys.readouterr()
    assert main(["stories", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Bridge opens to traffic" in out and "1 article(s) from Wire" in out


def test_bad_config_is_one_line_and_exit_1(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("[output]\nlimit = -3\n")
    assert main(["refresh", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == "aggregator: config.toml: output.limit: must be > 0\n"


def test_unwritable_output_exits_non_zero(tmp_path, capsys):
    (tmp_path / "blocker").write_text("x")
    path = tmp_path / "config.toml"
    path.write_text('[output]\npath = "blocker/feed.atom"\n')
    assert main(["refresh", "--config", str(path)]) == 1
    assert "cannot write the feed" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli(config):
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "refresh", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "stories in" in result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_and_is_in_the_readme(command, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    assert (COMMANDS[command].__doc__ or "").strip()
    assert f"aggregator {command}" in (REPO / "README.md").read_text(encoding="utf-8")


def test_topics_lists_story_counts(config, capsys):
    config.write_text(config.read_text() + '[[topics]]\nname = "Transport"\naliases = ["bridge"]\n')
    main(["refresh", "--config", str(config)])
    capsys.readouterr()
    assert main(["topics", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s+1  Transport  \(transport\)$", out, re.M)


PAGE = b"""<!doctype html><html><head><title>Example Wire</title>
<link rel="alternate" type="application/rss+xml" href="/feed.xml"></head>
<body>News.</body></html>"""


def test_add_remove_and_opml_round_trip(tmp_path, server: FeedServer, capsys):
    from aggregator.opml import parse_opml

    server.routes["/feed.xml"] = Route(FEED)
    server.routes["/other.xml"] = Route(FEED.replace(b"Example Wire", b"Other Wire"))
    server.routes["/home"] = Route(PAGE, headers={"Content-Type": "text/html"})
    server.routes["/nothing"] = Route(b"<html><body>no feeds</body></html>")
    config = write_config(tmp_path, f'[[sources]]\nurl = "{server.url("/other.xml")}"\n')

    def cli(*words: str) -> int:
        return main([*words, "--config", str(config)])

    assert cli("add", server.url("/home")) == 0  # a home page: autodiscovery
    assert capsys.readouterr().out == f"added: {server.url('/feed.xml')} (Example Wire)\n"
    assert cli("add", server.url("/feed.xml")) == 0
    assert capsys.readouterr().out.startswith("already subscribed")
    assert cli("add", server.url("/nothing")) == 1
    assert "no feed here" in capsys.readouterr().err

    assert cli("refresh") == 0
    assert "2 ok" in capsys.readouterr().out  # the config's feed and the added one
    assert cli("sources") == 0
    assert re.search(r"^ok\s+Example Wire\s+\[url, added\]", capsys.readouterr().out, re.M)

    assert cli("export-opml") == 0
    exported = parse_opml(capsys.readouterr().out.encode(), "stdout")
    assert {s.url for s in exported} == {server.url("/other.xml"), server.url("/feed.xml")}

    assert cli("remove", server.url("/other.xml")) == 1  # it is config.toml's
    assert "remove it there" in capsys.readouterr().err
    assert cli("remove", server.url("/feed.xml")) == 0
    assert cli("remove", server.url("/feed.xml")) == 1
    capsys.readouterr()

    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        f'<outline text="News"><outline type="rss" text="A" xmlUrl="{server.url("/feed.xml")}"/>'
        '<outline type="rss" text="B" xmlUrl="https://b.example/feed"/></outline>'
        "</body></opml>"
    )
    assert cli("import-opml", str(opml)) == 0
    assert capsys.readouterr().out == "2 feeds added, 0 already there\n"


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    import subprocess
    import sys

    sources = "".join(f'[[sources]]\nurl = "https://e{n}.example/feed"\n' for n in range(50))
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\ndir = "state"\n{sources}', encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "sources", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # as `| head` does, before a line is read
    with child.stderr:
        stderr = child.stderr.read()
    assert child.wait(60) == 1
    assert b"Traceback" not in stderr, stderr.decode()


def test_commands_that_only_read_the_state_import_no_network_or_pipeline(config):
    """stories and topics answer without loading httpx, feedparser, feedgen or
    the pipeline: a quarter of a second less at every call."""
    script = (
        "import sys\n"
        "from aggregator.cli import main\n"
        f"main(['stories', '--config', {str(config)!r}])\n"
        f"main(['topics', '--config', {str(config)!r}])\n"
        "heavy = ('httpx', 'feedparser', 'feedgen', 'aggregator.pipeline')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
