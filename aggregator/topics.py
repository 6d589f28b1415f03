"""Topic tags for a story: the user's taxonomy first, then the names it is about.

Pure: no I/O, no clock. :func:`tag_story` reads a story's members and returns at
most ``limit`` :class:`~aggregator.model.Topic` values, ranked by salience:

1. rules of the user's taxonomy whose name or an alias occurs (word-bounded,
   case-insensitive) in a member's title, text or tags, ranked by their hits;
2. then names: the people, places and organisations the members write
   (:mod:`aggregator.entities`) and the sources' own categories, one spelling
   per topic (:func:`normalise_label`). A long tag-line phrase ("North Korea
   Russia partnership") yields the names in it, not itself.

A name's salience sums, over members, ``log(1 + mentions)`` plus bonuses for the
headline, the lead and the source's tags, times a rarity factor from wordfreq:
a story names "Russia" often, but "Andrei Belousov" says more about it.
Partial names fold into full ones ("Kim" into "Kim Jong Un"), demonyms into their
place ("Ukrainian" into "Ukraine"). Members are read in id order and ties break
on the label, so the same members give the same tags in any order.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, TypeVar

from .entities import (
    COMMON_IDF,
    LEAD,
    ORG_WORDS,
    PLACE_NAMES,
    PLACES,
    RARE_IDF,
    TEXT_CHARS,
    TITLE,
    Mention,
    is_acronym,
    is_junk,
    read_names,
    term_of,
    writes_lower,
)
from .features import idf
from .model import Item, Topic, TopicRule

__all__ = ["DEFAULT_MAX_TAGS", "normalise_label", "tag_story", "term_of"]

DEFAULT_MAX_TAGS = 8

# Salience bonuses, per member: a name in the headline is what the outlet itself
# says the story is about; the lead (first 400 chars) is who/what/where.
_TITLE_BONUS = 1.5
_LEAD_BONUS = 0.5
# A source's own category is the outlet saying what the story is about, as plainly
# as its headline does.
_TAG_BONUS = 1.5
# A tag must weigh this share of the top tag: below it, a passing mention
# ("the Cold War") would fill a slot of a short story.
_MIN_SHARE = 0.15
# A tag line phrase longer than this is a headline fragment, not a category.
_SHORT_TAG_WORDS = 3
# A rarer bar than RARE_IDF to extend a known name in a Title Case headline: "Lohan"
# (zipf 3.0) extends "Lindsay"; the verbs "Buys" (3.9), "Confirms" (3.8) do not.
_SURNAME_IDF = 5.7
_TAG_WORDS = re.compile(r"[^\s/,;]+")
_SPACES = re.compile(r"\s+")
_STRIP = "\"'“”‘’()[]{},;:!?"
_TAGS = -1  # where: a source's tags, beside TITLE, LEAD and BODY
_K = TypeVar("_K", str, int)
# Hit kinds, as indexes into a member's [mentions, title, lead, tag] counts.
_MENTION, _TITLE, _LEAD, _TAG = range(4)


_LABEL_STRIP = " \t\n\"'“”‘’()[]{}<>,;:!?*#|/\\–—-•·"
_INITIAL_END = re.compile(r"\b[A-Z]\.$")
_MAX_LABEL_WORDS = 8


def normalise_label(label: str, rules: Sequence[TopicRule] = ()) -> str | None:
    """One spelling per topic, or None for junk.

    Trims and collapses whitespace and stray punctuation, maps aliases (a rule's
    aliases to its name, "N. Korea" to "North Korea", "Russian" to "Russia") and
    rejects dates, furniture, show and outlet names, bare numbers and single
    lower-case common words ("war").
    """
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", label)).strip()
    for rule in rules:
        if text.casefold() in _rule_forms(rule):
            return rule.name
    place = PLACES.get(tuple(text.lower().split()))
    if place is None:
        text = text.strip(_LABEL_STRIP)
        text = text if _INITIAL_END.search(text) else text.rstrip(".")
        text = text[:-2] if text.endswith(("’s", "'s")) else text
        place = PLACES.get(tuple(text.lower().split()))
    if place is not None:
        return place
    words = text.split()
    if not words or len(words) > _MAX_LABEL_WORDS or is_junk(text):
        return None
    if len(words) == 1 and text.islower() and idf(text) < RARE_IDF:
        return None
    return text[0].upper() + text[1:] if text.islower() else text


@lru_cache(maxsize=65536)
def _name_of(words: tuple[str, ...]) -> tuple[str, str] | None:
    """(term, label) of a name as written, or None when it is junk."""
    label = normalise_label(" ".join(words))
    return None if label is None else (term_of(label), label)


@lru_cache(maxsize=1024)
def _rule_forms(rule: TopicRule) -> frozenset[str]:
    """A rule's name and aliases, whitespace collapsed and case-folded."""
    return frozenset(_SPACES.sub(" ", f).strip().casefold() for f in (rule.name, *rule.aliases))


