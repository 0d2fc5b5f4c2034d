"""`python -m runtime.score IN OUT`: score a Parquet file (or a directory of them) with an exported model.

Exit codes: 0 done; 2 bad usage or bad input (one `error:` line); 1 a bug; 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from runtime.activations import FUNCTIONS_TO_APPLY
from runtime.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS
from runtime.chunking import CHUNK_AGGREGATES, DEFAULT_MAX_CHUNKS, LONG_TEXT_MODES
from runtime.errors import InputError
from runtime.local_engine import RunStats, already_scored, plan_tree, score_file
from runtime.parquet_io import first_line, open_input
from runtime.scorer import Scorer

DEFAULT_MODEL = Path("models/default")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 0")
    return value


class OneLineParser(argparse.ArgumentParser):
    """Bad usage is one `error:` line and exit code 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m runtime.score", description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, metavar="IN", help="Parquet file or directory of Parquet files")
    parser.add_argument("output", type=Path, metavar="OUT", help="Parquet file, or directory when IN is one")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model dir from `python -m export`")
    parser.add_argument("--text-column", default="text", help="column holding the texts (default: text)")
    parser.add_argument(
        "--text-pair-column", default=None, help="column holding each text's pair (the pipeline's text_pair)"
    )
    parser.add_argument(
        "--function-to-apply",
        choices=FUNCTIONS_TO_APPLY,
        default=None,
        help="softmax, sigmoid or none (raw logits) in score/probabilities (default: the model's)",
    )
    parser.add_argument("--logits", action="store_true", help="add a logits column (the raw model outputs)")
    parser.add_argument(
        "--long-text",
        choices=LONG_TEXT_MODES,
        default="truncate",
        help="texts past the max length: truncate (the pipeline's way) or chunk into overlapping windows",
    )
    parser.add_argument(
        "--chunk-stride",
        type=non_negative_int,
        default=None,
        help="tokens consecutive windows share in chunk mode (default: a quarter of the model's max length)",
    )
    parser.add_argument(
        "--chunk-aggregate", choices=CHUNK_AGGREGATES, default="mean", help="mean or max of the windows' scores"
    )
    parser.add_argument(
        "--max-chunks",
        type=positive_int,
        default=DEFAULT_MAX_CHUNKS,
        help=f"windows per text at most; the rest is dropped and counted as truncated (default {DEFAULT_MAX_CHUNKS})",
    )
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_MAX_BATCH_ROWS, help="max rows per batch")
    parser.add_argument(
        "--max-batch-tokens", type=positive_int, default=DEFAULT_MAX_BATCH_TOKENS, help="max padded tokens per batch"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--resume", action="store_true", help="skip outputs already made by the same model")
    parser.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start a local one)")
    parser.add_argument("--actors", type=positive_int, default=None, help="Ray actor pool size")
    return parser.parse_args(argv)


def plan_jobs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """File -> file or dir -> dir; refuse anything that could overwrite the input."""
    if not src.exists():
        raise InputError(f"input {src} does not exist")
    if src.resolve() == dst.resolve():
        raise InputError(f"output {dst} is the input; choose another OUT (the input is never overwritten)")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise InputError(f"input {src} is a directory but output {dst} is a file; OUT must be a directory")
        if dst.resolve().is_relative_to(src.resolve()):
            raise InputError(f"output {dst} is inside the input directory {src}; choose an OUT outside it")
        return plan_tree(src, dst)
    if dst.is_dir():
        raise InputError(f"output {dst} is a directory but input {src} is a file; OUT must be a file path")
    return [(src, dst)]


def run_local(args: argparse.Namespace, scorer: Scorer, jobs: list[tuple[Path, Path]]) -> RunStats:
    stats = RunStats()
    todo = []
    for src, dst in jobs:
        if args.resume and already_scored(dst, scorer):
            stats.skipped_files += 1
            continue
        # fail on any bad file before writing
        todo.append((src, dst, open_input(src, args.text_column, args.text_pair_column, args.logits, args.long_text == "chunk")))
    total = sum(parquet.metadata.num_rows for _, _, parquet in todo)
    with tqdm(total=total, unit="rows", disable=not sys.stderr.isatty(), dynamic_ncols=True) as progress:
        for src, dst, parquet in todo:
            stats.add(
                score_file(
                    scorer, parquet, src, dst, args.text_column, on_rows=progress.update,
                    text_pair_column=args.text_pair_column, with_logits=args.logits,
                )
            )
    return stats


def summary(stats: RunStats, seconds: float, load_seconds: float, args: argparse.Namespace, scorer: Scorer) -> str:
    """One line: what was scored, how fast (rows/s excludes the model load), with which model, where to."""
    scoring = seconds - load_seconds
    rate = stats.rows / scoring if scoring > 0 else 0.0
    skipped = f", {stats.skipped_files} file(s) already done" if stats.skipped_files else ""
    files = f" in {stats.files} file(s){skipped}" if args.input.is_dir() else ""
    chunked = f", {stats.chunked_rows} chunked" if args.long_text == "chunk" else ""
    return (
        f"scored {stats.rows} rows{files} ({stats.null_rows} null, {stats.truncated_rows} truncated{chunked}) "
        f"in {seconds:.1f} s ({load_seconds:.1f} s model load), {rate:,.0f} rows/s; model {args.model} "
        f"(sha256 {scorer.manifest.sha256[:12]}); wrote {args.output}"
    )


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    started = time.perf_counter()
    try:
        jobs = plan_jobs(args.input, args.output)
        scorer = Scorer(
            args.model, threads=args.threads, max_batch_rows=args.batch_size, max_batch_tokens=args.max_batch_tokens,
            function_to_apply=args.function_to_apply, long_text=args.long_text, chunk_stride=args.chunk_stride,
            chunk_aggregate=args.chunk_aggregate, max_chunks=args.max_chunks,
        )
        if args.text_pair_column and args.long_text == "chunk":
            raise InputError("--long-text chunk scores single texts; drop --text-pair-column or use --long-text truncate")
        load_seconds = time.perf_counter() - started
        if args.engine == "ray":
            if args.text_pair_column or args.function_to_apply or args.logits or args.long_text == "chunk":
                raise InputError(
                    "--engine ray does not take --text-pair-column, --function-to-apply, --logits or --long-text "
                    "chunk yet; use --engine local"
                )
            from runtime.ray_engine import run_ray

            stats = run_ray(args, scorer)
        else:
            stats = run_local(args, scorer, jobs)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no partial output was left behind", file=sys.stderr)
        return 130
    print(summary(stats, time.perf_counter() - started, load_seconds, args, scorer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
