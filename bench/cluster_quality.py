"""Clustering quality through the real pipeline, end to end.

    python bench/cluster_quality.py ARTICLES.jsonl [--scorer score.py] [--keep DIR]

Writes the articles of ARTICLES.jsonl (one JSON object a line: id, title, text,
published, source, ...) as RSS files, one per outlet, into a temporary folder;
runs ``aggregator refresh`` on a temporary config whose only source is that
folder; reads the published Atom back with feedparser; maps each entry's
``rel="related"`` links back to article ids; and scores the stories against the
gold ``event`` ids with the scorer beside the JSONL (``score.py``).

Prints BCubed P/R/F1, pairwise P/R/F1, the number of stories, and the time the
refresh took.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import feedparser

from aggregator.cli import main as aggregator

UNKNOWN_OUTLET = "unknown.invalid"


def article_url(article: dict[str, Any]) -> str:
    return f"https://{article.get('source') or UNKNOWN_OUTLET}/a/{quote(article['id'], safe='')}"


def write_feeds(articles: list[dict[str, Any]], folder: Path) -> None:
    """One RSS 2.0 file per outlet, items in stream order."""
    by_outlet: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for article in articles:
        by_outlet[article.get("source") or UNKNOWN_OUTLET].append(article)
    for n, (outlet, items) in enumerate(sorted(by_outlet.items())):
        lines = [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<rss version="2.0"><channel>',
            f"<title>{escape(outlet)}</title><link>https://{escape(outlet)}/</link>",
            "<description>benchmark feed</description>",
        ]
        for a in items:
            lines.append("<item>")
            lines.append(f"<title>{escape(a.get('title') or '')}</title>")
            lines.append(f"<link>{escape(article_url(a))}</link>")
            lines.append(f'<guid isPermaLink="false">{escape(a["id"])}</guid>')
            if a.get("published"):
                when = datetime.fromisoformat(a["published"].replace("Z", "+00:00"))
                lines.append(f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>")
            lines.append(f"<description>{escape(a.get('text') or '')}</description>")
            lines.append("</item>")
        lines.append("</channel></rss>")
        (folder / f"outlet-{n:04d}.xml").write_text("\n".join(lines), encoding="utf-8")


def write_config(work: Path, count: int) -> Path:
    config = work / "config.toml"
    config.write_text(
        '[state]\ndir = "state"\n'
        f'[output]\npath = "state/feed.atom"\ntitle = "Benchmark"\nlimit = {count}\n'
        '[[sources]]\npath = "feeds"\n',
        encoding="utf-8",
    )
    return config


def predictions(feed_path: Path, url_to_id: dict[str, str]) -> list[dict[str, str]]:
    parsed = feedparser.parse(feed_path.read_bytes())
    if parsed.bozo or parsed.version != "atom10":
        raise SystemExit(f"{feed_path}: not a clean Atom 1.0 feed ({parsed.get('bozo_exception')})")
    rows = []
    for entry in parsed.entries:
        for link in entry.get("links", []):
            if link.get("rel") == "related" and link.get("href") in url_to_id:
                rows.append({"id": url_to_id[link["href"]], "cluster": entry.id})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("articles", type=Path, help="a JSONL file of articles with gold events")
    parser.add_argument("--scorer", type=Path, help="score.py (default: beside the JSONL)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    scorer = args.scorer or args.articles.with_name("score.py")
    lines = args.articles.read_text(encoding="utf-8").splitlines()
    articles = [json.loads(line) for line in lines if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        (work / "feeds").mkdir(parents=True, exist_ok=True)
        write_feeds(articles, work / "feeds")
        config = write_config(work, len(articles))
        started = time.perf_counter()
        status = aggregator(["refresh", "--quiet", "--config", str(config)])
        elapsed = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"refresh failed with status {status}")
        url_to_id = {article_url(a): a["id"] for a in articles}
        rows = predictions(work / "state" / "feed.atom", url_to_id)
        pred_path = work / "predictions.jsonl"
        pred_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(scorer), str(args.articles), str(pred_path), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
    scores = json.loads(result.stdout)
    print(f"articles {scores['articles']}  gold events {scores['gold_events']}")
    print(f"stories  {scores['pred_clusters']}  (articles placed: {len(rows)})")
    print(
        f"BCubed   P {scores['bcubed_p']:.4f}  R {scores['bcubed_r']:.4f}  "
        f"F1 {scores['bcubed_f1']:.4f}"
    )
    print(
        f"pairwise P {scores['pairwise_p']:.4f}  R {scores['pairwise_r']:.4f}  "
        f"F1 {scores['pairwise_f1']:.4f}"
    )
    print(f"refresh  {elapsed:.2f} s for {len(articles)} articles")


if __name__ == "__main__":
    main()
