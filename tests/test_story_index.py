"""The inverted index's candidate ranking: the numpy path ranks as the plain one does."""

from __future__ import annotations

from array import array
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aggregator.story_index
from aggregator.story_index import _ranked, _ranked_vectorised

# Few distinct weights and story numbers, so equal sums (ties) are common.
postings = st.lists(st.integers(0, 60), min_size=1, max_size=80)
weights = st.sampled_from([0.05, 0.1, 0.25, 0.3, 1 / 3])
searches = st.lists(st.tuples(postings, weights), min_size=1, max_size=18)


# Sums indexed by story number (dense), or by sorted story (sparse numbers).
LAYOUTS = pytest.mark.parametrize("span", [16, 0], ids=["dense", "sparse"])


@LAYOUTS
@given(search=searches, scan=st.integers(1, 100), wanted=st.integers(1, 30))
def test_vectorised_ranking_is_the_plain_ranking(span, search, scan, wanted):
    lists = [(array("q", numbers), weight) for numbers, weight in search]
    with patch.object(aggregator.story_index, "_SPAN_PER_POSTING", span):
        assert _ranked_vectorised(lists, scan, wanted) == _ranked(lists, scan, wanted)


@LAYOUTS
def test_ties_go_to_the_story_met_first(span):
    lists = [(array("q", [5, 3]), 0.5), (array("q", [9]), 0.5), (array("q", [3]), 0.1)]
    assert _ranked(lists, 10, 3) == [3, 5, 9]
    with patch.object(aggregator.story_index, "_SPAN_PER_POSTING", span):
        assert _ranked_vectorised(lists, 10, 3) == [3, 5, 9]
