"""Clustering: must-merge / must-not-merge tables, stable ids, persistence, time.

The tables are hand-written look-alikes in the style of reader's
IS_DUPLICATE_DATA; eval-corpus scores live in bench/cluster_direct.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.cluster import (
    Assignment,
    Clusterer,
    ClusterSettings,
    Signature,
    explain,
    story_id,
)
from aggregator.model import Item
from aggregator.story_index import IndexEntry
from tests import conftest

SEEN = datetime(2024, 1, 1, tzinfo=UTC)
DAY = datetime(2005, 11, 27, 9, tzinfo=UTC)
SETTINGS = ClusterSettings()


def make_item(
    id: str,
    title: str,
    text: str,
    published: datetime | None = DAY,
    outlet: str = "example.com",
    url: str | None = None,
) -> Item:
    return conftest.make_item(
        id=id,
        source=f"https://{outlet}/feed",
        title=title,
        text=text,
        published=published,
        seen=SEEN,
        outlet=outlet,
        url=url,
    )


QUAKE_QESHM = (
    "Strong quake shakes Qeshm island",
    "An earthquake of magnitude 5.9 struck Qeshm island in southern Iran on Sunday, "
    "flattening villages near Qeshm City and killing ten people, officials said. "
    "The tremor was felt in Dubai and Oman.",
)
QUAKE_QESHM_2 = (
    "Deadly earthquake hits Iranian island of Qeshm",
    "Ten people died when a 5.9-magnitude earthquake hit Qeshm in the Gulf on Sunday. "
    "Rescue teams searched villages around Qeshm City; residents of Dubai felt it too.",
)
QUAKE_BAM = (
    "Earthquake kills thousands in Bam",
    "A magnitude 6.6 earthquake destroyed much of the ancient city of Bam in Kerman "
    "province, Iran, on Friday. Thousands were feared dead as the Arg-e Bam citadel collapsed.",
)
LAUNCH_Q10 = (
    "T-Mobile to carry BlackBerry Q10 from April 29",
    "T-Mobile confirmed it will sell the BlackBerry Q10 with its physical keyboard. "
    "Business customers can register from April 29 and pricing comes later.",
)
LAUNCH_Q10_2 = (
    "BlackBerry Q10 coming to T-Mobile USA",
    "The keyboard-toting BlackBerry Q10 is headed to T-Mobile, which said registration "
    "for business customers opens on April 29.",
)
LAUNCH_CURVE = (
    "T-Mobile launches BlackBerry Curve 8900 in February",
    "T-Mobile will launch the BlackBerry Curve 8900 on February 11, with Wi-Fi, GPS and "
    "a 3.2-megapixel camera, the carrier said.",
)
FIRE_WELLINGTON = (
    "Fire destroys Waitrose in Wellington",
    "A large fire broke out at the Waitrose supermarket in Wellington, Somerset, early "
    "on Sunday. Eight crews from Devon and Somerset Fire and Rescue fought the blaze.",
)
FIRE_WELLINGTON_2 = (
    "Wellington Waitrose gutted by blaze",
    "Devon and Somerset Fire and Rescue sent eight crews to the Waitrose store on "
    "Wellington High Street on Sunday morning; half the roof collapsed.",
)
FIRE_BANSTEAD = (
    "Waitrose store in Banstead destroyed by fire",
    "More than 50 firefighters tackled a blaze at the Waitrose store in Banstead, Surrey, "
    "on Friday night. Surrey Police are treating the fire as suspicious.",
)
REHAB_LOHAN = (
    "Lindsay Lohan checks into Betty Ford",
    "Lindsay Lohan entered the Betty Ford Center in Rancho Mirage on Thursday for a "
    "90-day stay ordered by a Los Angeles judge, her lawyer said.",
)
REHAB_LOHAN_2 = (
    "Lohan begins court-ordered rehab at Betty Ford Center",
    "Actress Lindsay Lohan arrived at the Betty Ford Center in Rancho Mirage, California, "
    "to start 90 days of rehab, as a Los Angeles judge had ordered.",
)
REHAB_REID = (
    "Tara Reid enters Promises rehab",
    "Actress Tara Reid checked into the Promises treatment centre in Malibu, her "
    "representative told People magazine.",
)

# (a, b): a second outlet's report of the same event.
MUST_MERGE = [
    (QUAKE_QESHM, QUAKE_QESHM_2),
    (LAUNCH_Q10, LAUNCH_Q10_2),
    (FIRE_WELLINGTON, FIRE_WELLINGTON_2),
    (REHAB_LOHAN, REHAB_LOHAN_2),
]
# (a, b): the same kind of event, a different event: the hard negatives.
# Unrelated stories that share one rare number and nothing else.
TICKET_48215 = (
    "Retired teacher claims regional lottery prize",
    "A retired teacher from Dunmore claimed the regional lottery prize on Tuesday "
    "with ticket 48215, the lottery commission said. She bought the ticket at a "
    "petrol station on Main Street and plans to spend it on her grandchildren.",
)
FLIGHT_48215 = (
    "Cargo plane diverts after engine warning",
    "A cargo plane operating as flight 48215 diverted to Shannon after its crew "
    "reported an engine warning over the Atlantic, the airline said. The aircraft "
    "landed safely and engineers were inspecting it on the ground.",
)

MUST_NOT_MERGE = [
    (QUAKE_QESHM, QUAKE_BAM),
    (TICKET_48215, FLIGHT_48215),
    (FIRE_WELLINGTON, FIRE_BANSTEAD),
    (REHAB_LOHAN, REHAB_REID),
    (QUAKE_QESHM, FIRE_WELLINGTON),
]


def pair(a: tuple[str, str], b: tuple[str, str]) -> tuple[Item, Item]:
    return make_item("a", *a, outlet="one.example"), make_item("b", *b, outlet="two.example")


@pytest.mark.parametrize(("a", "b"), MUST_MERGE)
def test_must_merge(a, b):
    x, y = pair(a, b)
    assert explain(x, y, SETTINGS).verdict, "\n".join(explain(x, y, SETTINGS).lines())
    clusterer = Clusterer(SETTINGS)
    first, second = clusterer.add(x), clusterer.add(y)
    assert first.new_story and not second.new_story
    assert second.story_id == first.story_id


@pytest.mark.parametrize(("a", "b"), MUST_NOT_MERGE)
def test_must_not_merge(a, b):
    x, y = pair(a, b)
    assert not explain(x, y, SETTINGS).verdict, "\n".join(explain(x, y, SETTINGS).lines())
    clusterer = Clusterer(SETTINGS)
    assert clusterer.add(x).story_id != clusterer.add(y).story_id


@pytest.mark.xfail(strict=True, reason="known limit: same-day launches by one maker share too much")
def test_same_day_launches_by_one_maker_stay_apart():
    x, y = pair(LAUNCH_Q10, LAUNCH_CURVE)
    assert not explain(x, y, SETTINGS).verdict


MAYOR_LIBRARY = (
    "Mayor Ellen Vasquez opens Dunmore's new riverside library",
    "Mayor Ellen Vasquez cut the ribbon on Dunmore's riverside library on Saturday. "
    "Vasquez said the building, with 40,000 books and a children's wing, had been "
    "promised for a decade. Dunmore residents queued before the doors opened.",
)
MAYOR_FINE = (
    "Ellen Vasquez fined over unpaid Dunmore parking tickets",
    "Dunmore mayor Ellen Vasquez paid a fine for unpaid parking tickets, court records "
    "show. Vasquez told reporters she had overlooked the notices and apologised. The "
    "Dunmore council said the matter was closed.",
)


@pytest.mark.xfail(strict=True, reason="known limit: one person's two events in one week merge")
def test_same_person_different_events_stay_apart():
    # The names and the place carry the score (words 0.51, names 0.87): nothing
    # in bag-of-words features says "library opening" and "parking fine" are
    # different events. Telling them apart needs event-type features.
    x, y = pair(MAYOR_LIBRARY, MAYOR_FINE)
    assert not explain(x, y, SETTINGS).verdict


def test_launches_by_one_maker_years_apart_stay_apart():
    x = make_item("a", *LAUNCH_Q10, datetime(2013, 4, 24, tzinfo=UTC))
    y = make_item("b", *LAUNCH_CURVE, datetime(2009, 2, 2, tzinfo=UTC))
    assert not explain(x, y, SETTINGS).verdict


def test_explain_lines_name_each_component():
    x, y = pair(QUAKE_QESHM, QUAKE_QESHM_2)
    text = "\n".join(explain(x, y, SETTINGS).lines())
    for word in ("terms", "entities", "title", "threshold", "same story"):
        assert word in text


def stream() -> list[Item]:
    """Twelve reports of four events from three outlets, over two days."""
    events = [
        (QUAKE_QESHM, QUAKE_QESHM_2),
        (LAUNCH_Q10, LAUNCH_Q10_2),
        (FIRE_WELLINGTON, FIRE_WELLINGTON_2),
        (REHAB_LOHAN, REHAB_LOHAN_2),
    ]
    items = []
    for n, (a, b) in enumerate(events):
        when = DAY + timedelta(hours=5 * n)
        items.append(make_item(f"e{n}a", *a, when, "one.example", f"https://one.example/{n}"))
        items.append(make_item(f"e{n}b", *b, when + timedelta(hours=3), "two.example"))
        items.append(make_item(f"e{n}c", a[0], b[1], when + timedelta(hours=9), "three.example"))
    return items


def groups(assignments: list[Assignment]) -> dict[str, str]:
    return {a.item_id: a.story_id for a in assignments}


def test_stream_groups_by_event_with_stable_ids():
    result = groups(Clusterer(SETTINGS).add_batch(stream()))
    assert len(set(result.values())) == 4
    for n in range(4):
        assert result[f"e{n}a"] == result[f"e{n}b"] == result[f"e{n}c"]
        # The first member's canonical key names the story, not its position.
        assert result[f"e{n}a"] == story_id(stream()[3 * n])


def test_same_input_twice_gives_same_stories():
    assert Clusterer(SETTINGS).add_batch(stream()) == Clusterer(SETTINGS).add_batch(stream())


def test_add_batch_is_order_independent():
    expected = Clusterer(SETTINGS).add_batch(stream())
    for seed in range(3):
        shuffled = stream()
        random.Random(seed).shuffle(shuffled)
        assert Clusterer(SETTINGS).add_batch(shuffled) == expected


def test_story_id_is_an_absolute_iri_from_url_or_id():
    item = make_item("x", "t", "text", url="https://example.com/a")
    assert story_id(item).startswith("urn:uuid:")
    assert story_id(item) == story_id(replace(item, id="other"))
    assert story_id(replace(item, url=None)) != story_id(item)


def test_signatures_round_trip_and_rebuilt_clusterer_decides_the_same():
    items = stream()
    live = Clusterer(SETTINGS)
    live.add_batch(items[:6])
    stored = [Signature.from_bytes(s.to_bytes()) for s in live.changed()]
    assert stored == live.changed()
    rebuilt = Clusterer(SETTINGS, stored)
    assert rebuilt.add_batch(items[6:]) == live.add_batch(items[6:])


def test_index_entries_with_lazy_signatures_decide_the_same():
    items = stream()
    live = Clusterer(SETTINGS)
    live.add_batch(items[:6])
    blobs = {s.story_id: s.to_bytes() for s in live.changed()}
    entries = [
        IndexEntry.from_text(IndexEntry.of(s, SETTINGS.index_keys).to_text())
        for s in live.changed()
    ]
    loaded: list[str] = []

    def load(story_ids: Sequence[str]) -> dict[str, Signature]:
        loaded.extend(story_ids)
        return {sid: Signature.from_bytes(blobs[sid]) for sid in story_ids}

    rebuilt = Clusterer(SETTINGS, entries=entries, load=load)
    assert rebuilt.add_batch(items[6:]) == live.add_batch(items[6:])
    assert loaded and len(loaded) == len(set(loaded))  # decoded on demand, once each


def test_bridging_item_merges_into_older_story():
    # Two half-reports that share little; a full report covering both bridges them.
    old = make_item("old", "Quake on Qeshm island", QUAKE_QESHM[1], DAY)
    new = make_item("new", "Qeshm City hospital overwhelmed", QUAKE_QESHM_2[1], DAY)
    settings = replace(SETTINGS, threshold=0.95)
    clusterer = Clusterer(settings)
    a, b = clusterer.add(old), clusterer.add(new)
    assert a.story_id != b.story_id
    clusterer.settings = replace(settings, threshold=0.3)
    bridge = make_item("bridge", *QUAKE_QESHM, DAY + timedelta(hours=1))
    c = clusterer.add(bridge)
    assert c.story_id == a.story_id and c.merged == (b.story_id,)
    assert clusterer.removed() == [b.story_id]
    assert b.story_id not in {s.story_id for s in clusterer.changed()}


def test_time_window_is_measured_between_item_dates():
    a = make_item("a", *FIRE_WELLINGTON, DAY)
    near = make_item("near", *FIRE_WELLINGTON_2, DAY + timedelta(days=2))
    far = make_item("far", *FIRE_WELLINGTON_2, DAY + timedelta(days=10))
    clusterer = Clusterer(SETTINGS)
    first = clusterer.add(a)
    assert clusterer.add(near).story_id == first.story_id
    assert clusterer.add(far).new_story  # 10 days after the story's last report
    assert not explain(a, far, SETTINGS).in_window


def test_undated_items_still_cluster():
    a = make_item("a", *REHAB_LOHAN, None)
    b = make_item("b", *REHAB_LOHAN_2, None)
    c = make_item("c", *REHAB_REID, None)
    result = Clusterer(SETTINGS).add_batch([a, b, c])
    assert result[0].story_id == result[1].story_id != result[2].story_id


def test_undated_item_needs_more_to_join_a_dated_story():
    dated = make_item("a", *QUAKE_QESHM, DAY)
    undated = make_item("b", *QUAKE_QESHM_2, None)
    x = explain(dated, undated, SETTINGS)
    assert x.threshold == pytest.approx(SETTINGS.threshold + SETTINGS.undated_margin)


def test_lead_is_the_earliest_full_report_and_is_sticky():
    items = [make_item(i.id, i.title, i.text * 3, i.published) for i in stream()[:3]]
    clusterer = Clusterer(SETTINGS)
    (sid,) = {a.story_id for a in clusterer.add_batch(items)}
    first = min(items, key=lambda i: (i.published, i.id))
    assert clusterer.signature(sid).lead == first.id
    # A newcomer no more central than the lead does not take over.
    late = replace(first, id="late", published=first.published + timedelta(hours=1))
    clusterer.add(late)
    assert clusterer.signature(sid).lead == first.id


def test_lead_prefers_a_full_report_with_a_link():
    brief, full, linked = (make_item(i.id, i.title, i.text, i.published) for i in stream()[:3])
    brief = replace(brief, text=brief.text[:200])
    full = replace(full, text=full.text * 3, published=brief.published + timedelta(hours=1))
    linked = replace(
        linked,
        text=linked.text * 3,
        url="https://example.com/r",
        published=full.published + timedelta(hours=1),
    )
    clusterer = Clusterer(SETTINGS)
    leads, stories = [], set()
    for item in (brief, full, linked):
        assignment = clusterer.add(item)
        stories.add(assignment.story_id)
        leads.append(clusterer.signature(assignment.story_id).lead)
    assert len(stories) == 1
    assert leads == [brief.id, full.id, linked.id]


def test_settings_reject_bad_weights():
    with pytest.raises(ValueError):
        ClusterSettings(weights=(0.5, 0.5, 0.5))


def test_signatures_round_trip_through_bytes_and_read_the_old_json():
    clusterer = Clusterer(SETTINGS)
    clusterer.add_batch(stream())
    for sig in clusterer.changed():
        assert Signature.from_bytes(sig.to_bytes()) == sig
        legacy = json.dumps(sig.to_dict(), separators=(",", ":")).encode()
        assert Signature.from_bytes(legacy) == sig
    empty = Signature("urn:uuid:x", None, None, 0)  # undated, no lead, no vectors
    assert Signature.from_bytes(empty.to_bytes()) == empty
    with pytest.raises(ValueError):
        Signature.from_bytes(b"not a signature")
