"""Text features for clustering: weighted terms, named entities, title terms.

Pure: no I/O beyond wordfreq's bundled word list, no clock. An item becomes a
``Features`` value of three sparse vectors, each L2-normalised and capped:

- ``terms``: every content word of title and lead text, TF-IDF weighted;
- ``entities``: capitalised tokens and token runs ("Lindsay Lohan", "Qeshm")
  plus numbers ("5.9", "2005"), the details that tell two look-alike events
  apart (two earthquakes share "magnitude" and "quake", not the place or size);
- ``title``: the headline's words alone.

IDF is a static, corpus-independent prior: ``9 - zipf`` from wordfreq's
multi-source English word frequencies, so a word's weight never depends on
what arrived earlier, a rebuilt index decides exactly as the live one did, and
the first items of a fresh install are weighted as well as the millionth.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

__all__ = [
    "DEFAULT_FEATURE_TERMS",
    "DEFAULT_TEXT_CHARS",
    "Features",
    "Vector",
    "cosine",
    "decode_features",
    "encode_features",
    "extract",
    "idf",
    "normalise",
    "top",
]

Vector = dict[str, float]
Counts = dict[str, int]

# News is written as an inverted pyramid: who, what, where and when sit in the
# first paragraphs. ECB+ texts run to 16 KB but the median is ~1.5 KB. Dev F1 by
# characters read (bench/cluster_direct.py --sweep text_chars): 0.944 at 800,
# 0.947 at 1,500, 0.955 at 2,000, 0.952 at 3,000; tokenising is most of the
# cost of an item, so read no more than the lead paragraphs need.
DEFAULT_TEXT_CHARS = 2000
# Terms kept per item vector; a story keeps a few more (cluster.py). The 40th
# term of a news item already weighs a few percent of its first.
DEFAULT_FEATURE_TERMS = 40

# wordfreq zipf values run 0 (unseen) to ~7.7 ("the"); 9 - zipf is -log10 of
# the frequency per word, i.e. an IDF over a web-scale corpus. Unknown tokens
# (rare names, typos) get the cap: zipf 1 is wordfreq's floor for listed words.
_ZIPF_CEILING = 9.0
_IDF_CAP = 8.0
# Headline words count this many times: the headline is the outlet's own
# summary of the event, worth a sentence or two of body text.
_TITLE_REPEAT = 2

# (gap before the token, token): a word, possibly with inner ' . - ("O'Brien",
# "U.S", "T-Mobile"), or a number with inner . , : ("5.9", "1,200", "6:00").
# A word's trailing ' . - are matched too and moved to the next gap in
# _count: a third faster than a pattern that backtracks to the last letter.
_TOKEN = re.compile(r"(\W*)([^\W\d_][\w'’.-]*|\d+(?:[.,:]\d+)*)")
# Token kinds, and the IDF (zipf < 4) above which a capitalised word opening
# a sentence is taken as a name: "Police" (zipf 5.1) is not, "Qeshm" is.
_SKIP, _NUMBER, _WORD, _NAMELIKE = 0, 1, 2, 3
_NAME_IDF = 5.0
# Punctuation after which a capital letter says nothing about a name.
_OPENERS = frozenset('.!?:;"“”‘(\n')

# Function words and feed boilerplate. wordfreq already weighs them low; dropping
# them keeps them out of the capped vectors and the inverted index.
_STOPWORD_TEXT = """
    a about above according afp after again against all also am an and any ap are as at
    be because been before being below between both but by can click copyright could did
    do does doing down dr during each edt est few for from further gmt had has have
    having he her here hers herself him himself his how i if image in into is it its
    itself just may me might more most mr mrs ms my myself new no nor not now of off on
    once one only or other our ours out over own photo pm posted published read reserved
    reuters rights said same say says she should so some such than that the their theirs
    them then there these they this those through time to told too two under until up
    updated utc very video was we were what when where which while who whom why will
    with would year years you your yours
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Features:
    """One item's sparse vectors, each L2-normalised (empty when nothing was found)."""

    terms: Vector
    entities: Vector
    title: Vector


@lru_cache(maxsize=8)
def _frequencies(language: str) -> Mapping[str, float]:
    import wordfreq  # here: importing it is 0.1 s a refresh with nothing to read needs not pay

    return wordfreq.get_frequency_dict(language, wordlist="best")


