"""Clustering speed and memory as the archive grows.

    python bench/cluster_scale.py [--sizes 1000,10000,100000] [--batch 1000] [--per-day 2000]

For each size N, in a fresh process: a real SQLite state is filled with N
stories (synthetic news-sized items: a headline and 1-3 KB of text, each story
its own event) published at --per-day stories a day, as an archive fills; then
a batch of new items dated after them (a third follow-up reports of the last
day's stories, the rest new events) is stored and clustered with the
pipeline's own ``cluster_new_items``: it loads the index entries of the stories
inside the batch's window from SQLite, reads the signatures of the candidates
it scores, clusters, and writes the result back. Printed per N:

- how many stored stories fall inside the batch's window;
- cold: items/s for that whole step (load + cluster + save), as a
  one-shot ``aggregator refresh`` pays it, less the once-per-process loading
  of wordfreq's word table and of numpy (about 0.25 s);
- warm: items/s for ``Clusterer.add_batch`` alone, with the window's
  signatures already in memory;
- the process's peak resident memory.

With --per-day at N/5 or more every stored story is inside the window: the
worst case, where nothing but the index keeps the work per item bounded.

The ratios at the end compare each size with the smallest, in the same run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.cluster import Clusterer, Signature
from aggregator.config import load_config
from aggregator.features import idf
from aggregator.model import Entry, Item
from aggregator.normalize import normalize
from aggregator.store import SourceState, open_store
from aggregator.stories import cluster_new_items

START = datetime(2024, 3, 1, tzinfo=UTC)
# 90 syllables, names of 2-3 of them: ~740,000 names, so two synthetic events
# share a name about as rarely as two real ones do.
SYLLABLES = tuple(c + v for c in "bdfghjklmnprstvwyz" for v in "aeiou")


def _vocabulary() -> tuple[list[str], list[float]]:
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("en", 6000) if w.isalpha() and len(w) > 2]
    return words, [word_frequency(w, "en") for w in words]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


class Events:
    """Synthetic events: each has its own people, place, organisation and numbers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words, self.weights = _vocabulary()

    def event(self) -> dict[str, list[str]]:
        rng = self.rng
        return {
            "names": [f"{_name(rng)} {_name(rng)}" for _ in range(2)],
            "place": [_name(rng) + rng.choice(["ville", "burg", " City", "ton"])],
            "org": [f"{_name(rng)} {rng.choice(['Group', 'Council', 'Party', 'Corp'])}"],
            "numbers": [str(rng.randint(10, 99_999)) for _ in range(2)],
            "topic": rng.choices(self.words, self.weights, k=6),
        }

    def article(self, event: dict[str, list[str]], n: int, when: datetime) -> Entry:
        rng = self.rng
        salient = event["names"] + event["place"] + event["org"] + event["numbers"]
        title_words = rng.sample(event["topic"], 3) + rng.sample(salient, 2)
        rng.shuffle(title_words)
        paragraphs = []
        for _ in range(rng.randint(4, 10)):
            words = rng.choices(self.words, self.weights, k=rng.randint(30, 45))
            for _ in range(3):
                words.insert(rng.randrange(len(words)), rng.choice(salient + event["topic"]))
            paragraphs.append(" ".join(words).capitalize() + ".")
        return Entry(
            source="bench",
            origin="bench",
            title=" ".join(title_words).capitalize(),
            guid=f"bench-{n}",
            link=f"https://news{n % 50}.example.org/a/{n}",
            summary="\n\n".join(paragraphs),
            published=when,
            outlet=f"Outlet {n % 50}",
        )


def _items(
    events: Events, specs: list[tuple[dict[str, list[str]], datetime]], first: int
) -> list[Item]:
    seen = max(when for _, when in specs)
    return [
        normalize(events.article(e, first + k, when), seen) for k, (e, when) in enumerate(specs)
    ]


