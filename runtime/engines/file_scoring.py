"""Scoring one input file (or a slice of its rows) into one output, and a run's counts: what every engine shares.

An engine decides where this runs (this process, a Ray actor, a Spark task) and nothing else, so every engine writes
the same columns and the same footer record, and `--resume` trusts an output whichever engine made it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from runtime.engines.job import Job
from runtime.engines.progress import Progress
from runtime.engines.record import FileRecord, RowCounts, already_done, resume_key
from runtime.files.parquet_io import (
    InputFile,
    OutputOptions,
    atomic_parquet_writer,
    open_input,
    output_schema,
    read_batches,
    scored_batch,
    texts_of,
)
from runtime.files.score_cache import ScoreCache
from runtime.files.storage import Location, parquet_files_under
from runtime.scoring.scorer import Scorer, Scores

DEFAULT_WINDOW_ROWS = 8192


@dataclass
class RunStats:
    """What the summary reports, summed over files."""

    counts: RowCounts = field(default_factory=RowCounts)
    files: int = 0
    skipped_files: int = 0
    outputs: list[str] = field(default_factory=list)
    orphaned_outputs: list[str] = field(default_factory=list)  # outputs under OUT whose input no longer exists

    def add(self, other: RunStats) -> None:
        self.counts.add(other.counts)
        self.files += other.files
        self.skipped_files += other.skipped_files
        self.outputs += other.outputs
        self.orphaned_outputs += other.orphaned_outputs

    @classmethod
    def published(cls, record: FileRecord, destination: Location) -> RunStats:
        return cls(counts=record.counts, files=1, outputs=[str(destination)])


def score_file(
    scorer: Scorer,
    source: InputFile,
    destination: Location,
    options: OutputOptions,
    progress: Progress,
    window_rows: int = DEFAULT_WINDOW_ROWS,
    rows: range | None = None,
    cache: ScoreCache | None = None,
) -> FileRecord:
    """Stream `source` (opened and checked by `open_input`; only `rows` of it, if given) into `destination`,
    window by window, atomically; returns the record written into its footer.

    Memory does not grow with the file: only one window of rows is held at a time. With a `cache`, rows found
    there are not scored, and the new entries are written once the output is.
    """
    record = FileRecord.start(scorer, source, options)
    schema = output_schema(source.parquet.schema_arrow, record.as_dict(), options, scorer.function_to_apply)
    progress.start_file(str(source.source))
    with atomic_parquet_writer(destination, schema) as writer:
        for batch in read_batches(source.parquet, source.source, window_rows, rows):
            scored, scores = score_batch(scorer, batch, schema, options, on_rows=progress.update, cache=cache)
            writer.write_batch(scored)
            record.counts.count(batch.num_rows, scores)
        if record.counts.rows == 0:
            writer.write_table(schema.empty_table())
        writer.add_key_value_metadata(record.finish())
    if cache is not None:
        cache.flush()
    return record


def score_batch(
    scorer: Scorer,
    batch: pa.RecordBatch,
    schema: pa.Schema,
    options: OutputOptions,
    on_rows: Callable[[int], None] | None = None,
    cache: ScoreCache | None = None,
) -> tuple[pa.RecordBatch, Scores]:
    """One block of rows scored into `schema` (the output schema of the batch's own), and its scores for counting.

    Every engine scores through here, so a file scored locally, by a Ray actor or in a Spark task holds the same
    values. A `cache` in front of the scorer answers the rows it holds. With candidate labels (zero-shot) each
    text is scored against every label's hypothesis.
    """
    texts = texts_of(batch, options.text_column)
    question = options.zero_shot()
    if question is not None:
        scores = scorer.score_zero_shot(texts, question, on_rows=on_rows)
    else:
        pairs = None if options.text_pair_column is None else texts_of(batch, options.text_pair_column)
        scores = (cache or scorer).score(texts, pairs, on_rows=on_rows)
    return scored_batch(batch, schema, options.answer_labels(scorer.labels), scores, options), scores


def orphaned_outputs(job: Job) -> list[str]:
    """Outputs under OUT whose input no longer exists: reported, never deleted."""
    if not job.tree or not job.destination.is_dir():
        return []
    planned = {task.destination.path for task in job.tasks}
    found = (job.destination.child(path) for path in parquet_files_under(job.destination)[0])
    return [str(output) for output in found if output.path not in planned]


def files_to_score(job: Job, scorer: Scorer, stats: RunStats) -> list[tuple[InputFile, Location]]:
    """Open and check every input before any work, and skip the outputs --resume may trust (counted in `stats`)."""
    opened = [(open_input(task.source, job.output), task.destination) for task in job.tasks]
    todo = []
    for source, destination in opened:
        if job.resume and already_done(destination, resume_key(scorer, source, job.output)):
            stats.skipped_files += 1
        else:
            todo.append((source, destination))
    return todo
