"""Parquet in, Parquet out: input checks, the output schema, streaming batches and atomic writes."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runtime.errors import InputError
from runtime.scorer import Scores

OUTPUT_COLUMNS = ("label", "score", "probabilities")
LOGITS_COLUMN = "logits"  # with --logits
CHUNKS_COLUMN = "chunks"  # with --long-text chunk
FUNCTION_KEY = b"function_to_apply"  # field metadata of `score` and `probabilities`: which activation made them
METADATA_KEY = b"runtime.score"
TEMP_MARKER = ".tmp-"
READ_BUFFER_BYTES = 4 << 20


def read_batches(parquet: pq.ParquetFile, path: Path, window_rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `window_rows`; a corrupt page surfaces as an InputError naming the file."""
    batches = parquet.iter_batches(batch_size=window_rows)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"input {path} is corrupt or truncated ({first_line(exc)})") from None
        yield batch


def open_input(
    path: Path,
    text_column: str,
    text_pair_column: str | None = None,
    with_logits: bool = False,
    with_chunks: bool = False,
) -> pq.ParquetFile:
    """Open IN and check the text column(s), so a bad file fails before any work or any output."""
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory; pass a directory as both IN and OUT")
    try:
        # buffer_size streams column chunks instead of loading whole row groups: memory stays flat
        parquet = pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
    except PermissionError:
        raise InputError(f"input {path} is not readable (permission denied)") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"input {path} is not a readable Parquet file ({first_line(exc)})") from None
    check_text_column(parquet.schema_arrow, text_column, path)
    if text_pair_column is not None:
        check_text_column(parquet.schema_arrow, text_pair_column, path, option="--text-pair-column")
    added = [*OUTPUT_COLUMNS, *[CHUNKS_COLUMN] * with_chunks, *[LOGITS_COLUMN] * with_logits]
    clashes = [name for name in added if name in parquet.schema_arrow.names]
    if clashes:
        raise InputError(f"input {path} already has column(s) {', '.join(clashes)}, which the output adds")
    return parquet


def check_text_column(schema: pa.Schema, text_column: str, path: Path | str, option: str = "--text-column") -> None:
    if text_column not in schema.names:
        raise InputError(
            f"input {path} has no column {text_column!r}; its columns are {', '.join(schema.names)} "
            f"(choose one with {option})"
        )
    column_type = schema.field(text_column).type
    if pa.types.is_dictionary(column_type):
        column_type = column_type.value_type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise InputError(
            f"column {text_column!r} of {path} has type {schema.field(text_column).type}, not a string type; "
            f"choose a text column with {option}"
        )


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def texts_of(batch: pa.RecordBatch, text_column: str) -> list[str | None]:
    column = batch.column(text_column)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    return column.to_pylist()


def output_schema(
    input_schema: pa.Schema,
    metadata: dict[str, Any],
    function_to_apply: str = "softmax",
    with_logits: bool = False,
    with_chunks: bool = False,
) -> pa.Schema:
    """Input columns unchanged and in order, then label, score, probabilities, chunks (chunk mode), logits."""
    applied = {FUNCTION_KEY: function_to_apply.encode()}
    schema = input_schema
    schema = schema.append(pa.field("label", pa.string()))
    schema = schema.append(pa.field("score", pa.float32(), metadata=applied))
    schema = schema.append(pa.field("probabilities", pa.list_(pa.float32()), metadata=applied))
    if with_chunks:
        schema = schema.append(pa.field(CHUNKS_COLUMN, pa.int32()))
    if with_logits:
        schema = schema.append(pa.field(LOGITS_COLUMN, pa.list_(pa.float32())))
    return schema.with_metadata({**(input_schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})


def rows_as_lists(values: np.ndarray, mask: np.ndarray) -> pa.ListArray:
    """A [rows, labels] matrix as list<float32>, null where `mask` is set."""
    n_rows, n_labels = values.shape
    offsets = pa.array(np.arange(0, (n_rows + 1) * n_labels, n_labels, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), pa.float32()), mask=pa.array(mask))


def scored_batch(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    labels: list[str],
    scores: Scores,
) -> pa.RecordBatch:
    """Append the output columns the schema names; rows with no text get nulls and keep their place."""
    mask = ~scores.valid
    outputs = {
        "label": lambda: pc.take(pa.array(labels, pa.string()), pa.array(scores.label_ids, mask=mask)),
        "score": lambda: pa.array(scores.best, pa.float32(), mask=mask),
        "probabilities": lambda: rows_as_lists(scores.probabilities, mask),
        CHUNKS_COLUMN: lambda: pa.array(scores.chunks, pa.int32(), mask=mask),
        LOGITS_COLUMN: lambda: rows_as_lists(scores.logits, mask),
    }
    columns = [*batch.columns, *(outputs[name]() for name in schema.names[batch.num_columns :])]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def read_metadata(path: Path) -> dict[str, Any] | None:
    """The run record a finished scoring left in OUT's footer (with row counts), or None."""
    try:
        return json.loads(pq.read_metadata(path).metadata[METADATA_KEY])
    except (pa.ArrowException, OSError, KeyError, ValueError):
        return None


def temp_path_for(out: Path) -> Path:
    """A hidden sibling of OUT that never ends in .parquet, so a crash leaves nothing that looks like output."""
    return out.with_name(f".{out.name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_parquet_writer(out: Path, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """Write to a temp file beside OUT and rename it over OUT only when everything succeeded."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(out)
    writer = pq.ParquetWriter(temp, schema, compression="zstd")
    try:
        yield writer
        writer.close()
        os.replace(temp, out)
    except BaseException:
        writer.close()
        temp.unlink(missing_ok=True)
        raise