def build(size: int, batch: int, per_day: int, work: Path) -> None:
    """Fill a state in *work* with *size* clustered stories and an unclustered batch.

    Also writes ``truth.json`` (which new item follows up which stored one) and
    ``warm.pickle`` (a second batch for the warm measurement).
    """
    events = Events(seed=size)
    rng = events.rng
    day = timedelta(days=1)
    end = START + day * (size / per_day)
    (work / "config.toml").write_text('[state]\ndir = "state"\n', encoding="utf-8")
    config = load_config(work / "config.toml")
    store = open_store(config.database)
    recent: list[tuple[dict[str, list[str]], str]] = []
    for made in range(0, size, 10_000):
        chunk = min(10_000, size - made)
        specs = [(events.event(), START + day * ((made + k) / per_day)) for k in range(chunk)]
        items = _items(events, specs, made)
        store.update_source("bench", items, SourceState())
        cluster_new_items(config, store)
        recent = [
            (e, i.id) for (e, when), i in zip(specs, items, strict=True) if when >= end - day
        ] or recent
    # The new batch: a third are follow-ups of the last day's stories, the rest new events.
    originals = rng.choices(recent, k=batch // 3)
    follow_ups = [(e, end + day * rng.random()) for e, _ in originals]
    fresh = [(events.event(), end + day * rng.random()) for _ in range(batch - len(follow_ups))]
    items = _items(events, follow_ups + fresh, size)
    store.update_source("bench", items, SourceState())
    store.close()
    truth = {
        "follow_ups": [[i.id, orig] for i, (_, orig) in zip(items, originals, strict=False)],
        "fresh": [i.id for i in items[len(follow_ups) :]],
        "since": (end - config.cluster.window).isoformat(),
    }
    (work / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    more = [(events.event(), end + day * rng.random()) for _ in range(len(fresh))]
    with open(work / "warm.pickle", "wb") as f:
        pickle.dump(_items(events, follow_ups + more, 10 * size), f)


def measure(work: Path) -> dict[str, float]:
    """Cluster the stored batch (cold), check where it went, then time a warm batch."""
    config = load_config(work / "config.toml")
    truth = json.loads((work / "truth.json").read_text(encoding="utf-8"))
    since = datetime.fromisoformat(truth["since"])
    store = open_store(config.database)
    # Load wordfreq's table (0.2 s, once per process) and numpy (0.06 s, which
    # the index imports on its first long posting list) before the clock
    # starts: start-up, the same for 1 item or 100,000.
    idf("news")
    import numpy  # noqa: F401

    started = time.perf_counter()
    placed = cluster_new_items(config, store).placed
    cold = time.perf_counter() - started
    cold_peak = _peak_mb()
    story = dict(store._db.execute("SELECT item_id, story_id FROM members").fetchall())
    joined = sum(story[new] == story[orig] for new, orig in truth["follow_ups"])
    sizes = dict(
        store._db.execute("SELECT story_id, count(*) FROM members GROUP BY story_id").fetchall()
    )
    alone = sum(sizes[story[i]] == 1 for i in truth["fresh"])
    # Warm: the window's stories already in memory, as a long-running process keeps them.
    ids = [e.split("\t", 1)[0] for e in store.index_entries(since)]
    clusterer = Clusterer(
        config.cluster, [Signature.from_bytes(b) for b in store.signatures(ids).values()]
    )
    store.close()
    with open(work / "warm.pickle", "rb") as f:
        warm_items = pickle.load(f)
    started = time.perf_counter()
    clusterer.add_batch(warm_items)
    warm = time.perf_counter() - started
    return {
        "in_window": len(ids),
        "placed": placed,
        "cold_items_per_s": placed / cold,
        "warm_items_per_s": len(warm_items) / warm,
        "follow_ups_joined": joined / len(truth["follow_ups"]),
        "fresh_alone": alone / len(truth["fresh"]),
        "cold_peak_mb": cold_peak,
        "peak_mb": _peak_mb(),
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(*args: str) -> str:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--per-day",
        type=int,
        default=2000,
        help="stories published a day (default 2000); at size/5 or more, every "
        "stored story falls inside the batch's window, the worst case",
    )
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)  # child: SIZE DIR
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child: DIR
    args = parser.parse_args()
    if args.build:
        build(int(args.build[0]), args.batch, args.per_day, Path(args.build[1]))
        return
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            _child(
                "--build",
                str(size),
                tmp,
                "--batch",
                str(args.batch),
                "--per-day",
                str(args.per_day),
            )
            setup = time.perf_counter() - started
            row = json.loads(_child("--measure", tmp))
        row["size"] = size
        rows.append(row)
        print(
            f"{size:>7} stories stored ({row['in_window']:>6} in the window): "
            f"cold {row['cold_items_per_s']:5.0f} items/s (peak {row['cold_peak_mb']:4.0f} MB), "
            f"warm {row['warm_items_per_s']:5.0f} items/s (peak {row['peak_mb']:4.0f} MB); "
            f"follow-ups joined {row['follow_ups_joined']:.1%}, new events alone "
            f"{row['fresh_alone']:.1%} (setup {setup:.0f} s)",
            flush=True,
        )
    base = rows[0]
    for row in rows[1:]:
        print(
            f"rate at {row['size']} / rate at {base['size']}: "
            f"cold {row['cold_items_per_s'] / base['cold_items_per_s']:.2f}, "
            f"warm {row['warm_items_per_s'] / base['warm_items_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
