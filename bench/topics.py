"""Tag the stories of a labelled JSONL corpus and check the tags against the headlines.

Usage:
    python bench/topics.py CORPUS.jsonl [--sample 20] [--seed 4] [--repeat 5]

Items are built as bench/cluster_direct.py builds them, clustered with
``Clusterer(ClusterSettings()).add_batch``, and each story is tagged with
``tag_story``. Prints the tags of a fixed-seed sample of stories under their lead's
headline, the share of stories whose tags include a name from that headline, and
the tagging time per story and per item beside the clustering time.

"Named in the headline" is computed here, not by aggregator.entities: a headline
word is a name when it is an acronym ("HP", "U.S."), or a capitalised word that
the lead's own text never writes in lower case and writes capitalised after a
lower-case word at least once ("Iran", "Qeshm"), or a capitalised word with
wordfreq zipf < 3.5 that does not open the headline. AM and PM are not names.
A tag matches when one of its words equals a name, or one starts with the other
and both have 4+ letters ("Iranian" / "Iran"), or the tag's initials spell an
acronym ("United States" / "U.S.", "Hewlett-Packard" / "HP").
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import wordfreq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_direct import load_items

from aggregator import topics as topics_module
from aggregator.cluster import Clusterer, ClusterSettings
from aggregator.features import extract
from aggregator.model import Item, Topic
from aggregator.topics import tag_story

_WORD = re.compile(r"[^\W\d_][\w'’.&-]*")
_RARE_ZIPF = 3.5


def cluster(items: Sequence[Item]) -> tuple[list[tuple[Item, list[Item]]], float]:
    """(lead, members) per story, in order of the lead's id, and the seconds taken."""
    extract("warm", "up")  # load the word-frequency table outside the timing
    start = time.perf_counter()
    clusterer = Clusterer(ClusterSettings())
    assignments = clusterer.add_batch(items)
    elapsed = time.perf_counter() - start
    parent = {gone: a.story_id for a in assignments for gone in a.merged}

    def root(sid: str) -> str:
        while sid in parent:
            sid = parent[sid]
        return sid

    by_id = {item.id: item for item in items}
    members: dict[str, list[Item]] = defaultdict(list)
    for a in assignments:
        members[root(a.story_id)].append(by_id[a.item_id])
    leads = {sig.story_id: sig.lead for sig in clusterer.signatures()}
    stories = []
    for sid, group in members.items():
        lead = by_id.get(leads.get(sid) or "", group[0])
        stories.append((lead, group))
    return sorted(stories, key=lambda s: s[0].id), elapsed


def title_names(title: str, text: str) -> set[str]:
    """The names a headline holds, by this module's own rule (see the docstring)."""
    names = set()
    for n, raw in enumerate(_WORD.findall(title)):
        word = raw.rstrip(".’'").removesuffix("’s").removesuffix("'s")
        letters = word.replace(".", "").replace("&", "")
        if 2 <= len(letters) <= 6 and letters.isalpha() and letters.isupper():
            if letters not in ("AM", "PM"):  # "Updated 11/27/2005 3:41 PM"
                names.add(letters.lower())
        elif word[:1].isupper() and len(word) > 1:
            low = word.lower()
            lower_use = re.search(rf"(?<![\w-]){re.escape(low)}(?![\w-])", text)
            cap_use = re.search(rf"\b[a-z]+,? {re.escape(word)}(?![\w-])", text)
            # A headline's first word is capitalised anyway: only the text can tell.
            rare = n > 0 and wordfreq.zipf_frequency(low, "en") < _RARE_ZIPF
            if rare or (cap_use and not lower_use):
                names.add(low)
    return names


def matches(tags: Sequence[Topic], names: set[str]) -> bool:
    for tag in tags:
        words = [w.lower().strip(".’'") for w in re.split(r"[\s-]+", tag.label) if w]
        initials = "".join(w[0] for w in words if w)
        for name in names:
            if name == initials and len(words) > 1:
                return True
            for w in words:
                short, long_ = sorted((w, name), key=len)
                if w == name or (len(short) >= 4 and long_.startswith(short)):
                    return True
    return False


def refresh_times(corpus: Path, repeat: int) -> tuple[float, float]:
    """Best seconds of a whole first refresh of *corpus* as feeds, with and without tags."""
    import json
    import tempfile

    from cluster_quality import write_config, write_feeds

    from aggregator import stories as stories_module
    from aggregator.config import load_config
    from aggregator.pipeline import refresh
    from aggregator.store import open_store

    articles = [
        json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line
    ]
    real = stories_module.tag_story
    best = {True: float("inf"), False: float("inf")}
    for _ in range(repeat):
        for tagging in (True, False):
            stories_module.tag_story = real if tagging else (lambda *args, **kwargs: ())
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                (work / "feeds").mkdir()
                write_feeds(articles, work / "feeds")
                config = load_config(write_config(work, len(articles)))
                store = open_store(config.database)
                start = time.perf_counter()
                refresh(config, store, datetime.now(UTC))
                best[tagging] = min(best[tagging], time.perf_counter() - start)
                store.close()
    stories_module.tag_story = real
    return best[True], best[False]


def main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    args = ap.parse_args(argv)

    items = load_items(args.corpus)
    stories, cluster_s = cluster(items)
    tag_s = float("inf")
    for _ in range(args.repeat):
        # Time every item's first reading, as in a refresh where all are new.
        topics_module._digest.cache_clear()
        start = time.perf_counter()
        tagged = [tag_story(members) for _, members in stories]
        tag_s = min(tag_s, time.perf_counter() - start)

    print(f"{len(items)} items, {len(stories)} stories; sample of {args.sample}, seed {args.seed}")
    picks = random.Random(args.seed).sample(range(len(stories)), min(args.sample, len(stories)))
    for n in sorted(picks):
        lead, members = stories[n]
        print(f"\n[{len(members)}] {lead.title[:90]}")
        print("    " + " | ".join(t.label for t in tagged[n]))

    named = [
        (n, names)
        for n, (lead, _) in enumerate(stories)
        if (names := title_names(lead.title, lead.text[:3000]))
    ]
    hits = [n for n, names in named if matches(tagged[n], names)]
    how = next(p for p in __doc__.split("\n\n") if p.startswith('"Named'))
    print(f"\n{how.strip()}")
    print(
        f"\nstories whose tags include a name from the lead's headline: {len(hits)}/{len(named)}"
        f" = {len(hits) / max(1, len(named)):.1%}"
        f" ({len(stories) - len(named)} stories with no name in the headline left out)"
    )
    misses = [n for n, _ in named if n not in hits]
    for n in misses[:10]:
        lead, _ = stories[n]
        print(f"  miss: {lead.title[:70]!r} -> {[t.label for t in tagged[n]]}")
    with_tags, without = refresh_times(args.corpus, args.repeat)
    print(
        f"\nrefresh of the corpus through the whole pipeline (best of {args.repeat}): "
        f"{with_tags:.2f} s with tagging, {without:.2f} s without: "
        f"tagging adds {with_tags / without - 1:.1%} (target <= 30%)"
    )
    print(
        f"\ntagging: {tag_s * 1000 / len(stories):.3f} ms/story, "
        f"{tag_s * 1000 / len(items):.3f} ms/item (best of {args.repeat}, cold per-item cache)"
        f"\nclustering: {cluster_s * 1000 / len(items):.3f} ms/item;"
        f" tagging / clustering = {tag_s / cluster_s:.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
