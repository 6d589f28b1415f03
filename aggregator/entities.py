"""Names in news text: capitalised runs, places and demonyms, titles and junk.

Pure and offline: regular expressions, a small built-in table of countries and
their demonyms, and wordfreq's word frequencies (through :func:`features.idf`).
:func:`read_names` turns one article into a :class:`Reading`;
:mod:`aggregator.topics` spells, weighs and merges the names of a story.

A mention is *strong* when its capitals are evidence of a name: mid-sentence in
a sentence-case line. It is *weak* at the start of a sentence and anywhere in a
Title Case headline or heading, where every word is capitalised; a weak mention
becomes a tag only when the story names it strongly elsewhere, when it is a
known place, or when its words are rare (wordfreq zipf < 4, see ``RARE_IDF``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from .article_lines import OUTLETS, is_show
from .features import idf

__all__ = [
    "COMMON_IDF",
    "JUNK",
    "ORG_WORDS",
    "PLACES",
    "PLACE_NAMES",
    "RARE_IDF",
    "TEXT_CHARS",
    "Mention",
    "Reading",
    "is_acronym",
    "is_junk",
    "read_names",
    "term_of",
    "title_case",
    "writes_lower",
]

# idf = 9 - zipf. Rare: zipf < 4 ("Belousov" 1.7, "Pyongyang" 3.1, "Jeffs" 2.3)
# as opposed to words any page may capitalise ("Support" 5.5, "Look" 5.8).
RARE_IDF = 5.0
# Very common words (zipf > 6: "The", "He", "No") are never a one-word name.
COMMON_IDF = 3.0
# Lines are read only this far into the text: the lead holds who and where
# (features.DEFAULT_TEXT_CHARS gives the evidence), and the cost is per char.
TEXT_CHARS = 2000
LEAD_CHARS = 400
BODY, LEAD, TITLE = 0, 1, 2

# Country: demonyms. Demonyms fold into their place ("Russian" -> Russia);
# a demonym opening a longer name keeps it ("Korean Central News Agency").
_COUNTRIES = """
Afghanistan:Afghan;Albania:Albanian;Algeria:Algerian;Argentina:Argentine,Argentinian;
Armenia:Armenian;Australia:Australian;Austria:Austrian;Azerbaijan:Azerbaijani;
Bangladesh:Bangladeshi;Belarus:Belarusian;Belgium:Belgian;Bolivia:Bolivian;Bosnia:Bosnian;
Brazil:Brazilian;Bulgaria:Bulgarian;Cambodia:Cambodian;Canada:Canadian;Chile:Chilean;
China:Chinese;Colombia:Colombian;Croatia:Croatian;Cuba:Cuban;Cyprus:Cypriot;Czech Republic:Czech;
Denmark:Danish;Egypt:Egyptian;England:English;Estonia:Estonian;Ethiopia:Ethiopian;
Europe:European;Finland:Finnish;France:French;Georgia:Georgian;Germany:German;Ghana:Ghanaian;
Greece:Greek;Haiti:Haitian;Hungary:Hungarian;India:Indian;Indonesia:Indonesian;Iran:Iranian;
Iraq:Iraqi;Ireland:Irish;Israel:Israeli;Italy:Italian;Japan:Japanese;Jordan:Jordanian;
Kazakhstan:Kazakh;Kenya:Kenyan;Korea:Korean;Kuwait:Kuwaiti;Latvia:Latvian;Lebanon:Lebanese;
Libya:Libyan;Lithuania:Lithuanian;Malaysia:Malaysian;Mexico:Mexican;Moldova:Moldovan;
Mongolia:Mongolian;Morocco:Moroccan;Myanmar:Burmese;Nepal:Nepalese,Nepali;Netherlands:Dutch;
New Zealand:New Zealander;Nigeria:Nigerian;North Korea:North Korean;Norway:Norwegian;
Pakistan:Pakistani;Palestine:Palestinian;Peru:Peruvian;Philippines:Filipino,Philippine;
Poland:Polish;Portugal:Portuguese;Qatar:Qatari;Romania:Romanian;Russia:Russian;Rwanda:Rwandan;
Saudi Arabia:Saudi;Scotland:Scottish;Serbia:Serbian;Slovakia:Slovak;Somalia:Somali;
South Africa:South African;South Korea:South Korean;South Sudan:South Sudanese;Spain:Spanish;
Sri Lanka:Sri Lankan;Sudan:Sudanese;Sweden:Swedish;Switzerland:Swiss;Syria:Syrian;
Taiwan:Taiwanese;Thailand:Thai;Tunisia:Tunisian;Turkey:Turkish;Uganda:Ugandan;
Ukraine:Ukrainian;United Kingdom:British;United States:American;Uzbekistan:Uzbek;
Venezuela:Venezuelan;Vietnam:Vietnamese;Wales:Welsh;Yemen:Yemeni;Zimbabwe:Zimbabwean
"""
# Other spellings of one place or body ("N. Korea" is the example).
_ALIASES = """
North Korea:N. Korea,N Korea,DPRK;South Korea:S. Korea,S Korea,Republic of Korea;
United States:U.S.,US,U. S.,USA,U.S.A.,United States of America;
United Kingdom:U.K.,UK,Britain,Great Britain;United Nations:U.N.,UN;
European Union:EU,E.U.;United Arab Emirates:UAE,U.A.E.;Russia:Russian Federation;
Myanmar:Burma;Netherlands:Holland;Kyiv:Kiev
"""


def _words(text: str, sep: str | None = None) -> frozenset[str]:
    return frozenset(w.strip() for w in text.split(sep))


def _table(text: str) -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for entry in text.replace("\n", "").split(";"):
        name, _, others = entry.partition(":")
        for form in (name, *others.split(",")):
            table[tuple(form.lower().split())] = name
    return table


# Lower-case word tuple -> canonical place or body name.
PLACES: dict[tuple[str, ...], str] = {**_table(_COUNTRIES), **_table(_ALIASES)}
PLACE_NAMES = frozenset(PLACES.values())
_PLACE_WORDS = frozenset(w for key in PLACES for w in key if len(key) == 1)

_DAYS = "monday tuesday wednesday thursday friday saturday sunday"
# Words that end a name in a run of capitals ("Center Thursday", "Pledge of Support").
_BREAKS = frozenset(("of", "the", *_words(_DAYS)))
_CONNECTORS = frozenset(("of", "the", "&", "and"))
# Words that open a person's name as a job, not as part of it; cut out when a
# name follows ("Defense Minister Andrei Belousov" -> "Andrei Belousov"). Royal
# and papal titles stay: "Pope Francis" and "Prince Harry" are how they are named.
_TITLES = _words(
    """president vice prime minister secretary chancellor sen. senator rep. gov. governor
    attorney-general mayor ceo chairman chairwoman director judge justice leader commander
    coach dr. dr mr.
    mr mrs. mrs ms. ms deputy ambassador spokesman spokeswoman attorney sheriff detective
    sgt. sergeant capt. captain lt. lieutenant col. colonel gen. adm. admiral speaker
    premier archbishop bishop cardinal rev. former acting interim inspector superintendent
    professor prof. chief officer executive actor actress singer rapper founder defender
    commissioner"""
)
# Words that qualify a title: "Defense Minister", "Assistant District Attorney".
_PORTFOLIOS = _words(
    """defense defence foreign interior finance home state health trade justice energy
    economy education labor labour transport agriculture general district executive first
    lady national security supreme assistant public police of the"""
)
# A one-word run needs the rules in _segments only if it is one of these.
_SLOW = _BREAKS | _TITLES
# After these, "of" belongs to the name ("Bank of America", "Gulf of Mexico").
_OF_HEADS = _words(
    """bank university department ministry secretary republic kingdom gulf bay sea isle cape
    strait duke prince princess church institute college school museum council court board
    house chamber academy federation union association society city state states office
    government commonwealth assembly army party league"""
)
# Words that make a run an organisation or a place, so a title in it is part of it.
ORG_WORDS = _words(
    """agency court department ministry office house council party union bank university
    college school police army navy force forces service services company corp. inc. group
    association institute church hospital city county state states republic kingdom
    federation assembly parliament congress senate government administration commission
    authority board corporation foundation museum club team league airlines airways times
    post news press network center centre fund organization organisation war prize cup
    games square street river sea island islands airport station tower towers hall prison
    facilities committee"""
)
# Never a topic (compared case-folded): dates, page furniture, show names, credits,
# wire services; the seeds' tag line names a show ("Morning Edition") and an outlet.
JUNK = frozenset(
    _words(
        f"""{_DAYS} january february march april may june july august september october
        november december jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri
        sat sun share photo photos video image images file updated published advertisement
        read watch click copyright editor today yesterday tomorrow am pm est edt gmt utc pst
        pdt bst cet said says news breaking mr mrs ms dr i more related newslooks"""
    )
    | _words("breaking news;getty images;ap photo;quick looks;quick look;deep look;deep looks", ";")
    | _words("morning edition;associated press;editor's note;file photo", ";")
    | OUTLETS
)
# A multi-word name ending so is a publication: "Detroit Free Press", "Fox News".
_OUTLET_ENDS = _words(
    """times post journal herald tribune gazette press news wire chronicle telegraph
    observer daily ledger sentinel inquirer examiner bulletin courier dispatch"""
)

# A capitalised word: an acronym with dots ("U.S."), an initial before a name
# ("N. Korea"), an abbreviated title ("Gen."), or a word with inner ' ’ - .
_CAP = (
    r"(?:[A-Z]\.){2,}|[A-Z]\.(?=[ \t]+[A-Z])|(?:Gen|Lt|Col|Sgt|Adm|Capt|Gov|Sen|Rep|Dr|Mr|Mrs|Ms"
    r"|St|Jr|Sr|Rev|Prof)\.|[A-ZÀ-ÖØ-ÞĀ-ž][\w’']*(?:-[A-Z0-9][\w’']*)*"
)
# Lower-case particles inside a name: "Bank of America", "Leonardo da Vinci".
_PARTICLE = r"of(?:[ \t]+the)?|de|da|du|di|van|von|der|den|al|el|bin|la|le|del|dos|das|&"
_JOIN = rf"(?:[ \t]+(?:(?:{_PARTICLE})[ \t]+)?)"
# The lookahead fails fast on the ~95% of positions that hold no capital: half the
# cost of a scan (ECB+ dev, 2,000 chars: 51 -> 25 µs).
_RUN = re.compile(rf"(?=[A-ZÀ-ÖØ-ÞĀ-ž])(?<![\w’'-])(?:{_CAP})(?:{_JOIN}(?:{_CAP}))*")
_WORD = re.compile(r"[^\s&]+|&")
_OPEN = " \t\"“”‘’'([{—–-•*"
_PARENS = re.compile(r"\(([A-Z]{2,6})\)")
_NOT_TERM = re.compile(r"[^a-z0-9]+")
_ROMAN = re.compile(r"[IVXL]+")


class Mention(NamedTuple):
    """A name as written: its words, where it stood, and whether its capitals count.

    A NamedTuple, not a frozen dataclass: an article holds ~30 mentions, and the frozen
    dataclass's ``__init__`` was a fifth of the reading's time (cProfile, ECB+ dev).
    """

    words: tuple[str, ...]
    where: int  # BODY, LEAD or TITLE
    weak: bool


@dataclass(frozen=True, slots=True)
class Reading:
    """What one article names, and the text it read them from."""

    mentions: tuple[Mention, ...]
    # ("KCNA", "Korean Central News Agency"): acronyms defined in parentheses.
    acronyms: tuple[tuple[str, str], ...]
    text: str  # the first TEXT_CHARS of the text


def title_case(line: str) -> bool:
    """Whether *line* capitalises (nearly) every word, as headlines and headings do."""
    words = [w for w in line.split() if w[:1].isalpha() and len(w) > 3]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) > 0.6 * len(words)


def is_acronym(word: str) -> bool:
    """``NATO``, ``U.S.``, ``AT&T``: two to six capitals, dots and ampersands aside."""
    letters = word.replace(".", "").replace("&", "")
    return 2 <= len(letters) <= 6 and letters.isalpha() and letters.isupper()


def read_names(title: str, text: str) -> Reading:
    """Every capitalised name in *title* and the first ``TEXT_CHARS`` of *text*."""
    text = text[:TEXT_CHARS]
    mentions: list[Mention] = []
    # An all-capitals headline ("BREAKING: ...") says nothing about names.
    if not title.isupper():
        _scan(title, [(0, len(title))] if title_case(title) else [], TITLE, mentions)
    _scan(text, _headings(text), None, mentions)
    acronyms = tuple(
        (match[1], full)
        for match in _PARENS.finditer(text)
        if (full := _initials(text[max(0, match.start() - 80) : match.start()], match[1]))
    )
    return Reading(tuple(mentions), acronyms, text)


def _headings(text: str) -> list[tuple[int, int]]:
    """Spans of the Title Case lines, and of title-case lead-ins such as
    "Troops on the Frontlines: U.S. officials report ..." heading a bullet."""
    spans = []
    start = 0
    for line in text.split("\n"):
        end = start + len(line)
        head, colon, rest = line.partition(": ")
        if colon and len(head) <= 60:
            if title_case(head):
                spans.append((start, start + len(head)))
            line = rest
        if len(line) < 100 and line[-1:] not in '.!?"”' and title_case(line):
            spans.append((end - len(line), end))
        start = end + 1
    return spans


def _scan(
    text: str, headings: list[tuple[int, int]], where: int | None, out: list[Mention]
) -> None:
    """Append the mentions in *text*; *where* None places them by offset (lead or body)."""
    for match in _RUN.finditer(text):
        start = match.start()
        heading = bool(headings) and any(a <= start < b for a, b in headings)
        # The few characters before the run: ". “Kim" opens a sentence; an O(1) look.
        before = text[max(0, start - 6) : start].rstrip(_OPEN)
        initial = heading or (not before and start <= 6) or before[-1:] in ".!?:;|\n"
        place = where if where is not None else LEAD if start < LEAD_CHARS else BODY
        # Only the name the sentence opens with is weak: after a title cut from
        # the front ("Governor Maria Santos toured"), a name is mid-sentence;
        # after "The" it is not ("The Government said": weak, as before).
        opening = _opening(match[0]) if initial else ""
        first = True
        for words in _split_run(match[0]):
            weak = initial and first and _opens(opening, words[0])
            out.append(Mention(words, place, heading or weak))
            first = False


def _opening(run: str) -> str:
    """The first word of *run* that is not a connector ("The", "of")."""
    return next((w for w in run.split() if w.lower() not in _CONNECTORS), "")


def _opens(opening: str, word: str) -> bool:
    """Whether *word* is the run's opening word as written, possessive or hyphen aside."""
    return opening == word or (opening.startswith(word) and opening[len(word)] in "’'-")


