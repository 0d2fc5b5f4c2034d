"""The local engine: one process streams each Parquet file through the Scorer into an atomic output."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from runtime.errors import InputError
from runtime.model_dir import package_versions
from runtime.parquet_io import (
    METADATA_KEY,
    atomic_parquet_writer,
    read_batches,
    output_schema,
    read_metadata,
    scored_batch,
    texts_of,
)
from runtime.scorer import Scorer

DEFAULT_WINDOW_ROWS = 8192
RUNTIME_PACKAGES = ("onnxruntime", "tokenizers", "numpy", "pyarrow")


@dataclass
class RunStats:
    """What the one-line summary reports, summed over files."""

    rows: int = 0
    null_rows: int = 0
    truncated_rows: int = 0
    files: int = 0
    skipped_files: int = 0
    outputs: list[Path] = field(default_factory=list)

    def add(self, other: RunStats) -> None:
        self.rows += other.rows
        self.null_rows += other.null_rows
        self.truncated_rows += other.truncated_rows
        self.files += other.files
        self.skipped_files += other.skipped_files
        self.outputs += other.outputs


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def model_record(scorer: Scorer, text_column: str) -> dict[str, Any]:
    """Which model made an output: enough to reproduce it and for --resume to trust it."""
    manifest = scorer.manifest
    return {
        "model_sha256": manifest.sha256,
        "checkpoint": manifest.checkpoint,
        "labels": manifest.labels,
        "activation": manifest.activation,
        "quantization": manifest.quantization,
        "text_column": text_column,
        "versions": {"runtime": package_versions(RUNTIME_PACKAGES), "export": manifest.versions},
    }


def score_file(
    scorer: Scorer,
    parquet: pq.ParquetFile,
    src: Path,
    dst: Path,
    text_column: str,
    window_rows: int = DEFAULT_WINDOW_ROWS,
    on_rows: Callable[[int], None] = lambda rows: None,
    rows: range | None = None,
) -> RunStats:
    """Stream `src` (opened and checked by `open_input`; only `rows` of it, if given) into `dst`, atomically.

    Memory does not grow with the file: only one window of rows is held at a time.
    """
    record = {**model_record(scorer, text_column), "input": str(src), "started_at": now()}
    schema = output_schema(parquet.schema_arrow, record)
    stats = RunStats(files=1, outputs=[dst])
    with atomic_parquet_writer(dst, schema) as writer:
        for batch in read_batches(parquet, src, window_rows, rows):
            scores = scorer.score(texts_of(batch, text_column))
            writer.write_batch(scored_batch(batch, schema, scorer.labels, scores))
            stats.rows += batch.num_rows
            stats.null_rows += int((~scores.valid).sum())
            stats.truncated_rows += scores.truncated
            on_rows(batch.num_rows)
        if stats.rows == 0:
            writer.write_table(schema.empty_table())
        record.update(
            rows=stats.rows, null_rows=stats.null_rows, truncated_rows=stats.truncated_rows, finished_at=now()
        )
        writer.add_key_value_metadata({METADATA_KEY: json.dumps(record).encode()})
    return stats


def list_parquet_files(in_dir: Path) -> list[Path]:
    """Every *.parquet under IN_DIR, recursively, in a stable order."""
    sources = sorted(path for path in in_dir.rglob("*.parquet") if path.is_file())
    if not sources:
        raise InputError(f"input directory {in_dir} holds no *.parquet files")
    return sources


def plan_tree(in_dir: Path, out_dir: Path) -> list[tuple[Path, Path]]:
    """Every *.parquet under IN_DIR, mapped to the same relative path under OUT_DIR."""
    return [(src, out_dir / src.relative_to(in_dir)) for src in list_parquet_files(in_dir)]


def already_scored(dst: Path, scorer: Scorer) -> bool:
    """--resume trusts an output only when the same model (by sha256) finished writing it."""
    record = read_metadata(dst) if dst.is_file() else None
    return bool(record) and record.get("model_sha256") == scorer.manifest.sha256 and "finished_at" in record


