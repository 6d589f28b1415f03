"""[I/O] The state's SQLite connection: schema migrations, transactions, queries.

SQLite runs in WAL mode with foreign keys on; the schema is versioned with
``PRAGMA user_version`` and migrated forward on open (``schema.py``). The
tables are read and written by the classes built on this one: ``store.py``
(sources and items) and ``story_store.py`` (stories and their topics).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import StorageError
from .schema import MIGRATIONS

__all__ = ["Database"]

# Ids bound per query: SQLite allowed at most 999 parameters before 3.32.
_CHUNK = 500


class Database:
    """One SQLite file, opened and migrated; every failure is a :class:`StorageError`."""

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

    def meta(self, key: str) -> bytes | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

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
