"""Part files become OUT: merged in row order on the cluster, checked, then published atomically in one step."""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.engines.file_scoring import DEFAULT_WINDOW_ROWS
from runtime.engines.ray_engine.plan import Publication
from runtime.engines.record import FileRecord
from runtime.files.parquet_io import atomic_parquet_writer, read_batches
from runtime.files.storage import Location, temp_name


class RowCountMismatch(RuntimeError):
    """The parts of a file do not hold its rows: a bug, and nothing is published."""


def merge_parts(publication: Publication) -> FileRecord:
    """Publish one file's parts as OUT, atomically and durably, with one record summing the parts' records.

    The row count is checked before anything is written, so a mismatch leaves OUT as it was.
    """
    parts = [FileRecord.read(part) for part in publication.parts]
    missing = [str(part) for part, record in zip(publication.parts, parts) if record is None]
    if missing:
        raise RowCountMismatch(f"part file(s) {', '.join(missing)} are missing or unfinished; {publication.out} not published")
    record = FileRecord.merged(parts)
    if record.counts.rows != publication.rows:
        raise RowCountMismatch(
            f"the input of {publication.out} holds {publication.rows} rows but its parts hold {record.counts.rows}; "
            "not published"
        )
    files = [pq.ParquetFile(part.path, filesystem=part.filesystem) for part in publication.parts]
    with atomic_parquet_writer(publication.out, files[0].schema_arrow) as writer:
        for part, parquet in zip(publication.parts, files):
            for batch in read_batches(parquet, part, DEFAULT_WINDOW_ROWS):
                writer.write_batch(batch)
        if not record.counts.rows:
            writer.write_table(files[0].schema_arrow.empty_table())
        writer.add_key_value_metadata(record.finish())
    return record


def staging_for(destination: Location) -> Location:
    """A hidden sibling of OUT for the part files: they never appear inside OUT, and one run never meets another's."""
    return destination.sibling(temp_name(destination.name))


def remove_staging(staging: Location) -> None:
    with contextlib.suppress(OSError, pa.ArrowException):
        staging.filesystem.delete_dir(staging.path)