class _Name(NamedTuple):
    term: str
    label: str
    where: int


@dataclass(frozen=True, slots=True)
class _Digest:
    """One member's names, spelt and keyed; cached, so a story that gains a member
    reads only the newcomer (the pipeline re-tags every story whose members change)."""

    names: tuple[_Name, ...]  # strong mentions, normalised; junk dropped
    weak: tuple[Mention, ...]  # resolved per story, against the names of all members
    # Lower-case words -> term, for each strong name and each acronym defined in
    # parentheses ("Korean Central News Agency (KCNA)").
    keys: tuple[tuple[tuple[str, ...], str], ...]
    text: str


@lru_cache(maxsize=8192)
def _digest(title: str, text: str) -> _Digest:
    reading = read_names(title, text)
    names: list[_Name] = []
    keys: dict[tuple[str, ...], str] = {}
    for words, where, is_weak in reading.mentions:
        found = None if is_weak else _name_of(words)
        if found is not None:
            names.append(_Name(*found, where))
            keys[tuple(w.lower() for w in words)] = found[0]
    for acronym, full in reading.acronyms:
        if (found := _name_of(tuple(full.split()))) is not None:
            keys[(acronym.lower(),)] = found[0]
    # "The", "He", "In" opening a sentence: never a name (zipf > 6), and ~half of
    # the weak mentions a story resolves.
    weak = tuple(
        m
        for m in reading.mentions
        if m.weak and (len(m.words) > 1 or idf(m.words[0].lower()) >= COMMON_IDF)
    )
    return _Digest(tuple(names), weak, tuple(keys.items()), reading.text)


@dataclass(slots=True)
class _Tally:
    """One topic's evidence, gathered during one call (mutable, never returned)."""

    words: tuple[str, ...]
    place: bool
    score: float = 0.0
    strong: int = 0  # mentions written as a name
    category: bool = False  # a source's own category, taken as it stands
    mentions: int = 0
    surfaces: dict[str, int] = field(default_factory=dict)


def tag_story(
    members: Sequence[Item], rules: Sequence[TopicRule] = (), limit: int = DEFAULT_MAX_TAGS
) -> tuple[Topic, ...]:
    """The story's topics, most salient first: matching rules, then names and tags."""
    if limit <= 0 or not members:
        return ()
    ordered = sorted(members, key=lambda m: (m.id, m.title, m.text[:200]))
    readings = [_digest(m.title, m.text or m.summary) for m in ordered]
    index: dict[tuple[str, ...], str] = {}
    for reading in readings:
        index.update(reading.keys)
    tallies: dict[str, _Tally] = {}
    for member, reading in zip(ordered, readings, strict=True):
        seen: dict[str, list[int]] = {}
        for name in reading.names:
            _count(tallies, name.term, name.label, True)
            _hit(seen, name.term, name.where)
        for mention in reading.weak:
            for term in _known(mention.words, index, tallies):
                _hit(seen, term, mention.where)
        for tag in member.tags:
            for term in _tag_terms(tag, index, tallies):
                seen.setdefault(term, [0, 0, 0, 0])[_TAG] = 1
        for term, hits in seen.items():
            tallies[term].score += _salience(hits)
    _merge_partial_names(tallies)
    matched = _match_rules(tuple(rules), ordered)[:limit]
    skip = {x.casefold() for m in ordered for x in (m.outlet, m.author) if x}
    skip |= {term_of(f) for rule in matched for f in (rule.name, *rule.aliases)}
    topics = [Topic(term_of(rule.name), rule.name) for rule in matched]
    topics += _rank(tallies, [r.text for r in readings], skip, limit - len(topics))
    return tuple(topics)


