"""`python -m runtime.score IN OUT`: score a Parquet file (or a directory of them) with an exported model.

Exit codes (runtime/cli.py): 0 done; 1 a bug; 2 bad usage or bad input (one `error:` line); 75 a storage failure
that a retry may cure (one `error:` line); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from runtime.model.activations import FUNCTIONS_TO_APPLY
from runtime.model.precision import PRECISION_CHOICES
from runtime.text.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS
from runtime.text.chunking import CHUNK_AGGREGATES, DEFAULT_MAX_CHUNKS, LONG_TEXT_MODES
from runtime.cli import EXIT_INTERRUPTED, EXIT_RETRY, OneLineParser, exit_code
from runtime.errors import ConfigurationError, ScorerError, first_line
from runtime.engines.job import DEFAULT_PROGRESS_SECONDS, Job, plan_tasks
from runtime.files.parquet_io import OutputOptions
from runtime.engines.file_scoring import RunStats
from runtime.engines.local_engine import run_local
from runtime.engines.record import RUNTIME_PACKAGES, now
from runtime.model.model_dir import package_versions
from runtime.scoring.distribution import Distribution
from runtime.scoring.drift import DEFAULT_PSI_THRESHOLD, check_baseline, compare, summary_of
from runtime.scoring.scorer import Scorer
from runtime.files.score_cache import open_cache_root
from runtime.scoring.zero_shot import DEFAULT_TEMPLATE
from runtime.files.storage import URI_SCHEME, Location, atomic_output, check_writable, locate, read_small
from runtime.model.cache import cached_model_dir

DEFAULT_MODEL = "models/default"
RAY_ONLY = {"--ray-address": "ray_address", "--actors": "actors"}  # flag -> argparse dest
SPARK_ONLY = {"--spark-master": "spark_master"}
ZERO_SHOT_ONLY: dict[str, Callable[[argparse.Namespace], bool]] = {
    "--hypothesis-template": lambda args: args.hypothesis_template is not None,
    "--multi-label": lambda args: args.multi_label,
}
NOT_ZERO_SHOT: dict[str, Callable[[argparse.Namespace], bool]] = {
    "--long-text chunk": lambda args: args.long_text == "chunk",
    "--text-pair-column": lambda args: args.text_pair_column is not None,
    "--function-to-apply": lambda args: args.function_to_apply is not None,
    "--logits": lambda args: args.logits,
    "--score-cache": lambda args: args.score_cache is not None,
}


def whole_number_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


positive_int = whole_number_at_least(1)
non_negative_int = whole_number_at_least(0)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 (off) or more")
    return value


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m runtime.score", description=__doc__.splitlines()[0])
    where = "a path or a URI (s3://, gs://, hdfs://, abfs://, file://)"
    parser.add_argument("input", metavar="IN", help=f"Parquet file or directory of Parquet files: {where}")
    parser.add_argument("output", metavar="OUT", help="Parquet file, or directory when IN is one")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model dir from `python -m export`: {where} (default: {DEFAULT_MODEL})"
    )
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
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default=None,
        help="fp32 (default; int8 for a --quantize int8 export), bf16 (OpenVINO, CPUs with avx512_bf16 or amx_bf16), "
        "int8 (the --quantize int8 export) or auto (the fastest this host runs that agrees with fp32)",
    )
    parser.add_argument("--engine", choices=("local", "ray", "spark"), default="local")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_MAX_BATCH_ROWS, help="max rows per batch")
    parser.add_argument(
        "--max-batch-tokens", type=positive_int, default=DEFAULT_MAX_BATCH_TOKENS, help="max padded tokens per batch"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument(
        "--resume", action="store_true", help="skip outputs already made from the same input, model and options"
    )
    parser.add_argument(
        "--progress-every",
        type=seconds,
        default=DEFAULT_PROGRESS_SECONDS,
        metavar="SECONDS",
        help="when stderr is not a terminal, a progress line this often (default: 30; 0: none)",
    )
    parser.add_argument(
        "--score-cache",
        default=None,
        metavar="URI",
        help=f"a directory ({where}) of scores by model, options and text: rows found there are not scored, "
        "new rows are added (python -m runtime.cache compacts it)",
    )
    parser.add_argument("--summary-json", default=None, metavar="PATH", help="write the run's summary as JSON here")
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="SUMMARY_JSON",
        help="a previous run's --summary-json: compare tonight's label shares and score histogram with it (drift)",
    )
    parser.add_argument(
        "--psi-threshold",
        type=positive_number,
        default=None,
        help=f"with --baseline, a PSI above this prints a warning line (default {DEFAULT_PSI_THRESHOLD})",
    )
    parser.add_argument(
        "--output-prefix",
        default="",
        metavar="PREFIX",
        help="put PREFIX before the output columns' names (label -> PREFIXlabel), for inputs with a label of their own",
    )
    zero_shot = parser.add_mutually_exclusive_group()
    zero_shot.add_argument(
        "--candidate-labels",
        default=None,
        metavar="LABELS",
        help='zero-shot with an NLI model: comma-separated labels to rank for every text, e.g. "sports,politics,tech"',
    )
    zero_shot.add_argument(
        "--candidate-labels-file", default=None, metavar="PATH", help="zero-shot: the candidate labels, one a line"
    )
    parser.add_argument(
        "--hypothesis-template",
        default=None,
        help=f"zero-shot: the hypothesis each label fills, with {{}} for the label (default: {DEFAULT_TEMPLATE!r})",
    )
    parser.add_argument(
        "--multi-label", action="store_true", help="zero-shot: score each label on its own (entailment vs contradiction)"
    )
    parser.add_argument("--ray-address", default=None, help="join this Ray cluster (with --engine ray)")
    parser.add_argument("--actors", type=positive_int, default=None, help="Ray actor pool size (with --engine ray)")
    parser.add_argument(
        "--spark-master", default=None, help="Spark master URL (with --engine spark; default: local[*])"
    )
    args = parser.parse_args(argv)
    for engine, flags in (("ray", RAY_ONLY), ("spark", SPARK_ONLY)):
        misplaced = [flag for flag, value in flags.items() if getattr(args, value) is not None and args.engine != engine]
        if misplaced:
            parser.error(f"{', '.join(misplaced)} only apply with --engine {engine}")
    if args.engine == "spark" and args.resume:
        parser.error("--resume does not apply with --engine spark: Spark writes OUT as one dataset, whole")
    if args.psi_threshold is not None and args.baseline is None:
        parser.error("--psi-threshold only applies with --baseline")
    check_zero_shot(parser, args)
    return args


def check_zero_shot(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Zero-shot options only with candidate labels, and none of the options that mean nothing in zero-shot."""
    asked = args.candidate_labels is not None or args.candidate_labels_file is not None
    if not asked:
        lone = [flag for flag, given in ZERO_SHOT_ONLY.items() if given(args)]
        if lone:
            parser.error(f"{', '.join(lone)} only apply with --candidate-labels or --candidate-labels-file")
        return
    clashing = [flag for flag, given in NOT_ZERO_SHOT.items() if given(args)]
    if clashing:
        parser.error(f"{', '.join(clashing)} do not apply to zero-shot (--candidate-labels): drop them")


