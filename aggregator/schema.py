"""The SQLite schema of the state, its migrations, and item rows.

Migrations are keyed on ``PRAGMA user_version``: the database at version N
runs ``MIGRATIONS[N:]`` in order, each in its own transaction (``database.py``).
Datetimes are written as ISO-8601 UTC strings by explicit functions, never by
sqlite3's deprecated default adapters.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from .model import Item, check_utc

__all__ = ["ITEM_COLUMNS", "MIGRATIONS", "from_iso", "item_from_row", "item_row", "to_iso"]


def to_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    check_utc("datetime", value)
    return value.isoformat()


def from_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE sources (
        key TEXT PRIMARY KEY,
        etag TEXT, last_modified TEXT,
        status TEXT, message TEXT,
        last_attempt TEXT, last_success TEXT
    );
    CREATE TABLE stories (
        id TEXT PRIMARY KEY,
        lead_id TEXT NOT NULL,
        first TEXT NOT NULL,
        last TEXT NOT NULL,
        signature BLOB NOT NULL
    );
    CREATE INDEX stories_last ON stories (last);
    CREATE TABLE items (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        guid TEXT, url TEXT, fingerprint TEXT NOT NULL,
        title TEXT NOT NULL, summary TEXT NOT NULL, text TEXT NOT NULL,
        content_html TEXT NOT NULL,
        published TEXT, updated TEXT, seen TEXT NOT NULL,
        author TEXT, outlet TEXT NOT NULL, tags TEXT NOT NULL, language TEXT,
        story_id TEXT REFERENCES stories (id) ON DELETE SET NULL
    );
    CREATE INDEX items_guid ON items (source, guid);
    CREATE INDEX items_url ON items (url);
    CREATE INDEX items_fingerprint ON items (fingerprint);
    CREATE INDEX items_story ON items (story_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    """,
    # 2: a story's index entry (id, date span, salient keys) beside its
    # signature, so the clusterer's index loads without decoding signatures.
    """
    ALTER TABLE stories ADD COLUMN entry TEXT NOT NULL DEFAULT '';
    """,
    # 3: topic tags, ranked, per story.
    """
    CREATE TABLE story_topics (
        story_id TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
        rank INTEGER NOT NULL,
        term TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (story_id, term)
    );
    CREATE INDEX story_topics_term ON story_topics (term);
    """,
    # 4: politeness per source: backoff, Retry-After and max-age floors, 410,
    # and permanent redirects confirmed before they are adopted.
    """
    ALTER TABLE sources ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN next_fetch TEXT;
    ALTER TABLE sources ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN moved_to TEXT;
    ALTER TABLE sources ADD COLUMN moved_seen INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN url TEXT;
    """,
    # 5: feeds subscribed from the command line (add, import-opml), beside
    # those of config.toml.
    """
    CREATE TABLE subscriptions (url TEXT PRIMARY KEY, title TEXT, added TEXT NOT NULL);
    """,
    # 6: an item's clustering features, extracted when it was normalised (in a
    # worker process during a big refresh) so the clusterer need not tokenise.
    """
    ALTER TABLE items ADD COLUMN features BLOB;
    """,
    # 7: which story each item is in, in a table of its own. Setting
    # items.story_id rewrote the whole row, text and HTML and all: 25,000
    # items cost 2.8 s of clustering, most of it writing 150 MB to the WAL.
    # items.story_id stays, unused from here on (SQLite cannot drop a column
    # that a foreign key uses). ``pending`` lists the items in no story, kept
    # so by triggers: finding them never reads the archive (deleting a story
    # still unclusters its items, by cascade and the last trigger).
    """
    CREATE TABLE members (
        item_id TEXT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
        story_id TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX members_story ON members (story_id);
    INSERT INTO members SELECT id, story_id FROM items WHERE story_id IS NOT NULL;
    UPDATE items SET story_id = NULL WHERE story_id IS NOT NULL;
    CREATE TABLE pending (
        item_id TEXT PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    INSERT INTO pending SELECT id FROM items WHERE id NOT IN (SELECT item_id FROM members);
    CREATE TRIGGER items_pending AFTER INSERT ON items BEGIN
        INSERT OR IGNORE INTO pending VALUES (new.id);
    END;
    CREATE TRIGGER members_placed AFTER INSERT ON members BEGIN
        DELETE FROM pending WHERE item_id = new.item_id;
    END;
    CREATE TRIGGER members_gone AFTER DELETE ON members BEGIN
        INSERT OR IGNORE INTO pending SELECT id FROM items WHERE id = old.item_id;
    END
    """,
)

ITEM_COLUMNS = (
    "id, source, guid, url, fingerprint, title, summary, text, content_html,"
    " published, updated, seen, author, outlet, tags, language"
)


def item_row(item: Item) -> tuple[Any, ...]:
    return (
        item.id,
        item.source,
        item.guid,
        item.url,
        item.fingerprint,
        item.title,
        item.summary,
        item.text,
        item.content_html,
        to_iso(item.published),
        to_iso(item.updated),
        to_iso(item.seen),
        item.author,
        item.outlet,
        json.dumps(list(item.tags), ensure_ascii=False),
        item.language,
    )


def item_from_row(row: sqlite3.Row) -> Item:
    seen = from_iso(row["seen"])
    assert seen is not None
    return Item(
        id=row["id"],
        source=row["source"],
        title=row["title"],
        url=row["url"],
        guid=row["guid"],
        summary=row["summary"],
        text=row["text"],
        content_html=row["content_html"],
        published=from_iso(row["published"]),
        updated=from_iso(row["updated"]),
        seen=seen,
        author=row["author"],
        outlet=row["outlet"],
        tags=tuple(json.loads(row["tags"])),
        language=row["language"],
        fingerprint=row["fingerprint"],
    )