def _hit(seen: dict[_K, list[int]], term: _K, where: int) -> None:
    hits = seen.setdefault(term, [0, 0, 0, 0])
    if where == TITLE:
        hits[_TITLE] = 1
    else:
        hits[_MENTION] += 1
        hits[_LEAD] |= where == LEAD


def _salience(hits: list[int]) -> float:
    """What one member's hits say: mentions (diminishing), headline, lead, tags."""
    return (
        math.log1p(hits[_MENTION])
        + _TITLE_BONUS * hits[_TITLE]
        + _LEAD_BONUS * hits[_LEAD]
        + _TAG_BONUS * hits[_TAG]
    )


def _count(tallies: dict[str, _Tally], term: str, label: str, strong: bool) -> None:
    tally = tallies.get(term)
    if tally is None:
        tally = tallies[term] = _Tally(tuple(label.lower().split()), label in PLACE_NAMES)
    tally.strong += strong
    tally.mentions += 1
    # The label is the spelling used most, a name's own capitals counting double.
    tally.surfaces[label] = tally.surfaces.get(label, 0) + (2 if strong else 1)


def _add(tallies: dict[str, _Tally], words: tuple[str, ...], strong: bool) -> str | None:
    found = _name_of(words)
    if found is None:
        return None
    _count(tallies, *found, strong)
    return found[0]


def _known(
    words: tuple[str, ...], index: dict[tuple[str, ...], str], tallies: dict[str, _Tally]
) -> Iterator[str]:
    """The names in a weak mention (a sentence opening, a Title Case headline, a tag
    phrase): names the story writes as names, places, and runs of rare words."""
    low = tuple(w.lower().strip(_STRIP) for w in words)
    rare: list[str] = []
    i = 0
    while i < len(words):
        # A word the story writes as a name, then more such words or rare ones:
        # "Lindsay Lohan Leaves Betty Ford" names "Lindsay Lohan" once "Lindsay" is known.
        j = i + 1 if _name_like(words[i], low[i], index) else i
        while j > i and j < len(words) and words[j][:1].isupper():
            if not (_name_like(words[j], low[j], index) or idf(low[j]) >= _SURNAME_IDF):
                break
            j += 1
        if j - i >= 2:
            yield from _flush(rare, tallies)
            if (term := _add(tallies, words[i:j], False)) is not None:
                yield term
            i = j
            continue
        for j in range(min(len(words), i + 4), i, -1):
            key = low[i:j]
            if key in index or key in PLACES:
                yield from _flush(rare, tallies)
                term = _add(tallies, words[i:j], False)
                if term is not None:
                    yield term
                i = j
                break
        else:
            word = words[i]
            if word[:1].isupper() and (is_acronym(word) or idf(low[i]) >= RARE_IDF):
                rare.append(word)
            else:
                yield from _flush(rare, tallies)
            i += 1
    yield from _flush(rare, tallies)


def _name_like(word: str, low: str, index: dict[tuple[str, ...], str]) -> bool:
    """A word the story writes as a name on its own ("Lindsay", "Lohan"), not a place."""
    return word[:1].isupper() and (low,) in index and (low,) not in PLACES


def _flush(rare: list[str], tallies: dict[str, _Tally]) -> Iterator[str]:
    if not rare:
        return
    term = _add(tallies, tuple(rare), False)
    rare.clear()
    if term is not None:
        yield term


def _tag_terms(
    tag: str, index: dict[tuple[str, ...], str], tallies: dict[str, _Tally]
) -> Iterable[str]:
    """A source's category: the names in it, else itself when short and clean."""
    words = tuple(_TAG_WORDS.findall(tag.replace("-", " ")))
    terms = list(_known(words, index, tallies))
    if terms or len(words) > _SHORT_TAG_WORDS:
        return terms
    label = normalise_label(tag)
    if label is None:
        return ()
    term = term_of(label)
    _count(tallies, term, label, True)
    tallies[term].category = True
    return (term,)


