"""`python -m runtime.cache stats|compact URI`: look after a --score-cache directory.

`stats` prints its entries, shards, part files and bytes. `compact` merges each shard's part files into one (every
night adds a part per shard it touched), keeping the newest entry per key; `--older-than-days N` also drops entries
written more than N days ago. Compaction is safe while runs read or write the cache: a merged part is published
before the parts it replaces are deleted, and a reader that finds a part gone lists again.

Exit codes (runtime/cli.py): 0 done; 2 bad usage or bad input (one `error:` line); 75 a storage failure that a
retry may cure.
"""

from __future__ import annotations

import argparse
import sys

import pyarrow.fs as pafs

from runtime.cli import EXIT_RETRY, OneLineParser, exit_code
from runtime.errors import ConfigurationError, ScorerError, first_line
from runtime.files.score_cache import cache_stats, compact
from runtime.files.storage import Location, locate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m runtime.cache", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser("stats", help="entries, shards, part files and bytes")
    merge = commands.add_parser("compact", help="merge each shard's parts into one; optionally expire old entries")
    for command in (stats, merge):
        command.add_argument("uri", metavar="URI", help="the --score-cache directory: a path or a URI (s3://, ...)")
    merge.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="also drop entries written more than DAYS days ago",
    )
    args = parser.parse_args(argv)
    if args.command == "compact" and args.older_than_days is not None and not args.older_than_days > 0:
        parser.error("--older-than-days must be more than 0")
    return args


def cache_root(uri: str) -> Location:
    """The cache directory; a file, or a local path that does not exist, is a mistake to report (on an object store
    a prefix with no entries yet reads as missing: an empty cache)."""
    root = locate(uri)
    kind = root.info().type
    if kind == pafs.FileType.File or (kind == pafs.FileType.NotFound and root.is_local):
        raise ConfigurationError(f"score cache {uri} is not a directory")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        root = cache_root(args.uri)
        if args.command == "compact":
            merged, expired = compact(root, args.older_than_days)
            print(f"merged {merged} part file(s), expired {expired} entries; now {cache_stats(root).line()}")
        else:
            print(cache_stats(root).line())
    except ScorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return EXIT_RETRY
    return 0


if __name__ == "__main__":
    sys.exit(main())