# Languages that py3langid names and wordfreq lists under another code: without
# these, Croatian or Norwegian news was weighed by English word frequencies,
# and its common words opening a sentence read as names. py3langid calls
# short Chinese news "wuu" (Wu) about as often as "zh".
_WORDFREQ_ALIASES = {
    "ary": "ar",
    "arz": "ar",
    "hbo": "he",
    "no": "nb",
    "nn": "nb",
    "tl": "fil",
    "hr": "sh",
    "bs": "sh",
    "sr": "sh",
    "wuu": "zh",
    "yue": "zh",
}


@lru_cache(maxsize=64)
def _language(language: str | None) -> str:
    code = (language or "en").split("-")[0].lower()
    code = _WORDFREQ_ALIASES.get(code, code)
    import wordfreq

    return code if code in wordfreq.available_languages() else "en"


@lru_cache(maxsize=200_000)
def idf(token: str, language: str = "en") -> float:
    """IDF prior of a lower-case token: ``9 - zipf``, capped for unseen tokens."""
    freq = _frequencies(language).get(token)
    if freq is None or freq <= 0.0:
        return _IDF_CAP
    zipf = math.log10(freq) + 9.0
    return max(0.0, min(_IDF_CAP, _ZIPF_CEILING - zipf))


@lru_cache(maxsize=200_000)
def _stem(token: str) -> str:
    """Fold plurals and possessives: 'quakes' and "Iran's" match 'quake', 'iran'."""
    for suffix in ("'s", "’s"):
        if token.endswith(suffix):
            token = token[: -len(suffix)]
    token = token.rstrip(".'’-")
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _lexeme(raw: str, language: str) -> tuple[str, int]:
    """(stem, kind) of a raw token; kind is _NUMBER, _WORD, _NAMELIKE or _SKIP."""
    if raw[0].isdigit():
        return raw, _NUMBER if len(raw) > 1 else _SKIP
    low = raw.lower()
    stem = _stem(low)
    if low in _STOPWORDS or len(stem) < 2:
        return stem, _SKIP
    # A capitalised word opening a sentence is a name only when it is not a
    # common word ("Police", "Monday" are not; "Qeshm", "Lohan" are).
    rare = idf(low, language) >= _NAME_IDF
    return stem, (_NAMELIKE if raw[0].isupper() and rare else _WORD)


# Per-language caches of _token and _weight: plain dicts, because this is the
# inner loop of clustering and a dict lookup costs a fraction of an lru_cache
# call. Each is emptied when it reaches _CACHE_SIZE, so memory stays bounded.
_CACHE_SIZE = 200_000
_TOKENS: dict[str, dict[str, tuple[str, int, bool, bool]]] = {}
_WEIGHTS: dict[str, dict[str, float]] = {}


def _cache(caches: dict[str, dict[str, Any]], language: str) -> dict[str, Any]:
    cache = caches.setdefault(language, {})
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    return cache


# A word ends with a letter or digit: these trailing characters belong to the
# gap before the next token (where a '.' ends a sentence).
_TRAILING = "'’.-"


def _token(raw: str, language: str) -> tuple[str, int, bool, bool]:
    """What ``_count`` needs of a raw token: its stem and kind (of the token
    without its trailing ' . -), whether it is capitalised, and whether a '.'
    it ends with opens the gap before the next token."""
    stripped = raw.rstrip(_TRAILING)
    stem, kind = _lexeme(stripped, language)
    return stem, kind, raw[0].isupper(), "." in raw[len(stripped) :]


def _count(text: str, repeat: int, language: str, terms: Counts, entities: Counts) -> None:
    """Add *text*'s term and entity counts, *repeat* times each, into the dicts."""
    tokens = _cache(_TOKENS, language)
    lookup = tokens.get
    count_term = terms.get
    run: list[str] = []
    first = True
    after_dot = False  # the previous token ended with a '.': part of this gap
    for gap, raw in _TOKEN.findall(text):
        found = lookup(raw)
        if found is None:
            found = tokens[raw] = _token(raw, language)
        stem, kind, upper, dot = found
        if kind == _NUMBER:
            terms[stem] = count_term(stem, 0) + repeat
            entities[stem] = entities.get(stem, 0) + repeat
        elif kind:
            terms[stem] = count_term(stem, 0) + repeat
            # Mid-sentence capitals are names; sentence-initial ones only when rare.
            opens = upper and (first or after_dot or not _OPENERS.isdisjoint(gap))
            if upper and (kind == _NAMELIKE or not opens):
                if run and opens:
                    _flush(run, repeat, entities)  # a name ends with its sentence
                run.append(stem)
                first = False
                after_dot = dot
                continue
        if run:
            _flush(run, repeat, entities)
        first = False
        after_dot = dot
    if run:
        _flush(run, repeat, entities)


