"""Columns in and out: a DataFrame checked as a Parquet input is, and the output schema declared up front.

There is one definition of the output columns and their types (`output_schema` in runtime/files/parquet_io.py);
Spark's schema is converted from it, so a Spark output and a local one hold the same types.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from pyspark.sql.pandas.types import from_arrow_type, to_arrow_schema
from pyspark.sql.types import StructField, StructType

from runtime.errors import DataError, first_line
from runtime.files.parquet_io import OutputOptions, as_flag, check_input_schema, output_schema


def as_keyword(option: str, value: str | None = None) -> str:
    """How a Python caller spells an option (and a value for it): text_column=, output_prefix='pred_'."""
    return f"{option}=" + ("" if value is None else repr(value))


def arrow_schema_of(schema: StructType) -> pa.Schema:
    """The Arrow schema Spark hands `mapInArrow` batches in; a column Arrow cannot carry is named."""
    try:
        return to_arrow_schema(schema)
    except Exception as exc:  # pyspark raises its own error classes for unsupported types
        raise DataError(f"the DataFrame has a column Arrow cannot carry ({first_line(exc)})") from None


def check_dataframe(schema: StructType, options: OutputOptions, spell: Callable[..., str] = as_flag) -> None:
    """The checks a Parquet input gets, on the DataFrame's schema: before any task starts."""
    if options.text_pair_column is not None and options.long_text == "chunk":
        raise DataError(
            f"chunk mode scores single texts; drop {spell('text_pair_column')} or use {spell('long_text', 'truncate')}"
        )
    check_input_schema(arrow_schema_of(schema), options, "DataFrame", spell)


def spark_output_schema(schema: StructType, options: OutputOptions, function_to_apply: str) -> StructType:
    """Every input column, then the output columns with the types the local engine writes (all nullable)."""
    added = output_schema(pa.schema([]), {}, options, function_to_apply)
    return StructType([*schema.fields, *(StructField(field.name, from_arrow_type(field.type), True) for field in added)])