def _merge_partial_names(tallies: dict[str, _Tally]) -> None:
    """Fold "Kim" into "Kim Jong Un" and "Belousov" into "Andrei Belousov": a name
    that opens or ends a longer person's name, shortest first, into the most salient
    such name. A name with an organisation's word is no person's ("Korea" stays out
    of "Korea Herald")."""
    hosts: dict[tuple[str, ...], list[str]] = {}
    for term, t in tallies.items():
        if 2 <= len(t.words) <= 4 and not t.place and ORG_WORDS.isdisjoint(t.words):
            for size in range(1, len(t.words)):
                hosts.setdefault(t.words[:size], []).append(term)
                hosts.setdefault(t.words[-size:], []).append(term)
    for term in sorted(tallies, key=lambda k: (len(tallies[k].words), k)):
        part = tallies[term]
        if part.place or is_acronym(_label(part)):
            continue
        live = [(tallies[h].score, h) for h in hosts.get(part.words, ()) if h in tallies]
        if live:
            host = tallies[max(live)[1]]
            host.score += part.score
            host.strong += part.strong
            host.mentions += part.mentions
            del tallies[term]


def _rank(
    tallies: dict[str, _Tally], texts: Sequence[str], skip: set[str], limit: int
) -> list[Topic]:
    """The *limit* most salient names; ties break on the label. The name tests run
    only on the leaders, since each may scan every member's text."""
    ranked: list[tuple[float, str, str]] = []
    for term, tally in tallies.items():
        phrase_idf = min(8.0, sum(idf(w) for w in tally.words))
        ranked.append((-tally.score * (0.6 + 0.05 * phrase_idf), _label(tally), term))
    ranked.sort()
    topics: list[Topic] = []
    floor = 0.0
    for score, label, term in ranked:
        if len(topics) >= limit:
            break
        tally = tallies[term]
        if score > floor and not tally.category:
            continue  # a passing mention; a source's own category still counts
        if term in skip or label.casefold() in skip or not _is_name(tally, label, texts):
            continue
        floor = floor or score * _MIN_SHARE
        topics.append(Topic(term, label))
    return topics


def _label(tally: _Tally) -> str:
    # Most used spelling, strong mentions counting double; then the alphabet.
    return min(tally.surfaces.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _is_name(tally: _Tally, label: str, texts: Sequence[str]) -> bool:
    """Only places, categories, names written as names, and rare words seen twice.

    A word the story also writes in lower case is a common word: "Frontlines" heading
    a bullet ("frontlines" in the text), "Acquires" in "AMD Acquires SeaMicro" when
    never written as a name. So is a common word (zipf > 4) capitalised only once
    ("the North's state media").
    """
    if tally.place or tally.category:
        return True
    if not tally.strong and tally.mentions < 2:
        return False  # a rare word in a headline only ("Confesses"): no evidence of a name
    if is_acronym(label) or (len(tally.words) > 1 and tally.strong):
        return True
    if any(writes_lower(w, text) for w in tally.words for text in texts):
        return False
    return len(tally.words) > 1 or tally.strong > 1 or idf(tally.words[0]) >= RARE_IDF


@lru_cache(maxsize=64)
def _rule_pattern(rules: tuple[TopicRule, ...]) -> tuple[re.Pattern[str], dict[str, int]] | None:
    forms: dict[str, int] = {}
    for n, rule in enumerate(rules):
        for form in sorted(_rule_forms(rule)):
            forms.setdefault(form, n)
    if not forms:
        return None
    alternatives = sorted(forms, key=lambda f: (-len(f), f))
    body = "|".join(r"\s+".join(map(re.escape, f.split())) for f in alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE), forms


def _match_rules(rules: tuple[TopicRule, ...], members: Sequence[Item]) -> list[TopicRule]:
    """The rules some member names, most salient first (same score as names)."""
    compiled = _rule_pattern(rules) if rules else None
    if compiled is None:
        return []
    pattern, forms = compiled
    scores: dict[int, float] = {}
    for member in members:
        seen: dict[int, list[int]] = {}
        text = (member.text or member.summary)[:TEXT_CHARS]
        for where, part in ((TITLE, member.title), (LEAD, text), (_TAGS, " / ".join(member.tags))):
            for match in pattern.finditer(part):
                n = forms[_SPACES.sub(" ", match[0]).casefold()]
                if where == _TAGS:
                    seen.setdefault(n, [0, 0, 0, 0])[_TAG] = 1
                else:
                    _hit(seen, n, where)
        for n, hits in seen.items():
            scores[n] = scores.get(n, 0.0) + _salience(hits)
    return [rules[n] for n in sorted(scores, key=lambda n: (-scores[n], rules[n].name))]
