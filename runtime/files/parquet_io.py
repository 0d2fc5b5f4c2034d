"""Parquet in, Parquet out: input checks, the output schema, streaming batches and atomic writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from runtime.errors import ConfigurationError, DataError, StorageError, first_line
from runtime.model.activations import FunctionToApply
from runtime.model.precision import PrecisionChoice
from runtime.scoring.scorer import Scores
from runtime.scoring.zero_shot import DEFAULT_TEMPLATE, ZERO_SHOT, ZeroShot, best_first
from runtime.text.chunking import DEFAULT_MAX_CHUNKS, ChunkAggregate, LongText
from runtime.files.storage import Location, atomic_output, temp_name

OUTPUT_COLUMNS = ("label", "score", "probabilities")
ZERO_SHOT_COLUMNS = ("label", "score", "labels", "scores")  # with --candidate-labels: the top one, then all ranked
LOGITS_COLUMN = "logits"  # with --logits
CHUNKS_COLUMN = "chunks"  # with --long-text chunk
FUNCTION_KEY = b"function_to_apply"  # field metadata of `score` and `probabilities`: which activation made them
METADATA_KEY = b"runtime.score"
READ_BUFFER_BYTES = 4 << 20


@dataclass(frozen=True)
class OutputOptions:
    """Every option that changes what OUT holds, and nothing else.

    Outputs record these in their footer and `--resume` trusts an output only when all of them match, so an
    option added here is recorded and compared with no further code.
    """

    text_column: str = "text"
    text_pair_column: str | None = None
    function_to_apply: FunctionToApply | None = None  # None: the model's own
    logits: bool = False
    long_text: LongText = "truncate"
    chunk_stride: int | None = None  # None: the model's default (a quarter of a window)
    chunk_aggregate: ChunkAggregate = "mean"
    max_chunks: int = DEFAULT_MAX_CHUNKS
    precision: PrecisionChoice | None = None  # None: the graph's own (fp32, or int8 for a --quantize int8 export)
    output_prefix: str = ""  # before every output column's name, for inputs that have a `label` of their own
    candidate_labels: tuple[str, ...] | None = None  # zero-shot: the labels every text is asked about
    hypothesis_template: str | None = None  # zero-shot: None means the pipeline's "This example is {}."
    multi_label: bool = False  # zero-shot: each label scored on its own

    def zero_shot(self) -> ZeroShot | None:
        """The zero-shot question, checked (a ConfigurationError if bad), or None when scoring the model's labels."""
        if self.candidate_labels is None:
            return None
        template = DEFAULT_TEMPLATE if self.hypothesis_template is None else self.hypothesis_template
        return ZeroShot.of(self.candidate_labels, template, self.multi_label)

    def answer_labels(self, model_labels: Sequence[str]) -> list[str]:
        """The labels a row's `label` is one of: the candidate labels in zero-shot, else the model's."""
        return list(self.candidate_labels if self.candidate_labels is not None else model_labels)

    def output_columns(self) -> list[str]:
        """The columns OUT adds after the input's, in order."""
        first = ZERO_SHOT_COLUMNS if self.candidate_labels is not None else OUTPUT_COLUMNS
        names = [*first, *[CHUNKS_COLUMN] * (self.long_text == "chunk"), *[LOGITS_COLUMN] * self.logits]
        return [f"{self.output_prefix}{name}" for name in names]

    def record(self) -> dict[str, Any]:
        """As the footer's JSON holds it (tuples as lists), so --resume compares like with like."""
        return json.loads(json.dumps(asdict(self)))

    def scorer_options(self) -> dict[str, Any]:
        """The options `Scorer` itself applies (the rest choose columns)."""
        return {
            "function_to_apply": self.function_to_apply,
            "long_text": self.long_text,
            "chunk_stride": self.chunk_stride,
            "chunk_aggregate": self.chunk_aggregate,
            "max_chunks": self.max_chunks,
            "precision": self.precision,
            **({"task": ZERO_SHOT} if self.candidate_labels is not None else {}),
        }



