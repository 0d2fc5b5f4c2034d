"""The typed description of a scoring job: built once by the CLI, handed to an engine (never argparse's Namespace)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow.fs as pafs

from runtime.text.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS
from runtime.errors import ConfigurationError
from runtime.files.parquet_io import OutputOptions
from runtime.files.storage import Location, parquet_files_under

DEFAULT_PROGRESS_SECONDS = 30.0


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
    hidden: list[str]  # hidden files under IN (`.x`, `_x`), not scored
    model: str  # --model as given: a dir or a URI
    model_dir: Path  # where the model is on this host (the cache dir for a URI)
    output: OutputOptions
    resume: bool = False
    threads: int | None = None
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    progress_every: float = DEFAULT_PROGRESS_SECONDS  # seconds between progress lines off a terminal; 0: none
    summary_json: Location | None = None
    score_cache: Location | None = None  # --score-cache, checked: rows found there are not scored
    engine: Literal["local", "ray", "spark"] = "local"
    ray_address: str | None = None
    actors: int | None = None
    spark_master: str | None = None  # None: local[*]


@dataclass(frozen=True)
class Plan:
    """The files of a run: what becomes what, whether IN is a directory, and the hidden files left out."""

    tasks: tuple[FileTask, ...]
    tree: bool
    hidden: list[str] = field(default_factory=list)  # `.x` and `_x` files under IN, skipped as Spark and Hive do


def plan_tasks(source: Location, destination: Location, dataset: bool = False) -> Plan:
    """File -> file, or directory -> directory keeping the relative layout; with `dataset` (Spark), OUT is one
    directory of part files whatever IN is.

    Refuses anything that could overwrite the input.
    """
    source_info, destination_info = source.info(), destination.info()
    if source_info.type == pafs.FileType.NotFound:
        raise ConfigurationError(f"input {source} does not exist")
    if destination.real_path() == source.real_path() and destination.same_store(source):
        raise ConfigurationError(f"output {destination} is the input; choose another OUT (the input is never overwritten)")
    if source_info.type == pafs.FileType.Directory:
        if destination_info.type == pafs.FileType.File:
            raise ConfigurationError(
                f"input {source} is a directory but output {destination} is a file; OUT must be a directory"
            )
        if destination.is_within(source):
            raise ConfigurationError(f"output {destination} is inside the input directory {source}; choose an OUT outside it")
        relatives, hidden = parquet_files_under(source)
        if not relatives:
            also = f" (only hidden ones, which are skipped: {', '.join(hidden[:3])})" if hidden else ""
            raise ConfigurationError(f"input directory {source} holds no *.parquet files{also}")
        return Plan(tuple(FileTask(source.child(path), destination.child(path)) for path in relatives), True, hidden)
    if dataset and destination_info.type == pafs.FileType.File:
        raise ConfigurationError(f"output {destination} is a file; --engine spark writes OUT as a directory of part files")
    if destination_info.type == pafs.FileType.Directory and not dataset:
        raise ConfigurationError(
            f"output {destination} is a directory but input {source} is a file; OUT must be a file path"
        )
    return Plan((FileTask(source, destination),), False)
