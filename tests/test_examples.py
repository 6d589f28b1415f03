"""The bundled example sources: one merged multi-outlet story, look-alikes kept apart,
and the same stories whether the items arrive in one refresh or over several."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from aggregator.config import load_config
from aggregator.pipeline import refresh
from aggregator.store import open_store
from tests.conftest import REPO

NOW = datetime(2024, 12, 1, tzinfo=UTC)


def stories_of(config_path: Path, now: datetime = NOW):
    config = load_config(config_path)
    store = open_store(config.database)
    try:
        refresh(config, store, now)
        return store.stories(100)
    finally:
        store.close()


def bundled(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "feeds", tmp_path / "feeds")
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"


def by_title(stories):
    return {m.title: s for s in stories for m in s.members}


def test_the_example_event_is_one_story_from_five_outlets(tmp_path):
    stories = stories_of(bundled(tmp_path))
    kim = [s for s in stories if any("Belousov" in m.text for m in s.members)]
    assert len(kim) == 1
    assert len(kim[0].outlets) == 5
    # Nothing about the meeting is merged with the football, the budget or the tablet.
    for story in stories:
        texts = " ".join(m.text for m in story.members)
        topics = {"Belousov" in texts, "Kestrels" in texts, "budget" in texts, "e-ink" in texts}
        assert sum(topics) <= 1, [m.title for m in story.members]


def test_a_refresh_equals_the_same_items_arriving_over_days(tmp_path):
    at_once = stories_of(bundled(tmp_path / "once"))

    root = tmp_path / "days"
    config = bundled(root)
    articles = root / "feeds" / "articles"
    parked = root / "parked"
    parked.mkdir()
    items = {m.title: m for s in at_once for m in s.members}
    # Day by day: park the article files, bring them back oldest first with a
    # refresh after each, then the feed files, whose items are older still.
    files = sorted(articles.iterdir())
    for f in files:
        shutil.move(f, parked / f.name)
    shutil.move(root / "feeds" / "local", root / "parked-local")
    (root / "feeds" / "local").mkdir()
    order = sorted(files, key=lambda f: _published(items, f.name))
    for f in order:
        shutil.move(parked / f.name, articles / f.name)
        stories_of(config)
    shutil.rmtree(root / "feeds" / "local")
    shutil.move(root / "parked-local", root / "feeds" / "local")
    over_days = stories_of(config)

    def shape(stories):
        return {s.id: frozenset(m.title for m in s.members) for s in stories}

    assert shape(over_days) == shape(at_once)


def _published(items, name: str) -> datetime:
    return next(m.date for m in items.values() if m.guid == f"file:{name}")
