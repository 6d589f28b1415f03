"""[I/O] Folder sources: feed files and article files, decided per file.

A folder may hold ``.xml .rss .atom .rdf`` feed files and ``.txt .md .html``
article files side by side. A file that cannot be read or parsed is recorded
as a warning naming it; the rest of the folder still comes in. Hidden files
and editor leftovers are skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from .articles import read_article
from .errors import ParseError
from .model import Entry
from .normalize import with_feed_language
from .parse import parse_feed

__all__ = ["ARTICLE_SUFFIXES", "FEED_SUFFIXES", "FolderRead", "folder_signature", "read_folder"]

FEED_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".rdf"})
ARTICLE_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
# An .html or .txt file that is really a feed (someone saved one from a browser).
_FEED_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(rss|feed|rdf:RDF)\b", re.S)


@dataclass(frozen=True, slots=True)
class FolderRead:
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...]


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith((".", "#", "~")) for part in relative.parts):
            continue
        if path.name.endswith(("~", ".tmp", ".part", ".swp")):
            continue
        if path.suffix.lower() in FEED_SUFFIXES | ARTICLE_SUFFIXES and path.is_file():
            yield path


def folder_signature(folder: Path) -> str:
    """A hash of every source file's name, size and modification time.

    Raises:
        ParseError: the folder does not exist or cannot be listed.
    """
    if not folder.is_dir():
        raise ParseError(str(folder), "no such folder")
    digest = hashlib.sha256()
    try:
        for path in _files(folder):
            stat = path.stat()
            digest.update(
                f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    except OSError as exc:
        raise ParseError(str(folder), "cannot list folder") from exc
    return digest.hexdigest()


def read_folder(folder: Path, source: str) -> FolderRead:
    """Read every feed and article file in *folder* (recursively).

    Raises:
        ParseError: the folder is missing, or it has files and none could be read.
    """
    if not folder.is_dir():
        raise ParseError(str(folder), "no such folder")
    entries: list[Entry] = []
    warnings: list[str] = []
    files = 0
    for path in _files(folder):
        files += 1
        try:
            entries.extend(_read_file(path, folder, source))
        except ParseError as exc:
            warnings.append(str(exc))
        except OSError as exc:
            warnings.append(str(ParseError(str(path), f"cannot read: {exc.strerror or exc}")))
    if files and not entries and warnings:
        raise ParseError(str(folder), f"no file could be read ({warnings[0]})")
    return FolderRead(tuple(entries), tuple(warnings))


def _read_file(path: Path, folder: Path, source: str) -> list[Entry]:
    data = path.read_bytes()
    is_feed = path.suffix.lower() in FEED_SUFFIXES or _FEED_START.match(data[:4096]) is not None
    if is_feed:
        return list(
            with_feed_language(parse_feed(data, source=source, origin=path.as_uri()).entries)
        )
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    entry = read_article(data, path=str(path), source=source, mtime=mtime)
    # An article file has no GUID or URL of its own: its place in the folder is
    # its identity, so editing the file updates the item instead of adding one.
    return [replace(entry, guid=entry.guid or f"file:{path.relative_to(folder).as_posix()}")]