def candidate_labels_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    """--candidate-labels split at commas, or --candidate-labels-file's non-blank lines; None when not zero-shot."""
    if args.candidate_labels_file is not None:
        text = read_small(locate(args.candidate_labels_file)).decode("utf-8", errors="replace")
        return tuple(line.strip() for line in text.splitlines() if line.strip())
    if args.candidate_labels is not None:
        return tuple(label.strip() for label in args.candidate_labels.split(",") if label.strip())
    return None


def model_dir_of(model: str) -> tuple[Path, bool | None]:
    """The local model dir for --model, and for a URI whether the local cache already held it."""
    if URI_SCHEME.match(model):
        return cached_model_dir(model)
    return Path(model), None


def build_job(args: argparse.Namespace, summary_json: Location | None) -> tuple[Job, bool | None]:
    """Everything an engine needs, checked (where from, where to, file by file), and whether the model was cached."""
    source, destination = locate(args.input), locate(args.output)
    plan = plan_tasks(source, destination, dataset=args.engine == "spark")
    if args.text_pair_column and args.long_text == "chunk":
        raise ConfigurationError("--long-text chunk scores single texts; drop --text-pair-column or use --long-text truncate")
    if args.score_cache is not None and args.engine != "local":
        raise ConfigurationError("--score-cache runs with --engine local for now")
    score_cache = None if args.score_cache is None else open_cache_root(args.score_cache)
    model_dir, model_cached = model_dir_of(args.model)
    args.candidate_labels = candidate_labels_of(args)
    if args.candidate_labels is not None and args.hypothesis_template is None:
        args.hypothesis_template = DEFAULT_TEMPLATE  # the footer records the template used, default or not
    job = Job(
        source=source,
        destination=destination,
        tasks=plan.tasks,
        tree=plan.tree,
        hidden=plan.hidden,
        model=args.model,
        model_dir=model_dir,
        # every output option is the flag of the same name
        output=OutputOptions(**{option.name: getattr(args, option.name) for option in fields(OutputOptions)}),
        resume=args.resume,
        threads=args.threads,
        max_batch_rows=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
        progress_every=args.progress_every,
        summary_json=summary_json,
        score_cache=score_cache,
        engine=args.engine,
        ray_address=args.ray_address,
        actors=args.actors,
        spark_master=args.spark_master,
    )
    job.output.zero_shot()  # a bad zero-shot question fails before the model loads
    return job, model_cached


