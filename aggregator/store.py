"""[I/O] The state: items, stories, topics and per-source state, in SQLite.

SQLite runs in WAL mode with foreign keys on; the schema is versioned with
``PRAGMA user_version`` and migrated forward on open. Datetimes are written as
ISO-8601 UTC strings by explicit functions (sqlite3's default adapters are
deprecated). Time is always a parameter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .dedupe import Decision, Known, decide
from .errors import StorageError
from .model import Item, Story, Topic
from .normalize import canonical_url
from .opml import Subscription
from .politeness import Politeness
from .schema import ITEM_COLUMNS, MIGRATIONS, from_iso, item_from_row, item_row, to_iso

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


@dataclass(frozen=True, slots=True)
class StoryRow:
    """A story as the clusterer leaves it: membership is stored in ``members``.

    ``signature`` and ``entry`` are the clusterer's, opaque here.
    """

    id: str
    lead_id: str
    first: datetime
    last: datetime
    signature: bytes
    entry: str


_GENERATION = "clusters.generation"
# Ids bound per query: SQLite allowed at most 999 parameters before 3.32.
_CHUNK = 500


class SQLiteStore:
    """Where items, stories and per-source state live between runs: one SQLite file.

    Contract: datetimes go in and come out timezone-aware UTC; every method
    raises :class:`StorageError` (never ``sqlite3.Error``); each write method
    is one transaction, so a failure leaves what was stored before intact;
    closing and reopening the same path gives back the same state.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, one per write method.
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(str(self.path), "cannot open the state database") from exc

    def _migrate(self) -> None:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StorageError(
                str(self.path), f"schema version {version} is newer than this program"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._transaction():
                for statement in _statements(script):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(str(self.path), "database error") from exc

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(str(self.path), "database error") from exc

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

    def _query_in(
        self,
        sql: str,
        values: Iterable[str],
        db: sqlite3.Connection | None = None,
        prefix: Sequence[str] = (),
    ) -> Iterator[sqlite3.Row]:
        """Run *sql*, whose ``IN ({})`` takes *values* (after *prefix*'s
        parameters), in chunks under SQLite's limit on bound parameters; on *db*,
        inside its transaction, when given."""
        wanted = list(values)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            statement = sql.format(", ".join("?" * len(chunk)))
            if db is None:
                yield from self._query(statement, (*prefix, *chunk))
            else:
                yield from db.execute(statement, (*prefix, *chunk)).fetchall()

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

    # -- stories -------------------------------------------------------------

    def index_entries(self, since: datetime | None) -> list[str]:
        where, params = ("WHERE last >= ?", (to_iso(since),)) if since else ("", ())
        return [row[0] for row in self._query(f"SELECT entry FROM stories {where}", params)]

    def signatures(self, story_ids: Iterable[str]) -> dict[str, bytes]:
        """The stored signatures of these stories (those that exist)."""
        sql = "SELECT id, signature FROM stories WHERE id IN ({})"
        return {row[0]: bytes(row[1]) for row in self._query_in(sql, story_ids)}

    def save_clusters(
        self,
        members: Sequence[tuple[str, str]],
        stories: Sequence[StoryRow],
        merged: Sequence[tuple[str, str]],
    ) -> int:
        """Write story rows and point items at them, in one transaction; returns
        the new :meth:`generation`.

        *members* are (item id, story id); *merged* are (absorbed story id,
        surviving story id): the absorbed story's items move over and its row
        goes.
        """
        with self._transaction() as db:
            # An upsert, not INSERT OR REPLACE: a replace deletes the row first,
            # and the foreign key would then cut every item loose from its story.
            db.executemany(
                "INSERT INTO stories (id, lead_id, first, last, signature, entry)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " lead_id = excluded.lead_id, first = excluded.first, last = excluded.last,"
                " signature = excluded.signature, entry = excluded.entry",
                [
                    (s.id, s.lead_id, to_iso(s.first), to_iso(s.last), s.signature, s.entry)
                    for s in stories
                ],
            )
            db.executemany(
                "INSERT INTO members VALUES (?, ?)"
                " ON CONFLICT (item_id) DO UPDATE SET story_id = excluded.story_id",
                members,
            )
            for old, new in merged:
                db.execute("UPDATE members SET story_id = ? WHERE story_id = ?", (new, old))
                db.execute("DELETE FROM stories WHERE id = ?", (old,))
            db.execute(
                "INSERT INTO meta VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
                (_GENERATION,),
            )
            generation: int = db.execute(
                "SELECT value FROM meta WHERE key = ?", (_GENERATION,)
            ).fetchone()[0]
        return generation

    def generation(self) -> int:
        """A counter that every write of stories moves on, in any process: a
        clusterer kept in memory is stale once it differs from its own."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (_GENERATION,))
        return int(rows[0][0]) if rows else 0

    def meta(self, key: str) -> bytes | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def story_rows(self, story_ids: Iterable[str]) -> dict[str, StoryRow]:
        out: dict[str, StoryRow] = {}
        for row in self._query_in("SELECT * FROM stories WHERE id IN ({})", story_ids):
            first, last = from_iso(row["first"]), from_iso(row["last"])
            assert first is not None and last is not None
            out[row["id"]] = StoryRow(
                row["id"], row["lead_id"], first, last, bytes(row["signature"]), row["entry"]
            )
        return out

    def story_members(
        self, story_ids: Iterable[str], *, html: bool = True
    ) -> dict[str, list[Item]]:
        """The members of these stories; without *html*, each with its
        ``content_html`` left empty (tagging reads text: a third of the bytes)."""
        out: dict[str, list[Item]] = {}
        columns = ITEM_COLUMNS
        if not html:
            columns = columns.replace(" content_html,", " '' AS content_html,")
        sql = (
            f"SELECT m.story_id AS story_id, {columns} FROM members m"
            " JOIN items ON items.id = m.item_id WHERE m.story_id IN ({})"
        )
        for row in self._query_in(sql, story_ids):
            out.setdefault(row["story_id"], []).append(item_from_row(row))
        return out

    def stories(
        self,
        limit: int,
        since: datetime | None = None,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> list[Story]:
        """The *limit* most recently updated stories, members in publication order,
        with their topics; only those tagged with a term of *include* (if any) and
        none of *exclude*."""
        where, params = ["1"], []
        if since:
            where.append("last >= ?")
            params.append(to_iso(since))
        tagged = "EXISTS (SELECT 1 FROM story_topics t WHERE t.story_id = id AND t.term IN ({}))"
        if include:
            where.append(tagged.format(", ".join("?" * len(include))))
            params.extend(include)
        if exclude:
            where.append("NOT " + tagged.format(", ".join("?" * len(exclude))))
            params.extend(exclude)
        rows = self._query(
            f"SELECT id, lead_id FROM stories WHERE {' AND '.join(where)}"
            " ORDER BY last DESC, id LIMIT ?",
            [*params, limit],
        )
        ids = [row["id"] for row in rows]
        members, topics = self.story_members(ids), self.topics(ids)
        out = []
        for row in rows:
            items = sorted(members.get(row["id"], []), key=lambda m: (m.date, m.id))
            if items and any(m.id == row["lead_id"] for m in items):
                out.append(
                    Story(row["id"], row["lead_id"], tuple(items), topics.get(row["id"], ()))
                )
        return out

    def story_count(self, since: datetime | None = None) -> int:
        """How many stories were last updated at or after *since* (all, without)."""
        if since is None:
            rows = self._query("SELECT count(*) FROM stories")
        else:
            rows = self._query("SELECT count(*) FROM stories WHERE last >= ?", (to_iso(since),))
        return int(rows[0][0])

    def topics(self, story_ids: Iterable[str]) -> dict[str, tuple[Topic, ...]]:
        """Each story's topics, in rank order."""
        out: dict[str, list[Topic]] = {}
        sql = (
            "SELECT story_id, term, label FROM story_topics WHERE story_id IN ({})"
            " ORDER BY story_id, rank"
        )
        for row in self._query_in(sql, story_ids):
            out.setdefault(row[0], []).append(Topic(row[1], row[2]))
        return {key: tuple(value) for key, value in out.items()}

    def set_topics(self, topics: dict[str, tuple[Topic, ...]]) -> None:
        """Replace the topics of these stories, in one transaction."""
        with self._transaction() as db:
            for story_id, tags in topics.items():
                db.execute("DELETE FROM story_topics WHERE story_id = ?", (story_id,))
                db.executemany(
                    "INSERT OR IGNORE INTO story_topics VALUES (?, ?, ?, ?)",
                    [(story_id, rank, t.term, t.label) for rank, t in enumerate(tags)],
                )

    def topic_counts(self) -> list[tuple[Topic, int]]:
        """Every topic with its number of stories, most stories first."""
        rows = self._query(
            "SELECT term, min(label), count(*) FROM story_topics GROUP BY term"
            " ORDER BY count(*) DESC, term"
        )
        return [(Topic(row[0], row[1]), row[2]) for row in rows]

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error as exc:
            raise StorageError(str(self.path), "cannot close the state database") from exc


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of *script*, a trigger's body (which holds ';') whole."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""
    if statement.strip(" \n;"):
        yield statement


def open_store(path: Path) -> SQLiteStore:
    """Open (creating and migrating if needed) the state database at *path*.

    Raises:
        StorageError: the file cannot be opened or is not our database.
    """
    return SQLiteStore(path)
