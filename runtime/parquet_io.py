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
METADATA_KEY = b"runtime.score"
TEMP_MARKER = ".tmp-"
READ_BUFFER_BYTES = 4 << 20


def read_batches(
    parquet: pq.ParquetFile, path: Path, window_rows: int, rows: range | None = None
) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `window_rows` (only those of `rows`, if given: row groups outside it are skipped).

    A corrupt page surfaces as an InputError naming the file.
    """
    groups, offset = None, 0
    if rows is not None:
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
        starts = np.cumsum([0, *sizes])
        groups = [i for i in range(len(sizes)) if starts[i] < rows.stop and starts[i + 1] > rows.start]
        offset = int(starts[groups[0]]) if groups else 0
    batches = parquet.iter_batches(batch_size=window_rows, row_groups=groups)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"input {path} is corrupt or truncated ({first_line(exc)})") from None
        if rows is not None:
            first, offset = offset, offset + batch.num_rows
            batch = batch.slice(max(rows.start - first, 0), max(min(rows.stop, offset) - max(rows.start, first), 0))
        if batch.num_rows:
            yield batch


def open_input(path: Path, text_column: str) -> pq.ParquetFile:
    """Open IN and check the text column, so a bad file fails before any work or any output."""
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
    return parquet


def check_text_column(schema: pa.Schema, text_column: str, path: Path | str) -> None:
    if text_column not in schema.names:
        raise InputError(
            f"input {path} has no column {text_column!r}; its columns are {', '.join(schema.names)} "
            "(choose one with --text-column)"
        )
    column_type = schema.field(text_column).type
    if pa.types.is_dictionary(column_type):
        column_type = column_type.value_type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise InputError(
            f"column {text_column!r} of {path} has type {schema.field(text_column).type}, not a string type; "
            "choose a text column with --text-column"
        )
    clashes = [name for name in OUTPUT_COLUMNS if name in schema.names]
    if clashes:
        raise InputError(f"input {path} already has column(s) {', '.join(clashes)}, which the output adds")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def texts_of(batch: pa.RecordBatch, text_column: str) -> list[str | None]:
    column = batch.column(text_column)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    return column.to_pylist()


def output_schema(input_schema: pa.Schema, metadata: dict[str, Any]) -> pa.Schema:
    """Input columns unchanged and in order, then label, score and probabilities."""
    schema = input_schema
    schema = schema.append(pa.field("label", pa.string()))
    schema = schema.append(pa.field("score", pa.float32()))
    schema = schema.append(pa.field("probabilities", pa.list_(pa.float32())))
    return schema.with_metadata({**(input_schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})


def scored_batch(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    labels: list[str],
    scores: Scores,
) -> pa.RecordBatch:
    """Append the three output columns; rows with no text get nulls and keep their place."""
    n_rows, n_labels = scores.probabilities.shape
    mask = ~scores.valid
    label_column = pc.take(pa.array(labels, pa.string()), pa.array(scores.label_ids, mask=mask))
    score_column = pa.array(scores.best, pa.float32(), mask=mask)
    offsets = pa.array(np.arange(0, (n_rows + 1) * n_labels, n_labels, dtype=np.int32))
    flat = pa.array(scores.probabilities.reshape(-1), pa.float32())
    probability_column = pa.ListArray.from_arrays(offsets, flat, mask=pa.array(mask))
    columns = [*batch.columns, label_column, score_column, probability_column]
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
