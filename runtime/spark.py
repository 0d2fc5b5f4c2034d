"""Score a Spark DataFrame with an exported model: `score_dataframe(df, "models/demo")`.

Needs the spark extra (`pip install 'onnx-batch-scorer[spark]'`) and Java 17+. The rows are scored on the
executors by the same code as the local engine's, so the values match it; the model reaches them by path or
URI (s3://, gs://, hdfs://, file://), never inside the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from runtime.engines.spark_engine.dataframe import executor_model, scored_dataframe
from runtime.engines.spark_engine.schema import as_keyword, check_dataframe
from runtime.engines.spark_engine.worker import ScoringSpec
from runtime.files.parquet_io import OutputOptions
from runtime.scoring.scorer import Scorer
from runtime.text.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS

__all__ = ["score_dataframe"]


def score_dataframe(
    df: DataFrame,
    model: str | Path,
    text_column: str = "text",
    *,
    threads: int | None = None,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    **options: Any,
) -> DataFrame:
    """`df` with `label`, `score`, `probabilities` (and `chunks`, `logits` when asked) added, typed as the CLI's.

    `options` are the CLI's output options by their Python names: text_pair_column, function_to_apply, logits,
    long_text, chunk_stride, chunk_aggregate, max_chunks, output_prefix. `threads` per task defaults to the
    task's CPUs (`spark.task.cpus`). The columns and the model are checked here, on the driver, so bad input
    fails at once (an InputError) instead of in every task; the scoring itself runs when the result is used.
    """
    output = OutputOptions(text_column=text_column, **options)
    check_dataframe(df.schema, output, spell=as_keyword)
    scorer = Scorer(model, threads=1, **output.scorer_options())  # loads and verifies the model, as executors will
    spec = ScoringSpec(
        model=executor_model(model),
        identity=scorer.manifest.identity,
        options=output,
        threads=threads,
        max_batch_rows=max_batch_rows,
        max_batch_tokens=max_batch_tokens,
    )
    return scored_dataframe(df, spec, scorer.function_to_apply)
