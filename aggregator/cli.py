"""The ``aggregator`` command: thin wrappers that call the library and print.

Every :class:`AggregatorError` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import __version__
from .config import Config, load_config
from .errors import AggregatorError, ConfigError
from .model import Item, NotModified, RefreshReport, Skipped, Source, Updated
from .opml import Subscription, parse_opml, render_opml
from .store import SourceState, SQLiteStore, open_store

# The commands that fetch, cluster or serve import what they need when they
# run: the others (stories, topics, --version) would spend 0.25 s of their
# 0.4 s importing httpx, feedparser and the pipeline.

__all__ = [
    "COMMANDS",
    "build_parser",
    "cmd_add",
    "cmd_explain",
    "cmd_export_opml",
    "cmd_import_opml",
    "cmd_refresh",
    "cmd_remove",
    "cmd_run",
    "cmd_sources",
    "cmd_stories",
    "cmd_topics",
    "main",
]

DEFAULT_CONFIG = Path("config.toml")


def _now() -> datetime:
    return datetime.now(UTC)


def cmd_refresh(config: Config, args: argparse.Namespace) -> int:
    """Refresh every source once, cluster new items, publish the merged feed."""
    from .pipeline import refresh

    progress = _progress if sys.stderr.isatty() and not args.quiet else None
    store = open_store(config.database)
    try:
        report = refresh(config, store, _now(), progress=progress)
    finally:
        store.close()
    if progress:
        print("\r\033[K", end="", file=sys.stderr)
    _print_report(report)
    return 0


def _progress(done: int, total: int, source: Source) -> None:
    print(f"\r\033[K[{done}/{total}] {source.label}", end="", file=sys.stderr, flush=True)


def _print_report(report: RefreshReport) -> None:
    counts = {"ok": 0, "not modified": 0, "skipped": 0, "error": 0}
    for result in report.results:
        value = result.value
        if isinstance(value, Updated):
            status, detail = "ok", f"{value.new} new, {value.changed} updated"
            if value.warnings:
                detail += f" ({len(value.warnings)} warning(s): {value.warnings[0]})"
        elif isinstance(value, NotModified):
            status, detail = "not modified", ""
        elif isinstance(value, Skipped):
            status, detail = "skipped", value.reason
        else:
            status, detail = "error", value.message
        counts[status] += 1
        print(f"{status:<13} {result.source.label}  {detail}".rstrip())
    print(
        f"{counts['ok']} ok, {counts['not modified']} not modified, {counts['skipped']} skipped, "
        f"{counts['error']} failed; "
        f"{report.new} new and {report.changed} updated items; "
        f"{report.stories} stories in {report.output}"
    )


def cmd_sources(config: Config, args: argparse.Namespace) -> int:
    """List the sources (config.toml's and those added here) with their last status."""
    from .subscribe import all_sources

    store = open_store(config.database)
    try:
        sources = all_sources(config, store)
        states = [store.source_state(source.key) for source in sources]
    finally:
        store.close()
    listed = {s.key for s in config.sources}
    for source, state in zip(sources, states, strict=True):
        when = state.last_attempt.strftime("%Y-%m-%d %H:%M") if state.last_attempt else "never"
        status = "gone" if state.politeness.gone else state.status or "new"
        origin = "" if source.key in listed else ", added"
        print(
            f"{status:<13} {source.label}  [{source.kind}{origin}] {state.items} items, last {when}"
        )
        for line in _source_details(source, state):
            print(f"{'':<13} {line}")
    return 0


def _source_details(source: Source, state: SourceState) -> list[str]:
    p = state.politeness
    lines = [str(source.url or source.path)] if source.name else []
    if p.url:
        lines.append(f"moved permanently to {p.url}")
    if p.next_fetch and not p.gone:
        lines.append(f"next fetch not before {p.next_fetch:%Y-%m-%d %H:%M} UTC")
    if state.message:
        lines.append(state.message)
    return lines


def cmd_add(config: Config, args: argparse.Namespace) -> int:
    """Subscribe to a feed URL, or to the feed a web page links to."""
    from .pipeline import limits
    from .subscribe import find_feed

    found = find_feed(args.url, limits(config))
    store = open_store(config.database)
    try:
        added = store.subscribe([found], _now())
    finally:
        store.close()
    title = f" ({found.title})" if found.title else ""
    print(f"{'added' if added else 'already subscribed'}: {found.url}{title}")
    return 0


def cmd_remove(config: Config, args: argparse.Namespace) -> int:
    """Unsubscribe from a feed added with add or import-opml."""
    if any(s.key == args.url for s in config.sources):
        raise ConfigError(
            f"{config.path.name}: sources", f"{args.url} is listed here; remove it there"
        )
    store = open_store(config.database)
    try:
        removed = store.unsubscribe(args.url)
    finally:
        store.close()
    if not removed:
        raise AggregatorError(args.url, "not subscribed")
    print(f"removed: {args.url}")
    return 0


def cmd_import_opml(config: Config, args: argparse.Namespace) -> int:
    """Subscribe to every feed of an OPML file exported by another feed reader."""
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise AggregatorError(str(args.file), f"cannot read: {exc.strerror}") from exc
    subscriptions = parse_opml(data, str(args.file))
    store = open_store(config.database)
    try:
        added = store.subscribe(subscriptions, _now())
    finally:
        store.close()
    print(f"{added} feeds added, {len(subscriptions) - added} already there")
    return 0


def cmd_export_opml(config: Config, args: argparse.Namespace) -> int:
    """Print the feed subscriptions as OPML 2.0, for any feed reader to import."""
    from .subscribe import all_sources

    store = open_store(config.database)
    try:
        sources = all_sources(config, store)
    finally:
        store.close()
    subscriptions = [Subscription(s.url, s.name) for s in sources if s.url]
    sys.stdout.write(render_opml(subscriptions, config.output.title, _now()).decode())
    return 0


def cmd_stories(config: Config, args: argparse.Namespace) -> int:
    """List the current stories, newest first, with their members and outlets."""
    store = open_store(config.database)
    try:
        stories = store.stories(args.limit)
    finally:
        store.close()
    for story in stories:
        lead = story.lead
        outlets = ", ".join(story.outlets)
        print(f"{story.updated:%Y-%m-%d %H:%M}  {lead.title}")
        print(f"    {story.id}  {len(story.members)} article(s) from {outlets}")
        for member in story.members:
            mark = "*" if member.id == lead.id else " "
            print(f"  {mark} {member.id}  {member.date:%Y-%m-%d}  {member.outlet}: {member.title}")
    print(f"{len(stories)} stories")
    return 0


def cmd_explain(config: Config, args: argparse.Namespace) -> int:
    """Show why two items were or were not put in one story."""
    from .cluster import explain

    store = open_store(config.database)
    try:
        first, second = (_find_item(store, key) for key in (args.first, args.second))
    finally:
        store.close()
    for line in explain(first, second, config.cluster).lines():
        print(line)
    return 0


def _find_item(store: SQLiteStore, key: str) -> Item:
    item = store.find_item(key)
    if item is None:
        raise AggregatorError(key, "no stored item has this id, id prefix or URL")
    return item


def cmd_topics(config: Config, args: argparse.Namespace) -> int:
    """List the topics of the stored stories with their story counts."""
    store = open_store(config.database)
    try:
        counts = store.topic_counts()
    finally:
        store.close()
    for topic, count in counts[: args.limit]:
        print(f"{count:>6}  {topic.label}  ({topic.term})")
    print(f"{len(counts)} topics")
    return 0


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    """Run as a daemon: refresh each source on its interval, watch folders, serve the feeds."""
    from .daemon import run

    return run(config, verbose=args.verbose)


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "refresh": cmd_refresh,
    "run": cmd_run,
    "sources": cmd_sources,
    "stories": cmd_stories,
    "topics": cmd_topics,
    "add": cmd_add,
    "remove": cmd_remove,
    "import-opml": cmd_import_opml,
    "export-opml": cmd_export_opml,
    "explain": cmd_explain,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="Merge news from many feeds into one Atom feed, one entry per event.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, function in COMMANDS.items():
        doc = (function.__doc__ or "").strip()
        sub = commands.add_parser(name, help=doc, description=doc)
        sub.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help="the config file (default: ./config.toml)",
        )
        sub.add_argument("-v", "--verbose", action="store_true", help="log more detail")
        if name == "refresh":
            sub.add_argument("-q", "--quiet", action="store_true", help="no progress display")
        if name in ("stories", "topics"):
            sub.add_argument("--limit", type=int, default=50, help="how many (default: 50)")
        if name in ("add", "remove"):
            sub.add_argument(
                "url", metavar="URL", help="a feed URL (add: or a page linking to one)"
            )
        if name == "import-opml":
            sub.add_argument("file", metavar="FILE", type=Path, help="an OPML file")
        if name == "explain":
            sub.add_argument("first", metavar="ITEM", help="an item id, id prefix or URL")
            sub.add_argument("second", metavar="ITEM", help="another item")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(args.config)
        return COMMANDS[args.command](config, args)
    except AggregatorError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`aggregator stories | head`): no traceback, and
        # none either when Python flushes stdout on exit (the docs' recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