@lru_cache(maxsize=65536)
def _split_run(run: str) -> tuple[tuple[str, ...], ...]:
    # Cached: the names of a story recur in every member ("North Korea", "Kim Jong Un").
    if " " not in run and run.isalnum() and run.lower() not in _SLOW:
        return ((run,),)
    return tuple(_segments(_WORD.findall(run)))


def _initials(before: str, acronym: str) -> str | None:
    """The name that *acronym* abbreviates at the end of *before*, if it does."""
    words = before.split()[-len(acronym) :]
    if len(words) == len(acronym) and "".join(w[0] for w in words) == acronym:
        return " ".join(words)
    return None


def _segments(raw: list[str]) -> Iterator[tuple[str, ...]]:
    """Cut a run of capitalised words into names: at possessives, weekdays, an "of"
    that does not belong to a name, a hyphen joining places ("Russia-North Korea")."""
    current: list[str] = []
    for word in raw:
        low = word.lower()
        if low in _BREAKS:
            last = current[-1].lower() if current else ""
            if low in ("of", "the") and (last in _OF_HEADS or (low == "the" and last == "of")):
                current.append(word)
            else:
                yield from _names(current)
                current = []
            continue
        if "-" in word and any(p.lower() in _PLACE_WORDS for p in word.split("-")):
            *heads, word = word.split("-")
            for head in heads:
                yield from _names([*current, head])
                current = []
        stem = word[:-2] if word.endswith(("’s", "'s")) else word.rstrip("’'")
        current.append(stem)
        if stem != word:
            yield from _names(current)
            current = []
    yield from _names(current)