def _flush(run: list[str], repeat: int, entities: Counts) -> None:
    for name in run:
        entities[name] = entities.get(name, 0) + repeat
    if len(run) > 1:
        phrase = " ".join(run)
        entities[phrase] = entities.get(phrase, 0) + repeat
    run.clear()


# 1 + ln(count) for the counts an article has: a list index, not a log call.
_DAMPED = [0.0, *(1.0 + math.log(c) for c in range(1, 256))]


def _weigh(counts: Counts, language: str, keep: int) -> Vector:
    cached = _cache(_WEIGHTS, language)
    lookup = cached.get
    weights: Vector = {}
    for term, count in counts.items():
        weight = lookup(term)
        if weight is None:
            weight = cached[term] = _weight(term, language)
        weights[term] = (_DAMPED[count] if count < 256 else 1.0 + math.log(count)) * weight
    return normalise(top(weights, keep))


def _weight(term: str, language: str) -> float:
    if " " in term:
        # A multi-word name is rarer than its rarest word; the sum of the word
        # IDFs is its IDF under independence, capped like any unseen token.
        return min(_IDF_CAP, sum(idf(w, language) for w in term.split()))
    return idf(term, language)


def extract(
    title: str,
    text: str,
    language: str | None = None,
    text_chars: int = DEFAULT_TEXT_CHARS,
    keep: int = DEFAULT_FEATURE_TERMS,
) -> Features:
    """The feature vectors of one article."""
    lang = _language(language)
    terms: Counts = {}
    entities: Counts = {}
    # Title Case headlines capitalise every word, so their capitals say nothing
    # about names: take only words there, and names from the body.
    title_entities: Counts = {}
    _count(title, _TITLE_REPEAT, lang, terms, title_entities)
    if not _title_case(title):
        entities.update(title_entities)
    title_terms = dict(terms)
    _count(text[:text_chars], 1, lang, terms, entities)
    return Features(
        terms=_weigh(terms, lang, keep),
        entities=_weigh(entities, lang, keep),
        title=_weigh(title_terms, lang, keep),
    )


def _title_case(title: str) -> bool:
    words = [w for w in title.split() if w[:1].isalpha() and w.lower() not in _STOPWORDS]
    return len(words) >= 3 and sum(w[0].isupper() for w in words) > 0.6 * len(words)


def top(vector: Mapping[str, float], keep: int) -> Vector:
    """The *keep* heaviest entries, heaviest first; ties keep their order in *vector*."""
    # What heapq.nlargest documents itself as equal to, in a third of its time
    # for the 50-300 entries of an article or a story (one C sort, no heap).
    return dict(sorted(vector.items(), key=itemgetter(1), reverse=True)[:keep])


def normalise(vector: Mapping[str, float]) -> Vector:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {t: w / norm for t, w in vector.items()} if norm > 0 else {}


def cosine(a: Mapping[str, float], b: Iterable[tuple[str, float]]) -> float:
    """Dot product of a normalised vector with normalised (term, weight) pairs."""
    get = a.get
    return sum(w * get(t, 0.0) for t, w in b)


# Features are extracted once, when an item is normalised (in a worker process
# during a big refresh), and stored beside it; the clusterer decodes them in a
# few C calls instead of tokenising again. The header names what they were
# made with, so a change of ``text_chars`` or of this code is never mixed up.
_FORMAT = "feat2"  # feat1: names ran on across a full stop
_SEP = "\t"  # never inside a token (_TOKEN)


def encode_features(features: Features, text_chars: int, keep: int) -> bytes:
    """Features as bytes: a header line, then each vector's float64 weights in
    hex and its keys, so decoding gives back exactly the same floats."""
    lines = [_SEP.join((_FORMAT, str(text_chars), str(keep)))]
    for vector in (features.terms, features.entities, features.title):
        lines.append(_SEP.join((array("d", vector.values()).tobytes().hex(), *vector)))
    return "\n".join(lines).encode()


def decode_features(data: bytes | None, text_chars: int, keep: int) -> Features | None:
    """The features encoded in *data*, or None when there are none, or they were
    made with other settings or by another version of this module."""
    if not data:
        return None
    head, *lines = data.decode().split("\n")
    if head != _SEP.join((_FORMAT, str(text_chars), str(keep))) or len(lines) != 3:
        return None
    terms, entities, title = (_decoded(line) for line in lines)
    return Features(terms, entities, title)


def _decoded(line: str) -> Vector:
    weights, *keys = line.split(_SEP)
    values = array("d")
    values.frombytes(bytes.fromhex(weights))
    return dict(zip(keys, values, strict=True))
