"""Items -> stories on the same real-world event, online, with stable ids.

Pure: no I/O, no clock. Each new item is compared with the few stories an
inverted index proposes (``story_index.py``) within a window of *item* dates,
and joins the best one scoring over the threshold, or starts a story. An item
over the threshold for two stories bridges them: they merge into the older.

The score is a weighted mean of three cosines (``features.py``): all content
words, names and numbers, and headline words. Words alone cannot tell two
earthquakes in Iran apart; names and numbers (the island, the magnitude) can.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .features import (
    DEFAULT_FEATURE_TERMS,
    DEFAULT_TEXT_CHARS,
    Features,
    decode_features,
    encode_features,
    extract,
)
from .model import Item
from .story_index import IndexEntry, Loader, Signature, SparseVector, StoryIndex

__all__ = [
    "DEFAULT_WINDOW",
    "Assignment",
    "ClusterSettings",
    "Clusterer",
    "Explanation",
    "IndexEntry",
    "Signature",
    "encoded_features",
    "explain",
    "stored_features",
    "story_id",
]

# TDT and news-stream clustering work (e.g. Miranda et al. 2018, "Multilingual
# clustering of streaming news") keeps stories open for days, not weeks: most
# reports of an event arrive within 2-3 days. ECB+ dev stories with dates span
# 1-2 days for most events; a week also catches the follow-ups (arraignment,
# funeral) while two look-alike events a month apart never meet.
DEFAULT_WINDOW = timedelta(days=7)
# Combined-score bar. On ECB+ dev (bench/cluster_direct.py --sweep) BCubed F1
# stays >= 0.93 for every bar from 0.14 to 0.26 and peaks at 0.22 (0.955);
# 0.22 is also the middle of that plateau.
DEFAULT_THRESHOLD = 0.22
# Added to the bar when exactly one side has a date (an undated item against a
# dated story, or the reverse): the window cannot vouch for the pair, so the
# text must. Dev sweep: F1 0.83 at 0, 0.92 at 0.2, 0.946 at 0.25, 0.955 at
# 0.3-0.35, 0.925 at 0.4;
# without it undated reports of one quake join last week's look-alike quake.
DEFAULT_UNDATED_MARGIN = 0.3
# Extra bar for the second story an item bridges. Dev: 0 is best (0.955 vs
# 0.934 at 0.1; 0.921 with merging off), so a bridge needs only what a join needs.
DEFAULT_MERGE_MARGIN = 0.0
# Two reports of one event name the same people and places: below this
# names-and-numbers cosine an item never joins, whatever the words share.
# Free on dev (F1 0.955 from 0 to 0.2, 0.949 at 0.25); it is what keeps
# same-day look-alikes apart in tests/test_cluster.py (two Waitrose fires: 0.17).
DEFAULT_ENTITY_FLOOR = 0.2
# And its mirror: the content-word cosine an item never joins below, however
# many names or numbers it shares: one shared rare number (an amount, a flight
# number) must not carry two unrelated reports over the bar, as it did for 1 in
# 7 synthetic stories at 0.10-0.12 words (bench/cluster_scale.py, "new events
# alone" 85% without it, 99% with it). Free on dev (F1 0.955 from 0 to 0.2).
DEFAULT_TERM_FLOOR = 0.15
# Component weights (sum 1). Pair AUC on dev same-topic pairs: words 0.959,
# names 0.956, title 0.835, words+names 0.970; the title adds little alone but
# rescues short items whose body is a stub. Round numbers, not fitted.
DEFAULT_WEIGHTS = (0.4, 0.4, 0.2)
# Kept per story vector (the title keeps half). 20 loses pair AUC (0.962 vs
# 0.967), 60 or 100 gain nothing; 48 keeps 100,000 stories small in memory.
DEFAULT_STORY_TERMS = 48
# Index keys per story and per query, newest postings read per key, and
# stories fully scored per item: bound the work per item at any archive size.
# Dev F1 is identical for 3-40 candidates, 6-24 keys and 20-400 postings.
DEFAULT_INDEX_KEYS = 12
DEFAULT_POSTING_SCAN = 200
DEFAULT_CANDIDATES = 10


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    window: timedelta = DEFAULT_WINDOW
    threshold: float = DEFAULT_THRESHOLD
    undated_margin: float = DEFAULT_UNDATED_MARGIN
    merge_margin: float = DEFAULT_MERGE_MARGIN
    entity_floor: float = DEFAULT_ENTITY_FLOOR
    term_floor: float = DEFAULT_TERM_FLOOR
    weights: tuple[float, float, float] = DEFAULT_WEIGHTS
    story_terms: int = DEFAULT_STORY_TERMS
    text_chars: int = DEFAULT_TEXT_CHARS
    index_keys: int = DEFAULT_INDEX_KEYS
    posting_scan: int = DEFAULT_POSTING_SCAN
    candidates: int = DEFAULT_CANDIDATES

    def __post_init__(self) -> None:
        if self.window < timedelta(0):
            raise ValueError("window must be >= 0")
        if abs(sum(self.weights) - 1.0) > 1e-6 or min(self.weights) < 0:
            raise ValueError("weights must be >= 0 and sum to 1")


@dataclass(frozen=True, slots=True)
class Assignment:
    item_id: str
    story_id: str
    new_story: bool
    merged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why two items would (not) share a story: each component and the verdict."""

    components: tuple[tuple[str, float, float], ...]  # name, cosine, weight
    score: float
    threshold: float
    in_window: bool
    verdict: bool
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        out = [f"{name:<9} {value:.3f} x {weight:.2f}" for name, value, weight in self.components]
        out.append(f"score     {self.score:.3f} (threshold {self.threshold:.3f})")
        out.extend(self.notes)
        out.append("same story" if self.verdict else "different stories")
        return out