def _names(words: list[str]) -> Iterator[tuple[str, ...]]:
    """Cut a job title out of a name: "Qeshm Governor Mehdi Irannejad" -> ("Qeshm",),
    ("Mehdi", "Irannejad"); "Russian Defense Minister Andrei Belousov" -> ("Russian",),
    ("Andrei", "Belousov"). "Defense Ministry" and "Supreme Court" hold no title."""
    low = [w.lower() for w in words]
    for i, word in enumerate(low):
        if word in _TITLES:
            start, end = i, i + 1
            while start > 0 and low[start - 1] in _PORTFOLIOS:
                start -= 1
            while end < len(low) and (low[end] in _TITLES or low[end] in _PORTFOLIOS):
                end += 1
            if ORG_WORDS.isdisjoint(low[end:]):
                yield from _trim(words[:start])
                yield from _names(words[end:])
                return
    yield from _trim(words)


def _trim(words: list[str]) -> Iterator[tuple[str, ...]]:
    start, end = 0, len(words)
    while start < end and words[start].lower() in _CONNECTORS:
        start += 1
    while end > start and words[end - 1].lower() in _CONNECTORS:
        end -= 1
    if start < end:
        yield tuple(words[start:end])


def writes_lower(word: str, text: str) -> bool:
    """Whether *text* writes the lower-case *word* as a word of its own:
    "troy" in "destroyed" is not "Troy" written in lower case."""
    # str.find, not a regex per word: the words are names, thousands of them,
    # and compiling their patterns was a third of tagging (bench/fetch_scale.py).
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if not (start and _in_word(text[start - 1])) and not (
            end < len(text) and _in_word(text[end])
        ):
            return True
        start = text.find(word, start + 1)
    return False


def _in_word(char: str) -> bool:
    r"""What the regex class ``[\w’'-]`` matches."""
    return char.isalnum() or char in "_’'-"


def term_of(label: str) -> str:
    """A URL-safe, stable term: ``"Kim Jong Un"`` -> ``"kim-jong-un"``.

    Accents fold to ASCII; anything else outside ``[a-z0-9]`` becomes one dash. A
    label with no ASCII letter or digit ("Россия") gets ``t-`` and a short hash.
    """
    folded = unicodedata.normalize("NFKD", label.replace("&", " and "))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    term = _NOT_TERM.sub("-", ascii_text).strip("-")
    if term or not label.strip():
        return term
    return "t-" + hashlib.sha1(label.strip().encode("utf-8")).hexdigest()[:10]


def is_junk(text: str) -> bool:
    """Never a topic: dates, furniture, shows, outlets, numbers, very common words."""
    low = text.casefold()
    return (
        low in JUNK
        or not any(c.isalpha() for c in text)
        or is_show(text)
        or (" " in low and low.rsplit(" ", 1)[1] in _OUTLET_ENDS)
        or _ROMAN.fullmatch(text) is not None
        or (" " not in low and idf(low) < COMMON_IDF and not is_acronym(text))
    )
