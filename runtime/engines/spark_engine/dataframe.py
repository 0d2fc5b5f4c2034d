"""The driver side of scoring a DataFrame: the model loaded and checked here, then one `mapInArrow` call."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from runtime.engines.spark_engine.schema import spark_output_schema
from runtime.engines.spark_engine.worker import ScoringSpec, score_batches
from runtime.files.storage import URI_SCHEME


def executor_model(model: str | Path) -> str:
    """The model as executors name it: a URI as given, a path made absolute (executors run in other directories)."""
    model = str(model)
    return model if URI_SCHEME.match(model) else str(Path(model).resolve())


def scored_dataframe(df: DataFrame, spec: ScoringSpec, function_to_apply: str, counts: Any | None = None) -> DataFrame:
    """`df` with the output columns added, lazily: Arrow batches in and out, the schema declared up front.

    `function_to_apply` is the driver's Scorer's (it names the activation in the schema); `counts`, a RowCounts
    accumulator, hears each finished task's rows.
    """
    schema = spark_output_schema(df.schema, spec.options, function_to_apply)
    return df.mapInArrow(functools.partial(score_batches, spec, counts), schema)