def story_id(item: Item) -> str:
    """A stable Atom id for a story first reported by *item*: ``urn:uuid:`` of its key."""
    key = item.url or item.id
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def _when(item: Item) -> datetime | None:
    # The publication date only. ``seen`` is our clock, and a 2005 archive read
    # today must cluster as it did in 2005; an ``updated`` without ``published``
    # is an article file's modification time, which says when it was saved,
    # not when the news happened (feed entries with only <updated> already have
    # it as ``published``, see parse.py).
    return item.published


def _features(item: Item, settings: ClusterSettings) -> Features:
    return extract(item.title, item.text or item.summary, item.language, settings.text_chars)


def encoded_features(item: Item, settings: ClusterSettings) -> bytes:
    """What the clusterer reads of *item*, extracted ahead (when it is
    normalised, possibly in another process) to be stored beside it."""
    return encode_features(_features(item, settings), settings.text_chars, DEFAULT_FEATURE_TERMS)


def stored_features(data: bytes | None, settings: ClusterSettings) -> Features | None:
    """Features made by :func:`encoded_features` under these settings, else None."""
    return decode_features(data, settings.text_chars, DEFAULT_FEATURE_TERMS)


def _age(story: Signature | IndexEntry) -> tuple[bool, datetime, str]:
    """Older stories sort first: dated before undated, then by first date, then id."""
    return (story.first is None, story.first or datetime.max, story.story_id)


def _bar(settings: ClusterSettings, comparable: bool) -> float:
    """The bar to clear; *comparable* is False when only one side has a date."""
    return settings.threshold + (0.0 if comparable else settings.undated_margin)


def _floors_met(parts: Sequence[float], settings: ClusterSettings) -> bool:
    """Words and names must each agree a little, whatever the combined score."""
    return parts[0] >= settings.term_floor and parts[1] >= settings.entity_floor


def _score(f: Features, sig: Signature, weights: tuple[float, float, float]) -> tuple[float, ...]:
    terms, entities, title = (
        sig.terms.cosine(f.terms),
        sig.entities.cosine(f.entities),
        sig.title.cosine(f.title),
    )
    return terms, entities, title, _combined(weights, terms, entities, title)


def _combined(
    weights: tuple[float, float, float], terms: float, entities: float, title: float
) -> float:
    return weights[0] * terms + weights[1] * entities + weights[2] * title