def summary_record(
    stats: RunStats, job: Job, scorer: Scorer, model_cached: bool | None, seconds: float, load_seconds: float
) -> dict[str, Any]:
    """The run's summary for orchestrators (--summary-json); rows/s excludes the model load."""
    scoring = seconds - load_seconds
    return {
        "status": "ok",
        **stats.counts.as_dict(),
        "files_done": stats.files,
        "files_skipped": stats.skipped_files,
        "hidden_files_ignored": job.hidden,
        "seconds": round(seconds, 3),
        "load_seconds": round(load_seconds, 3),
        "rows_per_second": round(stats.counts.rows / scoring, 1) if scoring > 0 else 0.0,
        "score_cache": None if job.score_cache is None else str(job.score_cache),
        "model": job.model,
        "model_dir": str(job.model_dir),
        "model_cached": model_cached,
        "model_identity": scorer.manifest.identity,
        "precision": scorer.chosen_precision.record(),
        "precision_note": scorer.chosen_precision.note,
        "versions": {"runtime": package_versions(RUNTIME_PACKAGES), "export": scorer.manifest.versions},
        "engine": job.engine,
        "input": str(job.source),
        "output": str(job.destination),
        "outputs": stats.outputs,
        "orphaned_outputs": stats.orphaned_outputs,
        "finished_at": now(),
    }


def summary(record: dict[str, Any], tree: bool) -> str:
    """One line: what was scored, how fast, with which model, where to, and what needs a look."""
    skipped = f", {record['files_skipped']} file(s) already done" if record["files_skipped"] else ""
    hidden = record["hidden_files_ignored"]
    skipped += f", {len(hidden)} hidden file(s) ignored (.x, _x)" if hidden else ""
    files = f" in {record['files_done']} file(s){skipped}" if tree else skipped
    repeats = f", {record['deduplicated_rows']} deduplicated" if record["deduplicated_rows"] else ""
    chunked = f", {record['chunked_rows']} chunked" if record["chunked_rows"] else ""
    repeats += f", {record['cached_rows']} from the score cache" if record["score_cache"] else ""
    cached = {True: ", cached", False: ", copied to the cache", None: ""}[record["model_cached"]]
    orphans = record["orphaned_outputs"]
    stale = (
        f"; {len(orphans)} output(s) under OUT have no input any more (kept): {', '.join(orphans[:3])}"
        f"{', ...' if len(orphans) > 3 else ''}"
        if orphans
        else ""
    )
    agreement = record["precision"]["agreement"]
    agreed = f", agreement {agreement['label_agreement']:.1%}" if agreement else ""
    faster = f"; {record['precision_note']}" if record["precision_note"] else ""
    return (
        f"scored {record['rows']} rows{files} ({record['null_rows']} null, {record['truncated_rows']} truncated"
        f"{chunked}{repeats}) in {record['seconds']:.1f} s ({record['load_seconds']:.1f} s model load), "
        f"{record['rows_per_second']:,.0f} rows/s in {record['precision']['precision']}{agreed}{faster}; "
        f"model {record['model']} (identity {record['model_identity'][:12]}"
        f"{cached}); wrote {record['output']}{stale}"
    )


