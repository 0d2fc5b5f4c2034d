"""The local engine: one process streams each Parquet file through the Scorer into an atomic output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runtime.engines.job import Job, OutputOptions
from runtime.model.model_dir import package_versions
from runtime.files.parquet_io import (
    METADATA_KEY,
    InputFile,
    atomic_parquet_writer,
    open_input,
    output_schema,
    read_batches,
    read_metadata,
    scored_batch,
    texts_of,
)
from runtime.engines.progress import Progress
from runtime.model.scorer import Scorer
from runtime.files.storage import Location, parquet_files_under

DEFAULT_WINDOW_ROWS = 8192
RUNTIME_PACKAGES = ("onnxruntime", "tokenizers", "numpy", "pyarrow")


@dataclass
class RunStats:
    """What the summary reports, summed over files."""

    rows: int = 0
    null_rows: int = 0
    truncated_rows: int = 0
    chunked_rows: int = 0
    deduplicated_rows: int = 0
    files: int = 0
    skipped_files: int = 0
    outputs: list[str] = field(default_factory=list)
    orphaned_outputs: list[str] = field(default_factory=list)  # outputs under OUT whose input no longer exists

    def add(self, other: RunStats) -> None:
        self.rows += other.rows
        self.null_rows += other.null_rows
        self.truncated_rows += other.truncated_rows
        self.chunked_rows += other.chunked_rows
        self.deduplicated_rows += other.deduplicated_rows
        self.files += other.files
        self.skipped_files += other.skipped_files
        self.outputs += other.outputs
        self.orphaned_outputs += other.orphaned_outputs


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def model_record(scorer: Scorer, options: OutputOptions) -> dict[str, Any]:
    """Which model and options made an output: enough to reproduce it."""
    manifest = scorer.manifest
    return {
        "model_sha256": manifest.sha256,
        "checkpoint": manifest.checkpoint,
        "labels": manifest.labels,
        "activation": scorer.function_to_apply,
        "quantization": manifest.quantization,
        "precision_used": scorer.chosen_precision.record(),  # the arithmetic, its agreement and the CPU flags
        **options.record(),
        "long_text_policy": scorer.long_text.as_record(),  # with the model's default stride filled in
        "versions": {"runtime": package_versions(RUNTIME_PACKAGES), "export": manifest.versions},
    }


def resume_identity(scorer: Scorer, source: InputFile, options: OutputOptions) -> dict[str, Any]:
    """What --resume compares: the model's sha256, the input's identity and every option that changes the output."""
    return {"model_sha256": scorer.manifest.sha256, "input_identity": source.identity, **options.record()}


def already_done(destination: Location, identity: dict[str, Any]) -> bool:
    """--resume trusts an output only when a finished run made it from the same input, model and options."""
    record = read_metadata(destination) if destination.exists() else None
    return bool(record) and "finished_at" in record and all(record.get(key) == identity[key] for key in identity)


def score_file(
    scorer: Scorer,
    source: InputFile,
    destination: Location,
    options: OutputOptions,
    progress: Progress,
    window_rows: int = DEFAULT_WINDOW_ROWS,
    rows: range | None = None,
) -> RunStats:
    """Stream `source` (opened and checked by `open_input`; only `rows` of it, if given) into `destination`,
    window by window, atomically.

    Memory does not grow with the file: only one window of rows is held at a time.
    """
    identity = resume_identity(scorer, source, options)
    record = {
        **model_record(scorer, options),
        "input": str(source.source),
        "input_identity": source.identity,
        "resume_compares": list(identity),
        "started_at": now(),
    }
    schema = output_schema(
        source.parquet.schema_arrow, record, scorer.function_to_apply, options.logits, scorer.long_text.chunked
    )
    stats = RunStats(files=1, outputs=[str(destination)])
    progress.start_file(str(source.source))
    with atomic_parquet_writer(destination, schema) as writer:
        for batch in read_batches(source.parquet, source.source, window_rows, rows):
            pairs = None if options.text_pair_column is None else texts_of(batch, options.text_pair_column)
            scores = scorer.score(texts_of(batch, options.text_column), pairs, on_rows=progress.update)
            writer.write_batch(scored_batch(batch, schema, scorer.labels, scores))
            stats.rows += batch.num_rows
            stats.null_rows += int((~scores.valid).sum())
            stats.truncated_rows += scores.truncated
            stats.chunked_rows += int((scores.chunks > 1).sum())
            stats.deduplicated_rows += scores.deduplicated
        if stats.rows == 0:
            writer.write_table(schema.empty_table())
        record.update(
            rows=stats.rows,
            null_rows=stats.null_rows,
            truncated_rows=stats.truncated_rows,
            chunked_rows=stats.chunked_rows,
            deduplicated_rows=stats.deduplicated_rows,
            finished_at=now(),
        )
        writer.add_key_value_metadata({METADATA_KEY: json.dumps(record).encode()})
    return stats


def orphaned_outputs(job: Job) -> list[str]:
    """Outputs under OUT whose input no longer exists: reported, never deleted."""
    if not job.tree or not job.destination.is_dir():
        return []
    planned = {task.destination.path for task in job.tasks}
    found = (job.destination.child(path) for path in parquet_files_under(job.destination))
    return [str(output) for output in found if output.path not in planned]


def run_local(job: Job, scorer: Scorer) -> RunStats:
    """Check every input, skip what --resume may trust, then score the rest file by file."""
    stats = RunStats(orphaned_outputs=orphaned_outputs(job))
    opened = [(open_input(task.source, job.output), task.destination) for task in job.tasks]  # fail before writing
    todo = []
    for source, destination in opened:
        if job.resume and already_done(destination, resume_identity(scorer, source, job.output)):
            stats.skipped_files += 1
        else:
            todo.append((source, destination))
    with Progress(sum(source.rows for source, _ in todo), job.progress_every) as progress:
        for source, destination in todo:
            stats.add(score_file(scorer, source, destination, job.output, progress))
    return stats