class Clusterer:
    """Online clustering over an index of story signatures."""

    def __init__(
        self,
        settings: ClusterSettings,
        signatures: Iterable[Signature] = (),
        *,
        entries: Iterable[IndexEntry] = (),
        load: Loader | None = None,
    ) -> None:
        """Start from stored stories: whole *signatures*, or index *entries*
        whose signatures *load* reads when a story is first scored."""
        self.settings = settings
        self._index = StoryIndex(settings.index_keys, settings.posting_scan, load)
        # Oldest first, so each posting list ends with its newest stories.
        self._index.load_entries(sorted(entries, key=_age))
        for sig in sorted(signatures, key=_age):
            self._index.put(sig)
        self._changed: dict[str, None] = {}
        self._removed: dict[str, None] = {}

    def add(self, item: Item, features: Features | None = None) -> Assignment:
        """Put *item* in a story; *features* are its own, if extracted ahead."""
        f = features or _features(item, self.settings)
        when = _when(item)
        matches: list[tuple[float, Signature]] = []
        window = self.settings.window
        found = self._index.candidates(f.terms, f.entities, self.settings.candidates)
        candidates = [e.story_id for e in found if e.in_window(when, window)]
        self._index.prefetch(candidates)
        for candidate in candidates:
            sig = self._index.signature(candidate)
            score = self._passing_score(f, sig)
            if score is not None and score >= _bar(
                self.settings, (when is None) == (sig.first is None)
            ):
                matches.append((score, sig))
        if not matches:
            return self._start(item, f, when)
        # A bridge by an undated item must clear the undated bar on every story
        # it joins: otherwise one vague report fuses an undated story with a
        # dated look-alike (dev: F1 0.918 with each story's own bar, 0.952 so).
        best = max(score for score, _ in matches)
        bar = _bar(self.settings, when is not None) + self.settings.merge_margin
        matches = [m for m in matches if m[0] == best or m[0] >= bar]
        matches.sort(key=lambda m: _age(m[1]))
        keep = matches[0][1]
        merged = tuple(sig.story_id for _, sig in matches[1:])
        sig = keep
        for _, other in matches[1:]:
            sig = self._combine(sig, other)
            self._index.remove(other.story_id)
            self._changed.pop(other.story_id, None)
            self._removed[other.story_id] = None
        self._save(_elect(self._join(sig, f, when), item, f))
        return Assignment(item.id, keep.story_id, new_story=False, merged=merged)

    def _passing_score(self, f: Features, sig: Signature) -> float | None:
        """The score of *f* against *sig*, or None when a floor fails: names
        first, as most candidates share a word or two and no name, so most
        are settled by one cosine of three. Same verdicts as ``_score``."""
        entities = sig.entities.cosine(f.entities)
        if entities < self.settings.entity_floor:
            return None
        terms = sig.terms.cosine(f.terms)
        if terms < self.settings.term_floor:
            return None
        return _combined(self.settings.weights, terms, entities, sig.title.cosine(f.title))

    def add_batch(
        self, items: Iterable[Item], features: Mapping[str, Features] | None = None
    ) -> list[Assignment]:
        """Add *items* in publication order: dated by date, then undated; ties by id.
        *features* holds those extracted ahead, by item id."""
        ordered = sorted(items, key=lambda i: (_when(i) is None, _when(i) or datetime.max, i.id))
        known = features or {}
        return [self.add(item, known.get(item.id)) for item in ordered]

    def signature(self, story_id: str) -> Signature:
        return self._index.signature(story_id)

    def set_loader(self, load: Loader) -> None:
        """Read stored signatures through *load* from now on (a reopened store)."""
        self._index.load = load

    def forget_changes(self) -> None:
        """The changes so far are persisted: ``changed()`` starts afresh."""
        self._changed.clear()

    def changed(self) -> list[Signature]:
        """Stories made or changed since this clusterer started, to persist."""
        return [self._index.signature(sid) for sid in self._changed]

    def removed(self) -> list[str]:
        """Stories merged into others since this clusterer started."""
        return list(self._removed)

    def signatures(self) -> list[Signature]:
        return [self._index.signature(sid) for sid in self._index.entries]

    def _start(self, item: Item, f: Features, when: datetime | None) -> Assignment:
        sid = story_id(item)
        n = 1
        while sid in self._index or sid in self._removed:
            n += 1
            sid = f"{story_id(item)}-{n}"
        self._save(_elect(self._join(Signature(sid, None, None, 0), f, when), item, f))
        return Assignment(item.id, sid, new_story=True)

    def _join(self, sig: Signature, f: Features, when: datetime | None) -> Signature:
        keep = self.settings.story_terms
        first, last = sig.first, sig.last
        if when is not None:
            first = min(first, when) if first else when
            last = max(last, when) if last else when
        return Signature(
            sig.story_id,
            first,
            last,
            sig.count + 1,
            sig.terms.plus(f.terms, keep),
            sig.entities.plus(f.entities, keep),
            sig.title.plus(f.title, keep // 2),
            sig.lead,
            sig.lead_rank,
        )

    def _combine(self, a: Signature, b: Signature) -> Signature:
        keep = self.settings.story_terms
        firsts = [d for d in (a.first, b.first) if d is not None]
        lasts = [d for d in (a.last, b.last) if d is not None]
        # The older story's lead stays unless the other's is of a better kind.
        lead = b if a.lead is None or b.lead_rank[0] > a.lead_rank[0] else a
        return Signature(
            a.story_id,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
            a.count + b.count,
            a.terms.plus(b.terms.as_dict(), keep),
            a.entities.plus(b.entities.as_dict(), keep),
            a.title.plus(b.title.as_dict(), keep // 2),
            lead.lead,
            lead.lead_rank,
        )

    def _save(self, sig: Signature) -> None:
        self._index.put(sig)
        self._changed[sig.story_id] = None


def explain(a: Item, b: Item, settings: ClusterSettings) -> Explanation:
    """Score *b* against a story holding only *a*, component by component."""
    fa, fb = _features(a, settings), _features(b, settings)
    wa, wb = _when(a), _when(b)
    sig = Signature(
        story_id(a),
        wa,
        wa,
        1,
        SparseVector.of(fa.terms, settings.story_terms),
        SparseVector.of(fa.entities, settings.story_terms),
        SparseVector.of(fa.title, settings.story_terms // 2),
    )
    *parts, score = _score(fb, sig, settings.weights)
    names = ("terms", "entities", "title")
    in_window = IndexEntry.of(sig, settings.index_keys).in_window(wb, settings.window)
    bar = _bar(settings, (wa is None) == (wb is None))
    notes = [] if in_window else [f"dates {wa} and {wb} are more than {settings.window} apart"]
    for name, value, floor in (
        ("words", parts[0], settings.term_floor),
        ("names/numbers", parts[1], settings.entity_floor),
    ):
        if value < floor:
            notes.append(f"{name} agree {value:.3f}, under the floor of {floor:.3f}")
    shared = sorted(set(fa.entities) & set(fb.entities))[:8]
    if shared:
        notes.append("shared names/numbers: " + ", ".join(shared))
    return Explanation(
        components=tuple(zip(names, parts, settings.weights, strict=True)),
        score=score,
        threshold=bar,
        in_window=in_window,
        verdict=in_window and score >= bar and _floors_met(parts, settings),
        notes=tuple(notes),
    )


# A lead should be a report, not a brief: 400 characters is about two paragraphs.
_FULL_REPORT_CHARS = 400
# How much more central (cosine with the story's centroid) a newcomer must be to
# take the lead: enough that the headline doesn't change with every arrival.
_LEAD_MARGIN = 0.1


def _elect(sig: Signature, item: Item, f: Features) -> Signature:
    """*sig* after *item* joined, with the lead it elects.

    A full report outranks a brief, and one with a link a reader can open
    outranks one without; among equals the first stays unless a newcomer is
    clearly (``_LEAD_MARGIN``) more central. Items join in publication order,
    so the lead is the earliest full report unless a clearly better one
    arrives, and a story's headline does not flicker as reports trickle in.
    """
    kind = 2 * (len(item.text) >= _FULL_REPORT_CHARS) + (item.url is not None)
    score = sig.terms.cosine(f.terms)
    kept_kind, kept_score = sig.lead_rank
    if (
        sig.lead is None
        or kind > kept_kind
        or (kind == kept_kind and score - kept_score >= _LEAD_MARGIN)
    ):
        return replace(sig, lead=item.id, lead_rank=(kind, score))
    return sig