def summary_location(path: str | None) -> Location | None:
    """Where --summary-json goes, checked writable now: a bad path must not cost a night's scoring first."""
    if path is None:
        return None
    location = locate(path)
    check_writable(location)
    return location


def baseline_of(path: str | None) -> tuple[str, Distribution] | None:
    """--baseline read and checked now (its labels once the model is loaded): a bad one must not cost a night."""
    if path is None:
        return None
    return path, summary_of(read_small(locate(path)), path)[1]


def write_summary_json(location: Location | None, record: dict[str, Any]) -> None:
    if location is not None:
        with atomic_output(location) as stream:
            stream.write(json.dumps(record, indent=2).encode() + b"\n")


def failed(location: Location | None, code: int, line: str) -> int:
    """Say why on stderr, and in the summary JSON for the orchestrator (when it can be written); the exit code."""
    print(line, file=sys.stderr)
    with contextlib.suppress(ScorerError, OSError):
        write_summary_json(location, {"status": "failed", "exit_code": code, "error": line, "finished_at": now()})
    return code


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def score(
    args: argparse.Namespace, summary_json: Location | None, baseline: tuple[str, Distribution] | None
) -> tuple[dict[str, Any], bool]:
    """Run the job the arguments describe, and compare it with the baseline if given (a `warning:` line when the
    scores drifted); (the summary record, whether IN is a directory)."""
    started = time.perf_counter()
    job, model_cached = build_job(args, summary_json)
    scorer = Scorer(
        job.model_dir,
        threads=job.threads,
        max_batch_rows=job.max_batch_rows,
        max_batch_tokens=job.max_batch_tokens,
        **job.output.scorer_options(),
    )
    if baseline is not None:
        check_baseline(baseline[1], job.output.answer_labels(scorer.labels), baseline[0])
    load_seconds = time.perf_counter() - started
    if job.engine == "ray":
        from runtime.engines.ray_engine import run_ray

        stats = run_ray(job, scorer)
    elif job.engine == "spark":
        from runtime.engines.spark_engine import run_spark

        stats = run_spark(job, scorer)
    else:
        stats = run_local(job, scorer)
    record = summary_record(stats, job, scorer, model_cached, time.perf_counter() - started, load_seconds)
    drift = None
    if baseline is not None:
        threshold = DEFAULT_PSI_THRESHOLD if args.psi_threshold is None else args.psi_threshold
        drift = compare(baseline[1], stats.counts.distribution, baseline[0], threshold)
        record["drift"] = drift.as_dict()
    write_summary_json(job.summary_json, record)
    if drift is not None and drift.warning():
        print(drift.warning(), file=sys.stderr)
    return record, job.tree


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    summary_json = None
    try:
        summary_json = summary_location(args.summary_json)
        record, tree = score(args, summary_json, baseline_of(args.baseline))
    except ScorerError as exc:
        return failed(summary_json, exit_code(exc), f"error: {exc}")
    except OSError as exc:  # a store's failure that no layer below named (a file system call outside storage.py)
        return failed(summary_json, EXIT_RETRY, f"error: {first_line(exc)}")
    except KeyboardInterrupt:
        return failed(summary_json, EXIT_INTERRUPTED, "error: interrupted; no partial output was left behind")
    print(summary(record, tree))
    return 0


if __name__ == "__main__":
    sys.exit(main())
