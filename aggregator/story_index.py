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
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice, repeat
from operator import itemgetter, mul
from typing import Any

from .features import Vector, top

__all__ = ["IndexEntry", "Loader", "Signature", "SparseVector", "StoryIndex"]


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
        norm = math.sqrt(sum(map(mul, packed, packed)))
        # Interned: 100,000 stories share one copy of each word.
        return cls(tuple(map(sys.intern, kept)), packed.tobytes(), norm)

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
        # The float32 bytes as hex and the norm as a float: decoding is then a
        # few C calls, no per-weight Python work (bench/cluster_scale.py).
        return [list(self.keys), self.weights.hex(), self.norm]

    @classmethod
    def from_json(cls, data: list[Any]) -> SparseVector:
        keys, weights, norm = data
        # Not interned: a decoded signature lives for one refresh, and interning
        # its ~100 keys was half the cost of decoding it (bench/cluster_scale.py).
        return cls(tuple(keys), bytes.fromhex(weights), float(norm))


@dataclass(frozen=True, slots=True)
class Signature:
    """What the clusterer keeps of one story.

    ``first``/``last`` span the members' own dates (None while every member
    is undated); ``count`` members have been added. ``lead`` is the member
    whose headline and link lead, elected as members join (``cluster.py``),
    with the rank it was elected on.
    """

    story_id: str
    first: datetime | None
    last: datetime | None
    count: int
    terms: SparseVector = field(default_factory=SparseVector)
    entities: SparseVector = field(default_factory=SparseVector)
    title: SparseVector = field(default_factory=SparseVector)
    lead: str | None = None
    lead_rank: tuple[int, float] = (0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "story_id": self.story_id,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "count": self.count,
            "terms": self.terms.to_json(),
            "entities": self.entities.to_json(),
            "title": self.title.to_json(),
            "lead": self.lead,
            "lead_rank": list(self.lead_rank),
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
            lead=data["lead"],
            lead_rank=(int(data["lead_rank"][0]), float(data["lead_rank"][1])),
        )

    def to_bytes(self) -> bytes:
        """Lines of tab-separated fields: a header, then each vector as its
        norm, its float32 weights in hex and its keys. Keys never hold a tab or
        a newline (features._TOKEN). A fifth smaller than the JSON of
        ``to_dict`` and decoded in two thirds of its time (5,000 signatures of
        bench/cluster_scale.py: 55 ms against 81 ms)."""
        first = self.first.isoformat() if self.first else ""
        last = self.last.isoformat() if self.last else ""
        kind, score = self.lead_rank
        header = (_FORMAT, self.story_id, first, last, str(self.count), self.lead or "")
        lines = [_SEP.join((*header, str(kind), repr(score)))]
        for vector in (self.terms, self.entities, self.title):
            lines.append(_SEP.join((repr(vector.norm), vector.weights.hex(), *vector.keys)))
        return "\n".join(lines).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        """Raises: ValueError (or a subclass) on bytes not made by ``to_bytes``."""
        if data[:1] == b"{":  # JSON, as versions up to 0.1 wrote it
            return cls.from_dict(json.loads(data))
        head, *vectors = data.decode().split("\n")
        form, story_id, first, last, count, lead, kind, score = head.split(_SEP)
        if form != _FORMAT or len(vectors) != 3:
            raise ValueError(f"not a story signature: {data[:40]!r}")
        terms, entities, title = (_vector(line) for line in vectors)
        return cls(
            story_id,
            datetime.fromisoformat(first) if first else None,
            datetime.fromisoformat(last) if last else None,
            int(count),
            terms,
            entities,
            title,
            lead or None,
            (int(kind), float(score)),
        )


_FORMAT = "sig2"


