"""Score the clusterer on a labelled JSONL corpus, items built directly (no feeds).

Usage:
    python bench/cluster_direct.py CORPUS.jsonl [--score score.py] [--out pred.jsonl]
        [--set threshold=0.3 --set undated_margin=0.05 ...] [--sweep [FIELD]]
    python bench/cluster_direct.py --speed 1000,10000,100000

CORPUS.jsonl lines: {"id", "title", "text", "published", "source", "lang", ...}.
The scorer defaults to ``score.py`` beside the corpus; it is run as a module
(its ``score`` and ``fmt`` functions), never copied. ``--sweep`` reruns with
the chosen setting (default ``threshold``) across a range, to show whether
the F1 sits on a plateau or a spike. ``--speed`` loads N synthetic stories
(Zipf-distributed English words, 1,000 stories a day) and times 1,000 news-sized items.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import importlib.util
import json
import random
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import wordfreq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.cluster import Clusterer, ClusterSettings, Signature
from aggregator.features import extract
from aggregator.model import Item
from aggregator.story_index import SparseVector

# When no item date exists, ``seen`` is our read time; fixed so runs repeat.
_SEEN = datetime(2024, 1, 1, tzinfo=UTC)


def load_items(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        published = row.get("published")
        when = datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None
        items.append(
            Item(
                id=str(row["id"]),
                source=row.get("source") or "unknown",
                title=row.get("title") or "",
                url=None,
                guid=None,
                summary="",
                text=row.get("text") or "",
                content_html="",
                published=when,
                updated=None,
                seen=_SEEN,
                author=None,
                outlet=row.get("source") or "unknown",
                tags=(),
                language=row.get("lang"),
                fingerprint=str(row["id"]),
            )
        )
    return items


def load_scorer(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ecb_score", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load scorer {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_value(field: str, text: str) -> Any:
    if field == "window":
        return timedelta(days=float(text))
    if field == "weights":
        return tuple(float(x) for x in text.split(","))
    kind = {f.name: f.type for f in dataclasses.fields(ClusterSettings)}[field]
    return int(text) if kind == "int" else float(text)


def run(items: Sequence[Item], settings: ClusterSettings) -> tuple[dict[str, str], float]:
    extract("warm", "up")  # load the word-frequency table outside the timing
    start = time.perf_counter()
    assignments = Clusterer(settings).add_batch(items)
    elapsed = time.perf_counter() - start
    # Resolve merges: a story absorbed later takes its absorber's id.
    parent: dict[str, str] = {}
    for a in assignments:
        for gone in a.merged:
            parent[gone] = a.story_id

    def root(sid: str) -> str:
        while sid in parent:
            sid = parent[sid]
        return sid

    return {a.item_id: root(a.story_id) for a in assignments}, elapsed


def _item(n: int, title: str, text: str, when: datetime | None) -> Item:
    return Item(
        id=f"synthetic:{n}",
        source="bench",
        title=title,
        url=None,
        guid=None,
        summary="",
        text=text,
        content_html="",
        published=when,
        updated=None,
        seen=_SEEN,
        author=None,
        outlet=f"outlet{n % 50}",
        tags=(),
        language="en",
        fingerprint=str(n),
    )


def _synthetic_text(rng: random.Random, vocab: Sequence[str], words: int) -> str:
    # Zipf-like word draws (weight 1/rank) plus a few capitalised rare names.
    picks = rng.choices(vocab, cum_weights=_CUM[: len(vocab)], k=words)
    names = [f"Name{rng.randrange(200_000)}" for _ in range(6)]
    return " ".join(picks[: words // 2] + names + picks[words // 2 :])


_CUM: list[float] = []


def speed(sizes: Sequence[int], settings: ClusterSettings, profile: bool = False) -> None:
    rng = random.Random(7)
    # Real English words, so the IDF prior weighs them as it would real news.
    vocab = wordfreq.top_n_list("en", 20_000)
    total = 0.0
    for rank in range(1, len(vocab) + 1):
        total += 1.0 / rank
        _CUM.append(total)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    print("stories   load-s  items/s  maxrss-MB")
    for size in sizes:
        sigs = []
        for n in range(size):
            f = extract(_synthetic_text(rng, vocab, 8), _synthetic_text(rng, vocab, 300))
            when = start + timedelta(days=n / 1000)
            sigs.append(
                Signature(
                    f"story:{n}", when, when, 1,
                    SparseVector.of(f.terms, settings.story_terms),
                    SparseVector.of(f.entities, settings.story_terms),
                    SparseVector.of(f.title, settings.story_terms // 2),
                )
            )  # fmt: skip
        t0 = time.perf_counter()
        clusterer = Clusterer(settings, sigs)
        load = time.perf_counter() - t0
        del sigs
        end = start + timedelta(days=size / 1000)
        items = [
            _item(n, _synthetic_text(rng, vocab, 8), _synthetic_text(rng, vocab, 300), end)
            for n in range(1000)
        ]
        t0 = time.perf_counter()
        if profile:
            cProfile.runctx("clusterer.add_batch(items)", globals(), locals(), sort="tottime")
        clusterer.add_batch(items)
        rate = len(items) / (time.perf_counter() - t0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{size:>7}  {load:7.2f}  {rate:7.0f}  {rss:9.0f}")


def main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, nargs="?")
    ap.add_argument("--speed", help="comma-separated synthetic story counts to time")
    ap.add_argument("--score", type=Path, help="score.py (default: beside the corpus)")
    ap.add_argument("--out", type=Path, help="where to write predictions JSONL")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--sweep", nargs="?", const="threshold", metavar="FIELD")
    ap.add_argument("--values", help="comma-separated sweep values")
    args = ap.parse_args(argv)
    overrides = dict(s.split("=", 1) for s in args.set)
    settings = ClusterSettings(**{k: parse_value(k, v) for k, v in overrides.items()})
    if args.speed:
        speed([int(n) for n in args.speed.split(",")], settings)
        return 0
    if args.corpus is None:
        ap.error("a corpus is needed unless --speed is given")

    scorer = load_scorer(args.score or args.corpus.with_name("score.py"))
    gold = scorer.read_jsonl(str(args.corpus), "event")
    items = load_items(args.corpus)

    if args.sweep:
        field = args.sweep
        base = getattr(settings, field)
        values = (
            [parse_value(field, v) for v in args.values.split(",")]
            if args.values
            else [round(base + d / 100, 3) for d in range(-12, 13, 2)]
        )
        print(f"{field:>10}  B3-P    B3-R    B3-F1   pw-F1   clusters")
        for value in values:
            pred, _ = run(items, dataclasses.replace(settings, **{field: value}))
            m = scorer.score(gold, pred)
            print(
                f"{value!s:>10}  {m['bcubed_p']:.4f}  {m['bcubed_r']:.4f}  {m['bcubed_f1']:.4f}"
                f"  {m['pairwise_f1']:.4f}  {m['pred_clusters']}"
            )
        return 0

    pred, elapsed = run(items, settings)
    if args.out:
        with args.out.open("w", encoding="utf-8") as f:
            for item_id, cluster in pred.items():
                f.write(json.dumps({"id": item_id, "cluster": cluster}) + "\n")
    print(f"settings: {settings}")
    print(f"{len(items)} items in {elapsed:.3f}s ({len(items) / elapsed:.0f} items/s)")
    print(scorer.fmt(scorer.score(gold, pred)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
