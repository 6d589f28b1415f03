"""Feature extraction: tokens, names and the sentence boundaries between them."""

from aggregator.features import extract


def test_a_full_stop_after_an_abbreviation_still_ends_the_sentence():
    f = extract("x", "Officials met Smith in the U.S. Police came later.")
    assert "u.s" in f.terms and "u.s" in f.entities
    # "Police" opens a sentence and is a common word: not a name, and not
    # glued to "U.S" into one.
    assert "u.s police" not in f.entities
    assert "police" not in f.entities


def test_capitals_inside_a_sentence_make_one_name():
    f = extract("x", "Later a reporter asked Police Chief Brown about it.")
    assert "police chief brown" in f.entities
    assert {"police", "chief", "brown"} <= f.entities.keys()


def test_a_name_ends_with_its_sentence():
    f = extract("x", "Police questioned John Smith. Lohan said she was home: Tara Reid agreed.")
    assert {"john smith", "lohan", "tara reid"} <= f.entities.keys()
    # A rare word opening the next sentence is a name of its own, not more of this one.
    assert not any(name.startswith(("john smith ", "lohan ")) for name in f.entities)


def test_trailing_apostrophes_and_hyphens_are_not_part_of_a_word():
    f = extract("x", "The players' union and the so- called league met in Qeshm-")
    assert "player" in f.terms
    assert "so" not in f.terms  # a stopword once its hyphen is gone
    assert "qeshm" in f.entities


def test_numbers_are_terms_and_entities():
    f = extract("x", "A magnitude 5.9 quake hit at 6:00, and 1,200 people left.")
    for number in ("5.9", "6:00", "1,200"):
        assert number in f.terms and number in f.entities


def test_a_language_that_wordfreq_lists_under_another_code_is_weighed_by_its_own_words():
    # py3langid says "no" and "hr"; wordfreq has Norwegian as "nb", Croatian as "sh".
    text = "Politiet rykket ut til brannen i Bergen. Policija je stigla kasnije."
    assert extract("x", text, "no") == extract("x", text, "nb")
    assert extract("x", text, "hr") == extract("x", text, "sh")
    # "Politiet" (the police) opens a sentence: a common word in Norwegian,
    # but unknown to English, where it would read as a name.
    assert "politiet" not in extract("x", text, "no").entities
    assert "politiet" in extract("x", text, "en").entities
    assert "bergen" in extract("x", text, "no").entities
