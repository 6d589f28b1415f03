"""Acceptance: the two real pasted articles in ../shared/seeds, through the whole pipeline."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import feedparser

from aggregator.cli import main

KIM_NEWSLOOKS = "North Korea’s Kim Pledges Support for Russia’s Ukraine War"
KIM_AP = "North Korea’s Kim vows steadfast support for Russia’s war in Ukraine"
CAPTION = "In this photo provided by the North Korean government"


def test_seed_articles_become_one_story_from_both_outlets(shared, tmp_path, capsys):
    folder = tmp_path / "articles"
    shutil.copytree(shared / "seeds", folder)
    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\npath = "articles"\nname = "Seeds"\n', encoding="utf-8")

    assert main(["refresh", "--config", str(config)]) == 0
    assert "2 new" in capsys.readouterr().out

    feed = feedparser.parse((tmp_path / "state" / "feed.atom").read_bytes())
    assert feed.version == "atom10" and not feed.bozo
    (entry,) = feed.entries
    assert entry.title in {KIM_NEWSLOOKS, KIM_AP}
    assert {a.name for a in entry.authors} == {"Newslooks", "AP"}
    content = entry.content[0].value
    assert KIM_NEWSLOOKS in content and KIM_AP in content
    assert "Share" not in content.split("Reported by")[0]
    assert content.count(CAPTION) <= 1
    published = datetime.fromisoformat(entry.published)
    assert published.tzinfo is not None and published.astimezone(UTC).year >= 2024
