"""Topic tags: must-have / must-not-have tables on small stories, and the seeds."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.articles import read_article
from aggregator.entities import read_names, writes_lower
from aggregator.model import Item, TopicRule
from aggregator.normalize import normalize
from aggregator.topics import DEFAULT_MAX_TAGS, normalise_label, tag_story, term_of
from tests.conftest import make_item

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
NOW = datetime(2024, 12, 1, tzinfo=UTC)


def item(
    n: int,
    title: str,
    text: str,
    tags: tuple[str, ...] = (),
    outlet: str = "Example Wire",
    author: str | None = None,
) -> Item:
    return make_item(
        id=f"test:{n}",
        title=title,
        text=text,
        published=NOW,
        seen=NOW,
        author=author,
        outlet=outlet,
        tags=tags,
    )


QUAKE = (
    item(
        1,
        "Strong earthquake jolts southern Iran",
        "An earthquake of magnitude 5.9 shook the island of Qeshm in southern Iran on Sunday, "
        "killing 10 people, officials said.\nThe governor of Qeshm, Heidar Alishvandi, said "
        "rescuers from Bandar Abbas had reached seven villages.\nThe quake was felt in Dubai "
        "and across the United Arab Emirates.\nShare",
        outlet="Reuters",
    ),
    item(
        2,
        "Iran Quake Flattens Villages On Qeshm Island",
        "Iranian state television said the quake hit Qeshm on Sunday morning.\nAlishvandi "
        "said tents were sent from Bandar Abbas. Photo: Reuters\nThe Red Crescent said "
        "more aid would arrive on Monday.",
        author="Jane Doe",
    ),
)
LOHAN = (
    item(
        3,
        "Lindsay Lohan Checks Into Betty Ford Center",
        "Lindsay Lohan checked into the Betty Ford Center in Rancho Mirage on Thursday, her "
        "lawyer Shawn Holley said.\nLohan was ordered by a Los Angeles judge to spend 90 days "
        "in rehab. The actress arrived late, Holley said.",
        tags=("Celebrity", "Lindsay Lohan rehab stay ordered by court"),
    ),
    item(
        4,
        "Lohan enters rehab, again",
        "Actress Lindsay Lohan is back in rehab. Lohan, 25, reported to the Betty Ford "
        "Center, according to her attorney Shawn Holley.\nMorning Edition",
        outlet="NPR",
    ),
)
# People written only at the start of sentences, after a title ("Governor",
# "Deputy Public Defender"): the title opens the sentence, not the name.
COAST_ROAD = (
    item(
        5,
        "Coast road to be repaired",
        "Governor Maria Santos toured the flooded coast road on Monday. Maria Santos "
        "promised repairs within a month.",
    ),
    item(
        6,
        "County asked to pay for coast road repairs",
        "Deputy Public Defender Peter Lynch asked the county for the money. Governor "
        "Maria Santos agreed on Tuesday. The Government said it would help.",
        outlet="Harbour Post",
    ),
)

# (story, must have, must not have): labels, compared exactly.
CASES = [
    (
        QUAKE,
        {"Iran", "Qeshm", "Heidar Alishvandi", "Bandar Abbas"},
        {"Sunday", "Monday", "Share", "Photo", "Reuters", "Jane Doe", "Alishvandi", "Iranian"},
    ),
    (
        LOHAN,
        {"Lindsay Lohan", "Betty Ford Center", "Shawn Holley", "Celebrity"},
        {"Lohan", "Thursday", "Morning Edition", "NPR", "Actress", "The", "Lindsay Lohan rehab"},
    ),
    (
        COAST_ROAD,
        {"Maria Santos", "Peter Lynch"},
        {"Santos", "Governor Maria Santos", "Public Defender Peter Lynch", "Deputy", "Government"},
    ),
]


def test_only_the_name_that_opens_a_sentence_is_weak():
    text = "The Government said no. Governor Maria Santos toured the road. Maria Santos left."
    weak = [(m.words, m.weak) for m in read_names("x", text).mentions]
    # "The" opens the first sentence and "Governor" the second: the name after
    # a title is written mid-sentence; the last sentence opens with the name.
    assert weak == [
        (("Government",), True),
        (("Maria", "Santos"), False),
        (("Maria", "Santos"), True),
    ]


@pytest.mark.parametrize(("members", "must", "must_not"), CASES)
def test_tag_tables(members, must, must_not):
    labels = {t.label for t in tag_story(members)}
    assert labels >= must, labels
    assert not labels & must_not, labels


def seed_items() -> list[Item]:
    if not SEEDS.is_dir():
        pytest.skip("../shared/seeds is not here")
    items = []
    for path in sorted(SEEDS.glob("*.txt")):
        entry = read_article(path.read_bytes(), path=str(path), source="seeds", mtime=NOW)
        items.append(normalize(entry, NOW))
    return items


SEED_MUST = {"North Korea", "Russia", "Kim Jong Un", "Andrei Belousov"}
JUNK_LABELS = {
    "Friday", "Saturday", "November", "Share", "Said", "Photo", "AP", "Newslooks",
    "Associated Press", "J. Mansour", "Morning Edition", "Quick Looks", "Deep Look", "Kim",
    "Belousov", "Russian", "North Korean", "Support", "War", "North",
}  # fmt: skip


def test_seed_story_tags():
    topics = tag_story(seed_items())
    labels = {t.label for t in topics}
    assert labels >= SEED_MUST, labels
    assert {"Ukraine", "Ukraine war"} & labels, labels
    assert not labels & JUNK_LABELS, labels
    assert not any(re.fullmatch(r"[\d\W]+", label) for label in labels)


def test_seed_tag_line_yields_names_not_phrases():
    labels = {t.label for t in tag_story(seed_items(), limit=50)}
    assert "North Korea Russia partnership" not in labels
    assert "Kim supports Ukraine war" not in labels


def test_taxonomy_rule_wins_and_absorbs_its_aliases():
    rule = TopicRule("Ukraine war", ("Ukraine", "Kyiv", "Zelenskyy"))
    topics = tag_story(seed_items(), rules=(rule, TopicRule("Baseball", ("MLB",))))
    assert topics[0].label == "Ukraine war" and topics[0].term == "ukraine-war"
    assert "Ukraine" not in {t.label for t in topics}
    assert "Baseball" not in {t.label for t in topics}


def test_rule_matches_words_not_substrings():
    story = (item(9, "Kyivstar outage", "The mobile operator Kyivstar was down for a day."),)
    assert tag_story(story, rules=(TopicRule("Ukraine war", ("Kyiv",)),))[0].label != (
        "Ukraine war"
    )
    story = (item(9, "Drones hit Kyiv", "Drones hit the capital, KYIV, at night."),)
    assert tag_story(story, rules=(TopicRule("Ukraine war", ("kyiv",)),))[0].label == (
        "Ukraine war"
    )


def test_limit_is_respected():
    assert len(tag_story(seed_items())) <= DEFAULT_MAX_TAGS
    assert len(tag_story(seed_items(), limit=3)) == 3
    assert tag_story(seed_items(), limit=0) == ()
    assert tag_story(()) == ()


@pytest.mark.parametrize("members", [QUAKE, LOHAN, QUAKE + LOHAN])
def test_members_in_any_order_give_the_same_tags(members):
    expected = tag_story(members)
    for seed in range(5):
        shuffled = list(members)
        random.Random(seed).shuffle(shuffled)
        assert tag_story(shuffled) == expected


def test_seed_tags_do_not_depend_on_order():
    items = seed_items()
    assert tag_story(items) == tag_story(items[::-1])


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("N. Korea", "North Korea"),
        ("  north   korea ", "North Korea"),
        ("North Korean", "North Korea"),
        ("Russian", "Russia"),
        ("Ukrainian", "Ukraine"),
        ("U.S.", "United States"),
        ("“Kim Jong Un”", "Kim Jong Un"),
        ("Russia’s", "Russia"),
        ("military technology transfer", "Military technology transfer"),
        ("Friday", None),
        ("Share", None),
        ("said", None),
        ("war", None),
        ("2024", None),
        ("10,000", None),
        ("Morning Edition", None),
        ("Associated Press", None),
        ("", None),
        ("   ", None),
    ],
)
def test_normalise_label(label, expected):
    assert normalise_label(label) == expected


def test_normalise_label_maps_rule_aliases():
    rules = (TopicRule("Ukraine war", ("Ukraine", "Kyiv")),)
    assert normalise_label("kyiv", rules) == "Ukraine war"
    assert normalise_label("UKRAINE", rules) == "Ukraine war"
    assert normalise_label("Russia", rules) == "Russia"


@pytest.mark.parametrize(
    ("label", "term"),
    [
        ("North Korea", "north-korea"),
        ("Kim Jong Un", "kim-jong-un"),
        ("Zürich", "zurich"),
        ("AT&T", "at-and-t"),
        ("U.S.", "u-s"),
        ("  --Deep   Look!! ", "deep-look"),
    ],
)
def test_term_of_examples(label, term):
    assert term_of(label) == term


@given(st.text(min_size=1))
def test_term_of_is_url_safe_and_idempotent(label):
    term = term_of(label)
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", term) or (not label.strip() and term == "")
    assert term_of(term) == term
    if label.strip():
        assert term


def test_term_of_non_latin_label_is_stable_hash():
    assert term_of("Россия") == term_of("Россия")
    assert term_of("Россия").startswith("t-")
    assert term_of("Россия") != term_of("Украина")


@given(
    st.text(alphabet="troy des-’'_é1T.\n", max_size=24),
    st.text(alphabet="troyé", min_size=1, max_size=4),
)
def test_writes_lower_is_a_whole_word_search(text, word):
    whole_word = rf"(?<![\w’'-]){re.escape(word)}(?![\w’'-])"
    assert writes_lower(word, text) == (re.search(whole_word, text) is not None)
    assert writes_lower("troy", "Troy was destroyed, troy-like") is False
    assert writes_lower("troy", "they said troy, not Troy") is True
