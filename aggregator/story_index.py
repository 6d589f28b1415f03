"""Compact story signatures and the inverted index that finds candidate stories.

Pure: no I/O, no clock. A ``Signature`` is what the clusterer remembers of a
story; the store persists it with ``to_bytes()`` and hands it back on the next
run. Weights are float32 both in memory and on disk, so a clusterer rebuilt
from stored signatures computes bit-identical scores.
"""

from __future__ import annotations

import heapq
import json
import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from operator import itemgetter, mul
from typing import Any

from .features import Vector, top

__all__ = ["Signature", "SparseVector", "StoryIndex"]


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Capped term weights: ``keys`` heaviest first, ``weights`` packed float32.

    Weights are sums over members of their normalised vectors, so adding a
    member is a vector sum and ``norm`` turns a dot product into a cosine.
    """

    keys: tuple[str, ...] = ()
    weights: bytes = b""
    norm: float = 0.0

    @classmethod
    def of(cls, vector: Mapping[str, float], keep: int) -> SparseVector:
        kept = top(vector, keep)
        packed = array("f", kept.values())
        norm = math.sqrt(sum(w * w for w in packed))
        return cls(tuple(kept), packed.tobytes(), norm)

    def values(self) -> array[float]:
        out = array("f")
        out.frombytes(self.weights)
        return out

    def items(self) -> zip[tuple[str, float]]:
        return zip(self.keys, self.values(), strict=True)

    def as_dict(self) -> Vector:
        return dict(self.items())

    def plus(self, other: Mapping[str, float], keep: int) -> SparseVector:
        total = self.as_dict()
        for key, weight in other.items():
            total[key] = total.get(key, 0.0) + weight
        return SparseVector.of(total, keep)

    def cosine(self, vector: Mapping[str, float]) -> float:
        """Cosine with a normalised dict vector."""
        if self.norm == 0.0:
            return 0.0
        # map/sum run in C: this is the inner loop of every decision.
        found = map(vector.get, self.keys, repeat(0.0))
        return float(sum(map(mul, self.values(), found))) / self.norm

    def to_json(self) -> list[Any]:
        return [list(self.keys), list(self.values())]

    @classmethod
    def from_json(cls, data: list[Any]) -> SparseVector:
        keys, weights = data
        packed = array("f", weights)
        norm = math.sqrt(sum(w * w for w in packed))
        return cls(tuple(keys), packed.tobytes(), norm)


@dataclass(frozen=True, slots=True)
class Signature:
    """What the clusterer keeps of one story.

    ``first``/``last`` span the members' own dates (None while every member
    is undated); ``count`` members have been added.
    """

    story_id: str
    first: datetime | None
    last: datetime | None
    count: int
    terms: SparseVector = field(default_factory=SparseVector)
    entities: SparseVector = field(default_factory=SparseVector)
    title: SparseVector = field(default_factory=SparseVector)

    def to_dict(self) -> dict[str, Any]:
        return {
            "story_id": self.story_id,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "count": self.count,
            "terms": self.terms.to_json(),
            "entities": self.entities.to_json(),
            "title": self.title.to_json(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        return cls(
            story_id=data["story_id"],
            first=datetime.fromisoformat(data["first"]) if data["first"] else None,
            last=datetime.fromisoformat(data["last"]) if data["last"] else None,
            count=data["count"],
            terms=SparseVector.from_json(data["terms"]),
            entities=SparseVector.from_json(data["entities"]),
            title=SparseVector.from_json(data["title"]),
        )

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        """Raises: ValueError (or a subclass) on bytes not made by ``to_bytes``."""
        return cls.from_dict(json.loads(data))

    def age_key(self) -> tuple[bool, datetime, str]:
        """Older stories sort first: dated before undated, then by first date, then id."""
        return (self.first is None, self.first or datetime.max, self.story_id)


class StoryIndex:
    """Signatures by story id, and posting lists from salient keys to stories.

    Posting lists only grow: a key a story no longer ranks high for stays
    listed (a harmless extra candidate) and merged-away stories are skipped on
    read. Only the newest ``scan`` postings of a key are read, so a word that
    half the archive shares costs the same at 100,000 stories as at 1,000.
    """

    def __init__(self, index_keys: int, scan: int) -> None:
        self._index_keys = index_keys
        self._scan = scan
        self.signatures: dict[str, Signature] = {}
        self._numbers: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._postings: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.signatures)

    def put(self, signature: Signature) -> None:
        sid = signature.story_id
        old = self.signatures.get(sid)
        number = self._numbers.get(sid)
        if number is None:
            number = self._numbers[sid] = len(self._ids)
            self._ids.append(sid)
        self.signatures[sid] = signature
        seen = set(self._salient(old)) if old is not None else set()
        for key in self._salient(signature):
            if key not in seen:
                self._postings.setdefault(key, []).append(number)

    def remove(self, story_id: str) -> None:
        del self.signatures[story_id]
        number = self._numbers.pop(story_id)
        self._ids[number] = None

    def _salient(self, signature: Signature) -> Iterable[str]:
        yield from signature.terms.keys[: self._index_keys]
        yield from ("\0" + k for k in signature.entities.keys[: self._index_keys // 2])

    def candidates(self, terms: Vector, entities: Vector, limit: int) -> list[Signature]:
        """Stories sharing the most weight of the item's salient keys, best first."""
        hits: dict[int, float] = {}
        keys = [(k, w) for k, w in list(terms.items())[: self._index_keys]]
        keys += [("\0" + k, w) for k, w in list(entities.items())[: self._index_keys // 2]]
        for key, weight in keys:
            postings = self._postings.get(key)
            if not postings:
                continue
            for number in postings[-self._scan :]:
                hits[number] = hits.get(number, 0.0) + weight
        # Dead (merged) stories are few; fetch some spares so they cannot crowd out.
        ranked = heapq.nlargest(limit + 8, hits.items(), key=itemgetter(1))
        out: list[Signature] = []
        for number, _ in ranked:
            sid = self._ids[number]
            if sid is not None:
                out.append(self.signatures[sid])
                if len(out) >= limit:
                    break
        return out