def read_batches(
    parquet: pq.ParquetFile, source: Location | Path, window_rows: int, rows: range | None = None
) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `window_rows` (only those of `rows`, if given: row groups outside it are skipped).

    A corrupt page surfaces as a DataError naming the file.
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
            raise DataError(f"input {source} is corrupt or truncated ({first_line(exc)})") from None
        if rows is not None:
            first, offset = offset, offset + batch.num_rows
            batch = batch.slice(max(rows.start - first, 0), max(min(rows.stop, offset) - max(rows.start, first), 0))
        if batch.num_rows:
            yield batch


@dataclass(frozen=True)
class InputFile:
    """An opened, checked input and its identity: what --resume compares to trust an output made from it."""

    source: Location
    parquet: pq.ParquetFile
    identity: dict[str, Any]

    @property
    def rows(self) -> int:
        return self.parquet.metadata.num_rows


def input_identity(parquet: pq.ParquetFile, size: int) -> dict[str, Any]:
    """Size, row count and the sha256 of the footer (schema, row groups, column statistics and offsets).

    Cheap over any store (the footer is read anyway to open the file), and a rewritten file with new rows or
    new texts changes its footer's statistics, sizes or offsets.
    """
    footer = pa.BufferOutputStream()
    parquet.metadata.write_metadata_file(footer)
    digest = hashlib.sha256(footer.getvalue()).hexdigest()
    return {"size": size, "rows": parquet.metadata.num_rows, "footer_sha256": digest}


def open_input(source: Location, options: OutputOptions) -> InputFile:
    """Open IN (over any filesystem) and check its columns, so a bad file fails before any work or any output."""
    info = source.info()
    if info.type == pafs.FileType.NotFound:
        raise ConfigurationError(f"input {source} does not exist")
    if info.type == pafs.FileType.Directory:
        raise ConfigurationError(f"input {source} is a directory; pass a directory as both IN and OUT")
    try:
        # buffer_size streams column chunks instead of loading whole row groups: memory stays flat
        handle = source.filesystem.open_input_file(source.path)
        parquet = pq.ParquetFile(handle, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
    except PermissionError:
        raise StorageError(f"input {source} is not readable (permission denied)") from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"input {source} is not a readable Parquet file ({first_line(exc)})") from None
    check_input_schema(parquet.schema_arrow, options, source)
    return InputFile(source, parquet, input_identity(parquet, info.size))


def as_flag(option: str, value: str | None = None) -> str:
    """How the CLI spells an OutputOptions field (and a value for it): text_pair_column -> --text-pair-column."""
    return f"--{option.replace('_', '-')}" + ("" if value is None else f" {value}")


def check_input_schema(
    schema: pa.Schema, options: OutputOptions, where: Location | str, spell: Callable[..., str] = as_flag
) -> None:
    """The text (and pair) columns exist and hold strings, and no output column clashes with an input one.

    `where` names the input in messages (a file, or "DataFrame"); `spell` says how the caller's users write an
    option (a CLI flag, or a keyword argument).
    """
    check_text_column(schema, options.text_column, where, option=spell("text_column"))
    if options.text_pair_column is not None:
        check_text_column(schema, options.text_pair_column, where, option=spell("text_pair_column"))
    clashes = [name for name in options.output_columns() if name in schema.names]
    if clashes:
        raise DataError(
            f"input {where} already has column(s) {', '.join(clashes)}, which the output adds; name the output "
            f"columns apart with {spell('output_prefix')} (e.g. {spell('output_prefix', 'pred_')})"
        )


def check_text_column(schema: pa.Schema, text_column: str, path: Path | str, option: str = "--text-column") -> None:
    if text_column not in schema.names:
        raise DataError(
            f"input {path} has no column {text_column!r}; its columns are {', '.join(schema.names)} "
            f"(choose one with {option})"
        )
    column_type = schema.field(text_column).type
    if pa.types.is_dictionary(column_type):
        column_type = column_type.value_type
    if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
        raise DataError(
            f"column {text_column!r} of {path} has type {schema.field(text_column).type}, not a string type; "
            f"choose a text column with {option}"
        )


