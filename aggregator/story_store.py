"""[I/O] Stories in the state: the clusterer's rows, their members, their topics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .database import Database
from .model import Item, Story, Topic
from .schema import ITEM_COLUMNS, from_iso, item_from_row, to_iso

__all__ = ["StoryRow", "StoryStore"]


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


class StoryStore(Database):
    """The story tables: what clustering saves and tagging and publishing read."""

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