def _vector(line: str) -> SparseVector:
    norm, weights, *keys = line.split(_SEP)
    return SparseVector(tuple(keys), bytes.fromhex(weights), float(norm))


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What the index keeps of a story without decoding its signature: its id,
    the span of its members' dates, and its salient keys. A few hundred bytes,
    so a window of 100,000 stories loads in a fraction of a second; the full
    signature is read only for the few stories an item is scored against.
    """

    story_id: str
    first: datetime | None
    last: datetime | None
    keys: tuple[str, ...]

    @classmethod
    def of(cls, signature: Signature, index_keys: int) -> IndexEntry:
        entities = signature.entities.keys[: index_keys // 2]
        keys = (*signature.terms.keys[:index_keys], *(_ENTITY + k for k in entities))
        return cls(signature.story_id, signature.first, signature.last, keys)

    def to_text(self) -> str:
        first = self.first.isoformat() if self.first else ""
        last = self.last.isoformat() if self.last else ""
        return _SEP.join((self.story_id, first, last, *self.keys))

    @classmethod
    def from_text(cls, text: str) -> IndexEntry:
        """Raises: ValueError on text not made by ``to_text``."""
        story_id, first, last, *keys = text.split(_SEP)
        return cls(
            story_id,
            datetime.fromisoformat(first) if first else None,
            datetime.fromisoformat(last) if last else None,
            tuple(map(sys.intern, keys)),
        )

    def in_window(self, when: datetime | None, window: timedelta) -> bool:
        if when is None or self.first is None or self.last is None:
            return True
        return self.first - window <= when <= self.last + window


# Tokens never hold a tab or a '#' (features._TOKEN), so these cannot clash.
_SEP = "\t"
_ENTITY = "#"

Loader = Callable[[Sequence[str]], Mapping[str, Signature]]
"""Reads the stored signatures of these story ids, all in one go."""


class StoryIndex:
    """Index entries by story id, posting lists from salient keys to stories,
    and the signatures decoded so far.

    Posting lists only grow: a key a story no longer ranks high for stays
    listed (a harmless extra candidate) and merged-away stories are skipped on
    read. Only the newest ``scan`` postings of a key are read, so a word that
    half the archive shares costs the same at 100,000 stories as at 1,000.
    Signatures of stored stories are decoded on first use through *load*.
    """

    def __init__(self, index_keys: int, scan: int, load: Loader | None = None) -> None:
        self._index_keys = index_keys
        self._scan = scan
        self.load = load
        self.entries: dict[str, IndexEntry] = {}
        self._signatures: dict[str, Signature] = {}
        self._numbers: dict[str, int] = {}
        self._ids: list[str | None] = []
        # Story numbers as int64 arrays: numpy reads a long list's tail in place.
        self._postings: dict[str, array[int]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, story_id: str) -> bool:
        return story_id in self.entries

    def put(self, signature: Signature) -> None:
        """Add or replace a story whose signature is at hand."""
        self._signatures[signature.story_id] = signature
        self.put_entry(IndexEntry.of(signature, self._index_keys))

    def load_entries(self, entries: Iterable[IndexEntry]) -> None:
        """Add stored stories, oldest first, to an empty index: ``put_entry``
        without its checks, as this is the whole of a cold start's loading."""
        if self.entries:
            raise ValueError("load_entries needs an empty index")
        postings = self._postings
        ids = self._ids
        for number, entry in enumerate(entries):
            sid = entry.story_id
            self.entries[sid] = entry
            self._numbers[sid] = number
            ids.append(sid)
            for key in entry.keys:
                found = postings.get(key)
                if found is None:
                    postings[key] = array("q", (number,))
                else:
                    found.append(number)

    def put_entry(self, entry: IndexEntry) -> None:
        """Add or replace a story by its entry; its signature comes from *load*."""
        sid = entry.story_id
        old = self.entries.get(sid)
        self.entries[sid] = entry
        postings = self._postings
        if old is None:  # the common case, and the whole of loading: keep it lean
            number = self._numbers[sid] = len(self._ids)
            self._ids.append(sid)
            for key in entry.keys:
                found = postings.get(key)
                if found is None:
                    postings[key] = array("q", (number,))
                else:
                    found.append(number)
            return
        number = self._numbers[sid]
        for key in set(entry.keys).difference(old.keys):
            postings.setdefault(key, array("q")).append(number)

    def signature(self, story_id: str) -> Signature:
        found = self._signatures.get(story_id)
        if found is None:
            self.prefetch((story_id,))
            found = self._signatures.get(story_id)
            if found is None:
                raise KeyError(story_id)
        return found

    def prefetch(self, story_ids: Iterable[str]) -> None:
        """Read the signatures of these stories that are not yet in memory, in
        one query: a cold batch of 1,000 items made 5,400 queries, one a story."""
        if self.load is None:
            return
        missing = [s for s in story_ids if s not in self._signatures and s in self.entries]
        if missing:
            self._signatures.update(self.load(missing))

    def remove(self, story_id: str) -> None:
        del self.entries[story_id]
        self._signatures.pop(story_id, None)
        number = self._numbers.pop(story_id)
        self._ids[number] = None

    def candidates(self, terms: Vector, entities: Vector, limit: int) -> list[IndexEntry]:
        """Stories sharing the most weight of the item's salient keys, best first
        (ties: the story met first, in key order, first)."""
        keys = list(islice(terms.items(), self._index_keys))
        keys += [(_ENTITY + k, w) for k, w in islice(entities.items(), self._index_keys // 2)]
        lists: list[tuple[array[int], float]] = []
        read = 0
        for key, weight in keys:
            postings = self._postings.get(key)
            if postings:
                lists.append((postings, weight))
                read += min(len(postings), self._scan)
        # Dead (merged) stories are few; fetch some spares so they cannot crowd out.
        wanted = limit + 8
        if read < _VECTORISE_FROM:
            ranked = _ranked(lists, self._scan, wanted)
        else:
            ranked = _ranked_vectorised(lists, self._scan, wanted)
        out: list[IndexEntry] = []
        for number in ranked:
            sid = self._ids[number]
            if sid is not None:
                out.append(self.entries[sid])
                if len(out) >= limit:
                    break
        return out


# Postings read by one search above which numpy sums them: a news item's keys
# are mostly rare (a few postings each), but a common word can bring hundreds,
# and then a Python loop over them was 30% of clustering (bench/fetch_scale.py).
_VECTORISE_FROM = 400


def _ranked(lists: Sequence[tuple[array[int], float]], scan: int, wanted: int) -> list[int]:
    """The *wanted* stories with the most weight over the newest *scan* postings
    of each (postings, weight), most first; equal sums by first appearance."""
    hits: dict[int, float] = {}
    found = hits.get
    for postings, weight in lists:
        for number in postings[-scan:]:
            hits[number] = found(number, 0.0) + weight
    return [n for n, _ in heapq.nlargest(wanted, hits.items(), key=itemgetter(1))]


def _ranked_vectorised(
    lists: Sequence[tuple[array[int], float]], scan: int, wanted: int
) -> list[int]:
    """``_ranked`` in numpy, with the same sums, added in the same order, and
    the same order among equal sums."""
    import numpy as np  # here: a refresh with nothing to cluster never needs it (50 ms)

    parts = [np.frombuffer(p, dtype=np.int64)[-scan:] for p, _ in lists]
    numbers = np.concatenate(parts)
    weights = np.repeat([w for _, w in lists], [len(part) for part in parts])
    low = int(numbers.min())
    span = int(numbers.max()) - low + 1
    if span > _SPAN_PER_POSTING * len(numbers):  # sparse: sorting is cheaper
        stories, slot = np.unique(numbers, return_inverse=True)
    else:
        stories, slot = None, numbers - low
    # bincount adds each story's weights one by one in their original order,
    # exactly as _ranked does (np.add.reduceat adds pairwise: other sums).
    sums = np.bincount(slot, weights=weights)
    first = np.full(len(sums), len(numbers))
    np.minimum.at(first, slot, np.arange(len(numbers)))
    hit = np.flatnonzero(first < len(numbers))
    if len(hit) > wanted:  # keep the top sums, and every story tied with the last
        cut = np.partition(sums[hit], len(hit) - wanted)[len(hit) - wanted]
        hit = hit[sums[hit] >= cut]
    best = hit[np.lexsort((first[hit], -sums[hit]))[:wanted]]
    ranked: list[int] = (stories[best] if stories is not None else best + low).tolist()
    return ranked


# Up to this many possible story numbers per posting read, sums go straight
# into an array indexed by story number; sparser, the numbers are sorted first
# (1,827 postings over 60,000 numbers: 736 us indexed, 140 us sorted).
_SPAN_PER_POSTING = 12
