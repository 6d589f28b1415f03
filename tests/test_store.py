"""store.py: the Store contract, run against real SQLite files."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.errors import StorageError
from aggregator.model import Entry
from aggregator.normalize import normalize
from aggregator.store import SourceState, SQLiteStore, StoryRow, open_store

NOW = datetime(2024, 11, 30, 12, tzinfo=UTC)


def item(guid, source="feed-a", text="body", title="Title", published=NOW, link=None):
    entry = Entry(
        source=source,
        origin="o",
        title=title,
        guid=guid,
        link=link,
        summary=text,
        published=published,
    )
    return normalize(entry, NOW)


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path):
    # One contract suite; a second Store implementation joins the params.
    opened = open_store(tmp_path / "state" / "db.sqlite")
    yield opened
    opened.close()


def test_new_changed_unchanged_and_duplicates(store):
    new, changed = store.update_source(
        "feed-a", [item("1"), item("2", text="two")], SourceState(status="ok")
    )
    assert [i.guid for i in new] == ["1", "2"] and changed == 0
    new, changed = store.update_source(
        "feed-a", [item("1"), item("2", text="edited")], SourceState()
    )
    assert new == [] and changed == 1
    # Feed B syndicates feed A's first article word for word.
    new, changed = store.update_source("feed-b", [item("b-1")], SourceState())
    assert new == [] and changed == 0
    assert store.source_state("feed-a").items == 2
    assert store.source_state("feed-b").items == 0


def test_an_edit_keeps_the_id_and_first_seen_time(store):
    first = item("1")
    store.update_source("feed-a", [first], SourceState())
    later = replace(item("1", text="corrected"), seen=NOW + timedelta(days=1))
    store.update_source("feed-a", [later], SourceState())
    (stored,) = store.items([first.id])
    assert stored.text == "corrected"
    assert stored.seen == NOW


def test_datetimes_come_back_utc(store):
    store.update_source("feed-a", [item("1")], SourceState(last_attempt=NOW, last_success=NOW))
    (stored,) = store.unclustered()
    assert stored.published == NOW and stored.published.tzinfo is not None
    state = store.source_state("feed-a")
    assert state.last_attempt == NOW and state.last_attempt.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store):
    with pytest.raises(ValueError, match="UTC"):
        store.save_source_state("x", SourceState(last_attempt=datetime(2024, 1, 1)))


def test_a_failing_write_loses_nothing_stored_before(store, monkeypatch):
    store.update_source("feed-a", [item("1")], SourceState(etag="e1"))
    calls = []

    def failing_insert(db, it, features):
        calls.append(it)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        db.execute(
            "INSERT INTO items (id, source, fingerprint, title, summary, text, content_html,"
            " seen, outlet, tags) VALUES (?, ?, ?, '', '', '', '', ?, '', '[]')",
            (it.id, it.source, it.fingerprint, NOW.isoformat()),
        )

    monkeypatch.setattr(store, "_insert", failing_insert)
    with pytest.raises(StorageError, match="database error"):
        store.update_source(
            "feed-a", [item("2", text="x"), item("3", text="y")], SourceState(etag="e2")
        )
    # The half-done source rolled back: item 2 is gone, item 1 and the old ETag stay.
    assert [i.guid for i in store.unclustered()] == ["1"]
    assert store.source_state("feed-a").etag == "e1"


def test_reopening_gives_the_same_state(tmp_path):
    path = tmp_path / "db.sqlite"
    first = open_store(path)
    first.update_source("feed-a", [item("1")], SourceState(etag="e", status="ok"))
    first.close()
    again = open_store(path)
    try:
        assert again.source_state("feed-a").etag == "e"
        assert len(again.unclustered()) == 1
        assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert again._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        again.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StorageError, match="newer than this program"):
        open_store(path)


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError) as info:
        SQLiteStore(path)
    assert str(path) in str(info.value)


def test_clusters_stories_and_merges(store):
    a, b, c = (
        item("1", text="a"),
        item("2", text="b", published=NOW + timedelta(hours=1)),
        item("3", text="c"),
    )
    store.update_source("feed-a", [a, b, c], SourceState())
    rows = [
        StoryRow("story-1", a.id, NOW, NOW + timedelta(hours=1), b"sig1", "entry1"),
        StoryRow("story-2", c.id, NOW, NOW, b"sig2", "entry2"),
    ]
    store.save_clusters([(a.id, "story-1"), (b.id, "story-1"), (c.id, "story-2")], rows, [])
    assert store.unclustered() == []
    stories = store.stories(10)
    assert [s.id for s in stories] == ["story-1", "story-2"]
    assert [m.id for m in stories[0].members] == [a.id, b.id]
    assert sorted(store.index_entries(None)) == ["entry1", "entry2"]
    assert store.index_entries(NOW + timedelta(minutes=30)) == ["entry1"]
    assert store.signatures(["story-2", "nothing"]) == {"story-2": b"sig2"}
    assert store.story_rows(["story-1", "nothing"]) == {"story-1": rows[0]}
    # story-2 is folded into story-1: its items move, its row goes.
    store.save_clusters([], [replace(rows[0], signature=b"sig3")], [("story-2", "story-1")])
    (merged,) = store.stories(10)
    assert {m.id for m in merged.members} == {a.id, b.id, c.id}
    assert store.stories(1, since=NOW + timedelta(days=1)) == []


def test_find_item_by_id_prefix_or_url(store):
    it = item("1", link="https://example.org/a?utm_source=x")
    store.update_source("feed-a", [it], SourceState())
    assert store.find_item(it.id) == it
    assert store.find_item(it.id[:8]) == it
    assert store.find_item("https://example.org/a") == it
    assert store.find_item("nothing") is None


def test_a_batch_is_matched_as_each_item_would_be_alone(store):
    stored = [
        item("g1", link="https://a.example/1", text="one"),
        item("g2", link="https://a.example/2", text="two"),
        item(None, source="feed-b", link="https://a.example/4", text="four"),
    ]
    for it in stored:
        store.update_source(it.source, [it], SourceState())
    # An edit moves g2 to g1's URL and text: now two rows answer each probe,
    # and the first stored must win, as LIMIT 1 over the index picks it.
    store.update_source(
        "feed-a", [item("g2", link="https://a.example/1", text="one")], SourceState()
    )
    batch = [
        item("g2", text="edited"),  # same guid
        item("x1", link="https://a.example/1", text="new"),  # URL of g1 and g2
        item("x2", source="feed-b", text="one"),  # text of g1 and g2
        item("g1", source="feed-b", link="https://a.example/4"),  # guid of another source's
        item(None, link="https://a.example/9", text="nothing like it"),
    ]
    db = store._db
    assert store._match_all(db, batch) == [store._match(db, it) for it in batch]
    assert [k.id if k else None for k in store._match_all(db, batch)] == [
        stored[1].id,
        stored[0].id,
        stored[0].id,
        stored[2].id,
        None,
    ]


def test_a_state_of_schema_6_keeps_its_stories_on_migration(tmp_path):
    from aggregator.schema import MIGRATIONS

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:6], start=1):
        for statement in filter(str.strip, script.split(";")):
            old.execute(statement)
        old.execute(f"PRAGMA user_version = {number}")
    a, b = item("a"), item("b", text="other")
    for it in (a, b):
        old.execute(
            "INSERT INTO items (id, source, fingerprint, title, summary, text, content_html,"
            " seen, outlet, tags) VALUES (?, ?, ?, ?, '', ?, '', ?, 'o', '[]')",
            (it.id, it.source, it.fingerprint, it.title, it.text, NOW.isoformat()),
        )
    old.execute(
        "INSERT INTO stories VALUES ('s1', ?, ?, ?, x'00', '')",
        (a.id, NOW.isoformat(), NOW.isoformat()),
    )
    old.execute("UPDATE items SET story_id = 's1' WHERE id = ?", (a.id,))
    old.close()
    store = open_store(path)
    try:
        assert {k: [m.id for m in v] for k, v in store.story_members(["s1"]).items()} == {
            "s1": [a.id]
        }
        assert store.unclustered_ids() == [b.id]
        # Clustering goes on as before: b joins a new story that absorbs s1.
        s2 = StoryRow("s2", b.id, NOW, NOW, b"sig", "s2")
        store.save_clusters([(b.id, "s2")], [s2], [("s1", "s2")])
        members = store.story_members(["s1", "s2"])
        assert {k: sorted(m.id for m in v) for k, v in members.items()} == {
            "s2": sorted([a.id, b.id])
        }
        assert store.unclustered_ids() == []
        # A story that goes takes its memberships with it: its items wait again.
        store._db.execute("DELETE FROM stories WHERE id = 's2'")
        assert sorted(store.unclustered_ids()) == sorted([a.id, b.id])
    finally:
        store.close()


def test_story_members_without_html_are_the_members_with_no_html(store):
    store.update_source("feed-a", [item("a", text="<p>Body one</p>"), item("b")], SourceState())
    ids = store.unclustered_ids()
    row = StoryRow("s1", ids[0], NOW, NOW, b"sig", "entry")
    store.save_clusters([(i, "s1") for i in ids], [row], [])
    full, light = store.story_members(["s1"]), store.story_members(["s1"], html=False)
    assert [m.content_html for m in full["s1"]] and all(m.content_html for m in full["s1"])
    assert light == {"s1": [replace(m, content_html="") for m in full["s1"]]}