def texts_of(batch: pa.RecordBatch, text_column: str) -> list[str | None]:
    column = batch.column(text_column)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    return column.to_pylist()


def output_schema(
    input_schema: pa.Schema, metadata: dict[str, Any], options: OutputOptions, function_to_apply: str = "softmax"
) -> pa.Schema:
    """Input columns unchanged and in order, then label, score, probabilities (zero-shot: labels and scores, ranked),
    chunks (chunk mode), logits."""
    applied = {FUNCTION_KEY: function_to_apply.encode()}
    types = {
        "label": (pa.string(), None),
        "score": (pa.float32(), applied),
        "probabilities": (pa.list_(pa.float32()), applied),
        "labels": (pa.list_(pa.string()), None),
        "scores": (pa.list_(pa.float32()), None),
        CHUNKS_COLUMN: (pa.int32(), None),
        LOGITS_COLUMN: (pa.list_(pa.float32()), None),
    }
    schema = input_schema
    for name in options.output_columns():
        column_type, field_metadata = types[name.removeprefix(options.output_prefix)]
        schema = schema.append(pa.field(name, column_type, metadata=field_metadata))
    return schema.with_metadata({**(input_schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})


def rows_as_lists(values: np.ndarray, mask: np.ndarray, labels: Sequence[str] | None = None) -> pa.ListArray:
    """A [rows, labels] matrix as list<float32> (or, given `labels`, a matrix of label ids as list<string>),
    null where `mask` is set."""
    n_rows, n_labels = values.shape
    offsets = pa.array(np.arange(0, (n_rows + 1) * n_labels, n_labels, dtype=np.int32))
    flat = values.reshape(-1)
    items = pa.array(flat, pa.float32()) if labels is None else pc.take(pa.array(labels, pa.string()), pa.array(flat))
    return pa.ListArray.from_arrays(offsets, items, mask=pa.array(mask))


def scored_batch(
    batch: pa.RecordBatch, schema: pa.Schema, labels: list[str], scores: Scores, options: OutputOptions
) -> pa.RecordBatch:
    """Append the output columns the schema names; rows with no text get nulls and keep their place."""
    mask = ~scores.valid
    ranked = best_first(scores.probabilities) if options.candidate_labels is not None else None  # best first
    outputs = {
        "label": lambda: pc.take(pa.array(labels, pa.string()), pa.array(scores.label_ids, mask=mask)),
        "score": lambda: pa.array(scores.best, pa.float32(), mask=mask),
        "probabilities": lambda: rows_as_lists(scores.probabilities, mask),
        "labels": lambda: rows_as_lists(ranked, mask, labels),
        "scores": lambda: rows_as_lists(np.take_along_axis(scores.probabilities, ranked, axis=1), mask),
        CHUNKS_COLUMN: lambda: pa.array(scores.chunks, pa.int32(), mask=mask),
        LOGITS_COLUMN: lambda: rows_as_lists(scores.logits, mask),
    }
    added = (name.removeprefix(options.output_prefix) for name in schema.names[batch.num_columns :])
    columns = [*batch.columns, *(outputs[name]() for name in added)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def read_metadata(out: Location) -> dict[str, Any] | None:
    """The run record a finished scoring left in OUT's footer (with row counts), or None."""
    try:
        return json.loads(pq.read_metadata(out.path, filesystem=out.filesystem).metadata[METADATA_KEY])
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError):
        return None


def temp_path_for(out: Path) -> Path:
    """A hidden sibling of OUT that never ends in .parquet, so a crash leaves nothing that looks like output."""
    return out.with_name(temp_name(out.name))


@contextmanager
def atomic_parquet_writer(out: Location, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer whose file appears at OUT (any filesystem) only when everything succeeded."""
    with atomic_output(out) as stream:
        writer = pq.ParquetWriter(stream, schema, compression="zstd")
        try:
            yield writer
        except BaseException:
            with suppress(OSError, pa.ArrowException):
                writer.close()
            raise
        writer.close()
