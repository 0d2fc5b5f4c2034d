"""The executor side: Arrow batches in, scored Arrow batches out, with one Scorer per model per Python worker.

The function Spark ships to executors is `score_batches` with a small `ScoringSpec`: the model travels as a path
or URI string and is loaded where it runs, never pickled. Spark forks Python workers from a daemon and reuses
them across tasks, so a Scorer is made lazily, in the worker after the fork, and kept in this module for the
worker's next tasks: one per model identity and configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark import AccumulatorParam, TaskContext

from runtime.engines.file_scoring import score_batch
from runtime.engines.record import RowCounts
from runtime.errors import ModelError
from runtime.files.parquet_io import OutputOptions, output_schema
from runtime.scoring.scorer import Scorer
from runtime.text.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS


@dataclass(frozen=True)
class ScoringSpec:
    """All an executor needs to score: small, picklable, and holding no model bytes."""

    model: str  # a path every executor can read (absolute), or a URI each fetches into its own cache
    identity: str  # the driver's model identity: an executor with another model refuses to score
    options: OutputOptions
    threads: int | None = None  # ONNX Runtime threads per task; None: the task's CPUs (spark.task.cpus)
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS


class CountsParam(AccumulatorParam):
    """RowCounts summed over tasks: Spark applies a task's update once, and only when the task succeeded."""

    def zero(self, value: RowCounts) -> RowCounts:
        return RowCounts()

    def addInPlace(self, total: RowCounts, more: RowCounts) -> RowCounts:
        total.add(more)
        return total


SCORERS: dict[tuple[Any, ...], Scorer] = {}  # this Python worker's Scorers, by model identity and configuration


def task_threads(spec: ScoringSpec) -> int:
    """--threads if given, else the CPUs Spark gave this task: one task per core gets one thread, not all cores."""
    if spec.threads:
        return spec.threads
    context = TaskContext.get()
    return max(1, context.cpus()) if context is not None else 1


def scorer_for(spec: ScoringSpec, threads: int) -> Scorer:
    """This worker's Scorer for the spec, made on first use and checked against the driver's model."""
    key = (spec.identity, threads, spec.max_batch_rows, spec.max_batch_tokens, *spec.options.scorer_options().items())
    scorer = SCORERS.get(key)
    if scorer is None:
        scorer = Scorer(
            spec.model,
            threads=threads,
            max_batch_rows=spec.max_batch_rows,
            max_batch_tokens=spec.max_batch_tokens,
            **spec.options.scorer_options(),
        )
        if scorer.manifest.identity != spec.identity:
            raise ModelError(
                f"model dir {spec.model} differs on executor host {os.uname().nodename} (identity "
                f"{scorer.manifest.identity[:12]}, the driver has {spec.identity[:12]}); every host needs the same model"
            )
        SCORERS[key] = scorer
    return scorer


def score_batches(
    spec: ScoringSpec, counts: Any | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """mapInArrow's function (bound to a spec and an optional RowCounts accumulator with functools.partial)."""
    scorer = scorer_for(spec, task_threads(spec))
    task_counts = RowCounts.start(scorer, spec.options)
    for batch in batches:
        schema = output_schema(batch.schema, {}, spec.options, scorer.function_to_apply)
        scored, scores = score_batch(scorer, batch, schema, spec.options)
        task_counts.count(batch.num_rows, scores)
        yield scored
    if counts is not None:
        counts.add(task_counts)
