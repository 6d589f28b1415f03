"""[I/O] The state: per-source state, subscriptions and items, in SQLite.

The connection, migrations and transactions are ``database.py``'s; the story
tables are ``story_store.py``'s; :class:`SQLiteStore` is all of them, the one
object the rest of the program holds. Datetimes are written as ISO-8601 UTC
strings by explicit functions (sqlite3's default adapters are deprecated).
Time is always a parameter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .dedupe import Decision, Known, decide
from .model import Item
from .normalize import canonical_url
from .opml import Subscription
from .politeness import Politeness
from .schema import ITEM_COLUMNS, from_iso, item_from_row, item_row, to_iso
from .story_store import StoryRow, StoryStore

__all__ = ["SQLiteStore", "SourceState", "StoryRow", "open_store"]


@dataclass(frozen=True, slots=True)
class SourceState:
    """What we remember of a source between runs."""

    etag: str | None = None
    last_modified: str | None = None
    status: str | None = None  # "ok", "not-modified" or "error"
    message: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    items: int = 0
    politeness: Politeness = field(default_factory=Politeness)


class SQLiteStore(StoryStore):
    """Where items, stories and per-source state live between runs: one SQLite file.

    Contract: datetimes go in and come out timezone-aware UTC; every method
    raises :class:`StorageError` (never ``sqlite3.Error``); each write method
    is one transaction, so a failure leaves what was stored before intact;
    closing and reopening the same path gives back the same state.
    """

    # -- sources -------------------------------------------------------------

    def source_state(self, key: str) -> SourceState:
        rows = self._query("SELECT * FROM sources WHERE key = ?", (key,))
        count = self._query("SELECT count(*) FROM items WHERE source = ?", (key,))[0][0]
        if not rows:
            return SourceState(items=count)
        row = rows[0]
        return SourceState(
            etag=row["etag"],
            last_modified=row["last_modified"],
            status=row["status"],
            message=row["message"],
            last_attempt=from_iso(row["last_attempt"]),
            last_success=from_iso(row["last_success"]),
            items=count,
            politeness=Politeness(
                failures=row["failures"],
                next_fetch=from_iso(row["next_fetch"]),
                gone=bool(row["gone"]),
                moved_to=row["moved_to"],
                moved_seen=row["moved_seen"],
                url=row["url"],
            ),
        )

    def save_source_state(self, key: str, state: SourceState) -> None:
        with self._transaction() as db:
            self._put_source(db, key, state)

    def _put_source(self, db: sqlite3.Connection, key: str, state: SourceState) -> None:
        p = state.politeness
        values = {
            "key": key,
            "etag": state.etag,
            "last_modified": state.last_modified,
            "status": state.status,
            "message": state.message,
            "last_attempt": to_iso(state.last_attempt),
            "last_success": to_iso(state.last_success),
            "failures": p.failures,
            "next_fetch": to_iso(p.next_fetch),
            "gone": int(p.gone),
            "moved_to": p.moved_to,
            "moved_seen": p.moved_seen,
            "url": p.url,
        }
        names = ", ".join(values)
        marks = ", ".join("?" * len(values))
        db.execute(
            f"INSERT OR REPLACE INTO sources ({names}) VALUES ({marks})", list(values.values())
        )

    def subscriptions(self) -> list[Subscription]:
        """Feeds added with ``aggregator add`` or ``import-opml``, oldest first."""
        rows = self._query("SELECT url, title FROM subscriptions ORDER BY added, url")
        return [Subscription(row[0], row[1]) for row in rows]

    def subscribe(self, subscriptions: Sequence[Subscription], now: datetime) -> int:
        """Add these feeds (a feed already there keeps its entry); returns how many were new."""
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?, ?)",
                [(s.url, s.title, to_iso(now)) for s in subscriptions],
            )
            return db.total_changes - before

    def unsubscribe(self, url: str) -> bool:
        """Remove a feed added from the command line; False when it was not there."""
        with self._transaction() as db:
            return db.execute("DELETE FROM subscriptions WHERE url = ?", (url,)).rowcount > 0

    # -- items ---------------------------------------------------------------

    def update_source(
        self,
        key: str,
        items: Sequence[Item],
        state: SourceState,
        features: Mapping[str, bytes] | None = None,
    ) -> tuple[list[Item], int]:
        """Store a source's new and edited items and its state, in one transaction;
        returns the new items and how many were edited. *features* are the
        clusterer's, by item id, stored beside the items (opaque here)."""
        features = features or {}
        new: list[Item] = []
        changed = 0
        with self._transaction() as db:
            # Matched all at once, as each would be matched alone: no item of
            # the batch can match another (they are unique), and an insert
            # moves no match. An edit can, so after one each is matched anew.
            matched: Sequence[Known | None] | None = self._match_all(db, items)
            for n, item in enumerate(items):
                known = matched[n] if matched is not None else self._match(db, item)
                decision = decide(item, known)
                if decision is Decision.NEW:
                    self._insert(db, item, features.get(item.id))
                    new.append(item)
                elif decision is Decision.CHANGED:
                    assert known is not None
                    self._update(db, known.id, item, features.get(item.id))
                    changed += 1
                    matched = None
            self._put_source(db, key, state)
        return new, changed

    def _match(self, db: sqlite3.Connection, item: Item) -> Known | None:
        columns = "id, source, guid, url, fingerprint, title, updated"
        probes: list[tuple[str, tuple[Any, ...]]] = []
        if item.guid:
            probes.append(("source = ? AND guid = ?", (item.source, item.guid)))
        if item.url:
            probes.append(("url = ?", (item.url,)))
        probes.append(("fingerprint = ?", (item.fingerprint,)))
        for where, params in probes:
            row = db.execute(
                f"SELECT {columns} FROM items WHERE {where} LIMIT 1", params
            ).fetchone()
            if row is not None:
                return Known(*row)
        return None

    def _match_all(self, db: sqlite3.Connection, items: Sequence[Item]) -> list[Known | None]:
        """``_match`` of each item, in three queries a chunk instead of three an
        item (a first refresh of 1,000 feeds made 75,000 probes). Where several
        rows match a probe, the first stored wins, as ``LIMIT 1`` over the index
        picks it."""
        columns = "rowid, id, source, guid, url, fingerprint, title, updated"
        found: dict[tuple[str, ...], tuple[int, Known]] = {}

        def keep(key: tuple[str, ...], row: sqlite3.Row) -> None:
            if key not in found or row[0] < found[key][0]:
                found[key] = (row[0], Known(*row[1:]))

        for source in {i.source for i in items if i.guid}:
            guids = [i.guid for i in items if i.guid and i.source == source]
            sql = f"SELECT {columns} FROM items WHERE source = ? AND guid IN ({{}})"
            for row in self._query_in(sql, guids, db, prefix=(source,)):
                keep(("guid", row["source"], row["guid"]), row)
        urls = [i.url for i in items if i.url]
        for row in self._query_in(f"SELECT {columns} FROM items WHERE url IN ({{}})", urls, db):
            keep(("url", row["url"]), row)
        prints = [i.fingerprint for i in items]
        sql = f"SELECT {columns} FROM items WHERE fingerprint IN ({{}})"
        for row in self._query_in(sql, prints, db):
            keep(("fp", row["fingerprint"]), row)

        def match(item: Item) -> Known | None:
            probes: list[tuple[str, ...]] = [("guid", item.source, item.guid)] if item.guid else []
            probes += [("url", item.url)] if item.url else []
            for probe in (*probes, ("fp", item.fingerprint)):
                if probe in found:
                    return found[probe][1]
            return None

        return [match(item) for item in items]

    def _insert(self, db: sqlite3.Connection, item: Item, features: bytes | None) -> None:
        values = (*item_row(item), features)
        marks = ", ".join("?" * len(values))
        db.execute(f"INSERT INTO items ({ITEM_COLUMNS}, features) VALUES ({marks})", values)

    def _update(
        self, db: sqlite3.Connection, item_id: str, item: Item, features: bytes | None
    ) -> None:
        # The id, the first-seen time and the story membership stay as they were.
        names = [*(c.strip() for c in ITEM_COLUMNS.split(",")), "features"]
        values = (*item_row(item), features)
        keep = {"id", "seen"}
        sets = ", ".join(f"{n} = ?" for n in names if n not in keep)
        params = [v for n, v in zip(names, values, strict=True) if n not in keep]
        db.execute(f"UPDATE items SET {sets} WHERE id = ?", (*params, item_id))

    def unclustered(self, text_chars: int | None = None, limit: int | None = None) -> list[Item]:
        """Items in no story yet, in publication order (dated by date, then
        undated; ties by id), at most *limit* of them. With *text_chars*, as
        much as the clusterer reads: text cut there, no summary or HTML."""
        ids = self.unclustered_ids()
        return [item for item, _ in self.to_cluster(ids[:limit], text_chars)]

    def unclustered_ids(self) -> list[str]:
        """The ids of the items in no story yet, in publication order.

        Ids alone: sorting whole rows (text and all) was 4.6 s of a first
        refresh of 25,000 items when done once a batch; this takes 0.1 s."""
        rows = self._query(
            "SELECT id FROM pending JOIN items ON id = item_id"
            " ORDER BY published IS NULL, published, id"
        )
        return [row[0] for row in rows]

    def to_cluster(
        self, item_ids: Sequence[str], text_chars: int | None = None
    ) -> list[tuple[Item, bytes | None]]:
        """These items, in this order, with their stored clustering features.
        With *text_chars*, as much as the clusterer reads: text cut there, no
        summary or HTML."""
        columns = ITEM_COLUMNS
        if text_chars is not None:
            light = (
                f"'' AS summary, substr(text, 1, {int(text_chars)}) AS text, '' AS content_html,"
            )
            columns = columns.replace(" summary, text, content_html,", f" {light}")
        sql = f"SELECT {columns}, features FROM items WHERE id IN ({{}})"
        rows = {row["id"]: row for row in self._query_in(sql, item_ids)}
        return [
            (item_from_row(row), row["features"])
            for row in (rows.get(item_id) for item_id in item_ids)
            if row is not None
        ]

    def unclustered_span(self) -> tuple[datetime | None, bool]:
        """The oldest publication date among items in no story, and whether any is undated."""
        row = self._query(
            "SELECT min(published), count(*) - count(published) FROM pending"
            " JOIN items ON id = item_id"
        )[0]
        return from_iso(row[0]), bool(row[1])

    def items(self, ids: Iterable[str]) -> list[Item]:
        sql = f"SELECT {ITEM_COLUMNS} FROM items WHERE id IN ({{}})"
        return [item_from_row(row) for row in self._query_in(sql, ids)]

    def find_item(self, key: str) -> Item | None:
        """The item with this id, a unique id prefix, or this (canonical) URL."""
        rows = self._query(f"SELECT {ITEM_COLUMNS} FROM items WHERE id = ?", (key,))
        if not rows and len(key) >= 4 and key.isalnum():
            rows = self._query(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE id LIKE ? LIMIT 2", (key + "%",)
            )
        if not rows:
            rows = self._query(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE url IN (?, ?) LIMIT 2",
                (key, canonical_url(key)),
            )
        return item_from_row(rows[0]) if len(rows) == 1 else None


def open_store(path: Path) -> SQLiteStore:
    """Open (creating and migrating if needed) the state database at *path*.

    Raises:
        StorageError: the file cannot be opened or is not our database.
    """
    return SQLiteStore(path)
