"""The typed description of a scoring job: built once by the CLI, handed to an engine (never argparse's Namespace)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow.fs as pafs

from runtime.model.activations import FunctionToApply
from runtime.model.precision import PrecisionChoice
from runtime.text.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS
from runtime.text.chunking import DEFAULT_MAX_CHUNKS, ChunkAggregate, LongText
from runtime.errors import InputError
from runtime.files.storage import Location, parquet_files_under

DEFAULT_PROGRESS_SECONDS = 30.0


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

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def scorer_options(self) -> dict[str, Any]:
        """The options `Scorer` itself applies (the rest choose columns)."""
        return {
            "function_to_apply": self.function_to_apply,
            "long_text": self.long_text,
            "chunk_stride": self.chunk_stride,
            "chunk_aggregate": self.chunk_aggregate,
            "max_chunks": self.max_chunks,
            "precision": self.precision,
        }


@dataclass(frozen=True)
class FileTask:
    """One input file and the output it becomes."""

    source: Location
    destination: Location


@dataclass(frozen=True)
class Job:
    """What to score, where to, with which model and options; engines read nothing else."""

    source: Location
    destination: Location
    tasks: tuple[FileTask, ...]
    tree: bool  # IN is a directory (or prefix) and OUT one too
    model: str  # --model as given: a dir or a URI
    model_dir: Path  # where the model is on this host (the cache dir for a URI)
    output: OutputOptions
    resume: bool = False
    threads: int | None = None
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    progress_every: float = DEFAULT_PROGRESS_SECONDS  # seconds between progress lines off a terminal; 0: none
    summary_json: Location | None = None
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    actors: int | None = None


def plan_tasks(source: Location, destination: Location) -> tuple[tuple[FileTask, ...], bool]:
    """File -> file, or directory -> directory keeping the relative layout; (tasks, whether IN is a directory).

    Refuses anything that could overwrite the input.
    """
    source_info, destination_info = source.info(), destination.info()
    if source_info.type == pafs.FileType.NotFound:
        raise InputError(f"input {source} does not exist")
    if destination.real_path() == source.real_path() and destination.same_store(source):
        raise InputError(f"output {destination} is the input; choose another OUT (the input is never overwritten)")
    if source_info.type == pafs.FileType.Directory:
        if destination_info.type == pafs.FileType.File:
            raise InputError(
                f"input {source} is a directory but output {destination} is a file; OUT must be a directory"
            )
        if destination.is_within(source):
            raise InputError(f"output {destination} is inside the input directory {source}; choose an OUT outside it")
        relatives = parquet_files_under(source)
        if not relatives:
            raise InputError(f"input directory {source} holds no *.parquet files")
        return tuple(FileTask(source.child(path), destination.child(path)) for path in relatives), True
    if destination_info.type == pafs.FileType.Directory:
        raise InputError(
            f"output {destination} is a directory but input {source} is a file; OUT must be a file path"
        )
    return (FileTask(source, destination),), False
