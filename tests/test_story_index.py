"""The inverted index's candidate ranking: the numpy path ranks as the plain one does."""

from __future__ import annotations

from array import array

from hypothesis import given
from hypothesis import strategies as st

from aggregator.story_index import _ranked, _ranked_vectorised

# Few distinct weights and story numbers, so equal sums (ties) are common.
postings = st.lists(st.integers(0, 60), min_size=1, max_size=80)
weights = st.sampled_from([0.05, 0.1, 0.25, 0.3, 1 / 3])
searches = st.lists(st.tuples(postings, weights), min_size=1, max_size=18)


@given(searches, st.integers(1, 100), st.integers(1, 30))
def test_vectorised_ranking_is_the_plain_ranking(search, scan, wanted):
    lists = [(array("q", numbers), weight) for numbers, weight in search]
    assert _ranked_vectorised(lists, scan, wanted) == _ranked(lists, scan, wanted)


def test_ties_go_to_the_story_met_first():
    lists = [(array("q", [5, 3]), 0.5), (array("q", [9]), 0.5), (array("q", [3]), 0.1)]
    assert _ranked(lists, 10, 3) == [3, 5, 9]
    assert _ranked_vectorised(lists, 10, 3) == [3, 5, 9]
