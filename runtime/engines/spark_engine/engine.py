"""The CLI's `--engine spark`: the input files read by Spark, scored on `mapInArrow`, written as one dataset.

OUT is what Spark users expect: a directory of part files, committed by Spark's output committer, with
`_SUCCESS` once every task's files are in. The run's record (the model's identity, the options, the inputs'
identities, the row counts, the versions) goes beside it as `_runtime.score.json`, hidden from readers by its
underscore. Everything checkable is checked on the driver before Spark starts: every input file's columns,
one schema across them, and OUT (an existing OUT is replaced only if it is a finished or empty dataset).
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from pyspark.sql import SparkSession

from runtime.engines.job import Job
from runtime.engines.file_scoring import DEFAULT_WINDOW_ROWS, RunStats
from runtime.engines.progress import Progress
from runtime.engines.capture import captured_stderr
from runtime.engines.record import FileRecord, RowCounts, model_record, now
from runtime.engines.spark_engine.dataframe import executor_model, scored_dataframe
from runtime.engines.spark_engine.failures import as_scorer_error
from runtime.engines.spark_engine.session import DEFAULT_MASTER, spark_session
from runtime.engines.spark_engine.tracker import tracking
from runtime.engines.spark_engine.worker import CountsParam, ScoringSpec
from runtime.errors import ConfigurationError, DataError
from runtime.files.parquet_io import InputFile, open_input
from runtime.files.storage import Location, atomic_output
from runtime.scoring.scorer import Scorer

SUCCESS_FILE = "_SUCCESS"
RECORD_FILE = "_runtime.score.json"
TASKS_PER_CORE = 4  # tasks small enough that cores finish together and progress moves often
MIN_SPLIT_BYTES = 64 << 10  # ... but never so small that per-task costs show (64 KB: thousands of texts)
ARROW_BATCH_KEY = "spark.sql.execution.arrow.maxRecordsPerBatch"
ARROW_BATCH_ROWS = DEFAULT_WINDOW_ROWS  # rows per Arrow batch handed to a task, unless configured: the local window
QUIET_MODULES = r"(ray|pyspark|py4j)(\.|$)"  # e.g. pyspark's warning about pandas 3, which mapInArrow does not use


def spark_path(location: Location) -> str:
    """How Spark names a location: the URI as given, or the absolute local path."""
    return location.path if location.is_local else location.shown


def checked_inputs(job: Job) -> list[InputFile]:
    """Every input file opened and checked, and one schema across them: Spark writes them as one dataset."""
    sources = [open_input(task.source, job.output) for task in job.tasks]
    first = sources[0]
    for source in sources[1:]:
        if not source.parquet.schema_arrow.equals(first.parquet.schema_arrow, check_metadata=False):
            raise DataError(
                f"input files {first.source} and {source.source} differ in their columns; --engine spark writes one "
                "dataset, so score files of one schema per run (or use --engine local, which keeps each file's own)"
            )
    return sources


def check_replaceable(destination: Location) -> None:
    """Spark's overwrite removes OUT first: only a dataset (with _SUCCESS) or an empty directory may be replaced."""
    if not destination.is_dir():
        return
    names = [info.base_name for info in destination.filesystem.get_file_info(pafs.FileSelector(destination.path))]
    if names and SUCCESS_FILE not in names:
        raise ConfigurationError(
            f"output {destination} exists and is not a finished Spark dataset (no {SUCCESS_FILE}); "
            "choose a new OUT or remove it"
        )


def remove_unfinished(destination: Location) -> None:
    """A failed run leaves no OUT at all rather than one without _SUCCESS."""
    with contextlib.suppress(OSError, pa.ArrowException):
        if destination.is_dir() and not destination.child(SUCCESS_FILE).exists():
            destination.filesystem.delete_dir(destination.path)


def configure(spark: SparkSession, input_bytes: int) -> None:
    """Cut the input into about TASKS_PER_CORE tasks per core (at row-group boundaries), and size the Arrow batch.

    Scoring costs far more per byte than reading, so Spark's default splits (128 MB) would leave cores idle.
    """
    tasks = TASKS_PER_CORE * spark.sparkContext.defaultParallelism
    split = max(MIN_SPLIT_BYTES, math.ceil(input_bytes / tasks))
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(split))
    spark.conf.set("spark.sql.files.openCostInBytes", str(MIN_SPLIT_BYTES))
    if spark.sparkContext.getConf().get(ARROW_BATCH_KEY) is None:  # spark-defaults.conf or --conf may set it
        spark.conf.set(ARROW_BATCH_KEY, str(ARROW_BATCH_ROWS))


def run_record(job: Job, scorer: Scorer, sources: list[InputFile]) -> FileRecord:
    """The run's record, as a file's footer record is made: the model, options and versions, and every input."""
    identities = {str(source.source): source.identity for source in sources}
    return FileRecord(model_record(scorer, job.output), str(job.source), {"files": identities}, [], now())


def write_record(destination: Location, record: FileRecord, spark: dict[str, str]) -> None:
    record.finished_at = now()
    with atomic_output(destination.child(RECORD_FILE)) as stream:
        stream.write(json.dumps({**record.as_dict(), "engine": "spark", "spark": spark}, indent=2).encode() + b"\n")


def run_spark(job: Job, scorer: Scorer) -> RunStats:
    """Score IN into the dataset OUT with Spark; returns the counts for the CLI's summary line."""
    sources = checked_inputs(job)
    check_replaceable(job.destination)
    record = run_record(job, scorer, sources)
    spec = ScoringSpec(
        model=executor_model(job.model),
        identity=scorer.manifest.identity,
        options=job.output,
        threads=job.threads,
        max_batch_rows=job.max_batch_rows,
        max_batch_tokens=job.max_batch_tokens,
    )
    total = sum(source.rows for source in sources)
    try:
        with captured_stderr("spark-score", QUIET_MODULES) as stderr:
            try:
                with spark_session(job.spark_master) as spark:
                    configure(spark, sum(source.identity["size"] for source in sources))
                    counts: Any = spark.sparkContext.accumulator(RowCounts(), CountsParam())
                    df = spark.read.parquet(*(spark_path(source.source) for source in sources))
                    scored = scored_dataframe(df, spec, scorer.function_to_apply, counts)
                    with Progress(total, job.progress_every, stream=stderr) as progress, tracking(counts, progress):
                        progress.start_file(str(job.source))
                        scored.write.mode("overwrite").option("compression", "zstd").parquet(spark_path(job.destination))
                    spark_info = {"version": spark.version, "master": job.spark_master or DEFAULT_MASTER}
            except Exception as exc:
                error = as_scorer_error(exc)
                if error is None:
                    raise
                raise error from None
    except BaseException:
        remove_unfinished(job.destination)
        raise
    record.counts = counts.value
    if record.counts.rows != total:  # a task's rows lost or counted twice: say so instead of recording it
        raise RuntimeError(f"the inputs hold {total} rows but Spark's tasks reported {record.counts.rows}")
    write_record(job.destination, record, spark_info)
    return RunStats(counts=record.counts, files=len(sources), outputs=[str(job.destination)])
