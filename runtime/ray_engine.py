"""The Ray engine: `ray.data.read_parquet` -> an actor pool of Scorers -> `write_parquet`, published atomically.

Each actor loads the model once and scores windows of rows; Ray does not keep row order, so every input
column is carried through and rows join back on the caller's own id column. Everything that can be checked
is checked in the driver before Ray starts (every file's text column, one common schema); whatever still
fails on the cluster (a corrupt page, a model dir that differs on some node) becomes one InputError.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.errors import InputError
from runtime.local_engine import DEFAULT_WINDOW_ROWS, RunStats, list_parquet_files, model_record, now
from runtime.parquet_io import (
    METADATA_KEY,
    OUTPUT_COLUMNS,
    atomic_parquet_writer,
    first_line,
    open_input,
    output_schema,
    read_batches,
    read_metadata,
    scored_batch,
    temp_path_for,
    texts_of,
)
from runtime.scorer import Scorer
from runtime.session import default_threads

RAY_MISSING = "--engine ray needs the ray extra: pip install '.[ray]'"
# An actor reserves only part of the CPUs its threads use: actors that reserve whole CPUs leave nothing for
# Ray Data's own read and write tasks, and on a small machine the job then waits forever.
ACTOR_CPU_SHARE = 0.5
# Ray's own chatter (usage stats, unhandled-error reports, Ray Data's INFO logs) must not drown the summary line;
# workers' output never reaches the driver (log_to_driver=False) and fd 2 is captured while Ray runs.
QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_IGNORE_UNHANDLED_ERRORS": "1",
    "RAY_DATA_LOG_LEVEL": "ERROR",
}
QUIET_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve")
MAX_SOCKET_PREFIX = 40
LOOPBACK = "127.0.0.1"
LOOPBACK_ONLY_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
JOIN_TIMEOUT_SECONDS = 10  # Ray's session dir holds Unix sockets, whose paths must stay under ~107 bytes


class _Totals:
    """A tiny counter actor: what the output cannot tell us (truncated texts) is reported here."""

    def __init__(self) -> None:
        self.truncated = 0

    def add(self, truncated: int) -> None:
        self.truncated += truncated

    def total(self) -> int:
        return self.truncated


class ScoreBatches:
    """The map_batches UDF: one Scorer per actor, loaded once, checked against the driver's model."""

    def __init__(
        self,
        model_dir: str,
        sha256: str,
        threads: int,
        max_batch_rows: int,
        max_batch_tokens: int,
        text_column: str,
        schema: pa.Schema,
        totals: Any,
    ) -> None:
        # An InputError raised here would reach the driver only as text inside ActorDiedError; raised from
        # __call__ it arrives as itself (RayTaskError keeps the cause), so keep it for the first batch.
        self.error: InputError | None = None
        try:
            self.scorer = Scorer(
                model_dir, threads=threads, max_batch_rows=max_batch_rows, max_batch_tokens=max_batch_tokens
            )
            if self.scorer.manifest.sha256 != sha256:
                raise InputError(
                    f"model dir {model_dir} differs on node {os.uname().nodename} (sha256 "
                    f"{self.scorer.manifest.sha256[:12]}, the driver has {sha256[:12]}); every node needs the same model"
                )
        except InputError as exc:
            self.error = exc
        self.text_column = text_column
        self.schema = schema
        self.input_schema = pa.schema(list(schema)[: -len(OUTPUT_COLUMNS)])
        self.totals = totals

    def __call__(self, table: pa.Table) -> pa.Table:
        import ray

        if self.error is not None:
            raise self.error
        if not table.schema.remove_metadata().equals(self.input_schema):
            # Ray may hand back another physical type (e.g. a dictionary column decoded): restore the input's
            table = table.select(self.input_schema.names).cast(self.input_schema)
        scored = []
        truncated = 0
        for batch in table.combine_chunks().to_batches():
            scores = self.scorer.score(texts_of(batch, self.text_column))
            scored.append(scored_batch(batch, self.schema, self.scorer.labels, scores))
            truncated += scores.truncated
        if truncated:
            ray.get(self.totals.add.remote(truncated))
        return pa.Table.from_batches(scored, schema=self.schema)


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


def plan_inputs(src: Path, text_column: str) -> tuple[list[Path], pa.Schema, int]:
    """Every input file, checked up front; Ray reads them as one dataset, so they must share one schema."""
    sources = list_parquet_files(src) if src.is_dir() else [src]
    schema, total_rows = None, 0
    for path in sources:
        parquet = open_input(path, text_column)
        total_rows += parquet.metadata.num_rows
        this = parquet.schema_arrow.remove_metadata()
        if schema is None:
            schema, first = this, path
        elif not this.equals(schema):
            raise InputError(
                f"input {path} has schema ({describe(this)}) but {first} has ({describe(schema)}); "
                "--engine ray reads all files as one dataset and needs one schema (the local engine does not)"
            )
    return sources, schema, total_rows


def describe(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def pool_plan(cluster_cpus: float, actors: int | None, threads: int | None) -> tuple[int, int, float]:
    """(actors, ONNX Runtime threads per actor, CPUs each actor reserves from Ray)."""
    cpus = max(1, int(cluster_cpus))
    actors = actors or cpus  # one single-threaded actor per core beats intra-op threads on small batches
    threads = threads or max(1, cpus // actors)
    reserve = round(ACTOR_CPU_SHARE * min(threads, cpus / actors), 3)
    return actors, threads, max(reserve, 0.01)


def quiet_ray() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def ray_temp_dir() -> Path:
    """A private temp dir for Ray's session files (never under OUT or the repo), removed after the run."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > MAX_SOCKET_PREFIX:
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix="ray-score-", dir=base))


def loopback_host(address: str) -> str | None:
    """The host of a `host:port` address when it is a loopback address, else None."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return host
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def private_instance_env() -> dict[str, str]:
    """The environment that keeps the private instance to itself: loopback only, and a fresh token.

    With cluster mode off (a switch Ray has for Windows and macOS), Ray takes the loopback address as the node's
    and binds every process's servers to it. RAY_AUTH_TOKEN outranks any token file, so the user's own
    ~/.ray/auth_token is neither used nor created. Children inherit the token through their environment, which
    only this user can read; it never appears on a command line or in a log.
    """
    return {
        LOOPBACK_ONLY_VAR: "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_urlsafe(32),
    }


def check_cluster(ray: Any, address: str) -> None:
    """Fail in seconds, with what to do, where ray.init would retry a refused token for 20 s or hang on no answer."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=JOIN_TIMEOUT_SECONDS).close()
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot reach the Ray cluster at {address} ({first_line(exc)}); check --ray-address or RAY_ADDRESS"
        ) from None
    try:
        ray._raylet.GcsClient(address=address)  # one authenticated call to the head's GCS
    except ray.exceptions.AuthenticationError:
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            raise InputError(
                f"the Ray cluster at {address} requires token authentication: set RAY_AUTH_MODE=token and the "
                "cluster's token in RAY_AUTH_TOKEN (or in the file named by RAY_AUTH_TOKEN_PATH)"
            ) from None
        raise InputError(
            f"the Ray cluster at {address} refused the token (from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
            "~/.ray/auth_token); set the token the cluster was started with"
        ) from None
    except ray.exceptions.RpcError as exc:
        raise InputError(f"no Ray cluster answers at {address} ({first_line(exc)})") from None


def start_ray(address: str | None) -> tuple[Any, Path | None]:
    """Join `address` (or $RAY_ADDRESS) if given, else start a private local instance on this host's cores.

    Returns the ray module and the private instance's temp dir (None when joining). Ray reads its environment
    when it is imported, so it is imported here, after the environment is set.
    """
    quiet_ray()
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        if loopback_host(address):  # else Ray swaps in this host's address, which a loopback cluster never answers
            os.environ[LOOPBACK_ONLY_VAR] = "0"
        ray = import_ray()
        if "://" not in address and address != "auto":
            check_cluster(ray, address)
        try:
            ray.init(address=address, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot join the Ray cluster at {address} ({first_line(exc)})") from None
        return ray, None
    os.environ.update(private_instance_env())
    ray = import_ray()
    temp_dir = ray_temp_dir()
    try:
        ray.init(
            address="local",
            num_cpus=default_threads(),
            _node_ip_address=LOOPBACK,
            _temp_dir=str(temp_dir),
            **common,
        )
    except BaseException:
        reap_leftovers(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return ray, temp_dir


def reap_leftovers(temp_dir: Path) -> None:
    """End workers of our private local cluster that outlived ray.shutdown().

    A worker still starting (e.g. an actor loading its model) when a failed run shuts Ray down can miss the
    raylet's exit and sleep forever. Such a process still holds its log files in our private session dir,
    which no other process uses, so that is how it is found (Linux /proc; elsewhere this does nothing).
    """
    prefix = f"{temp_dir}{os.sep}"
    for entry in Path("/proc").glob("[0-9]*"):
        if int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd).startswith(prefix) for fd in (entry / "fd").iterdir()):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:  # gone already, or not ours to inspect
            continue


def shutdown_ray() -> None:
    """Disconnect (and stop a private instance) if Ray got as far as starting."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def quiet_data_context(ray: Any) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False
    context.print_on_execution_start = False
    context.verbose_stats_logs = False
    if hasattr(context, "enable_rich_progress_bars"):
        context.enable_rich_progress_bars = False
    for handler in logging.getLogger("ray.data").handlers:
        handler.setLevel(logging.CRITICAL)


def cause_of(exc: BaseException) -> BaseException:
    """The user-level exception under Ray's wrappers (RayTaskError, UserCodeException, ...)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (InputError, pa.ArrowException, OSError)) and not type(exc).__module__.startswith("ray"):
            return exc
        inner = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def as_input_error(exc: BaseException, src: Path) -> InputError | None:
    cause = cause_of(exc)
    if isinstance(cause, InputError):
        return InputError(str(cause))
    if isinstance(cause, (pa.ArrowException, OSError)):
        return InputError(f"input {src} is corrupt or unreadable ({first_line(cause)})")
    # Some wrappers (an actor that died in __init__) carry the worker's exception only as text.
    marker = f"{InputError.__module__}.{InputError.__qualname__}: "
    lines = [line for line in str(exc).splitlines() if line.startswith(marker)]
    return InputError(lines[-1][len(marker) :]) if lines else None


def find_corrupt_file(sources: list[Path], text_column: str) -> InputError | None:
    """A read task failed on the cluster; Arrow's message names no file, so find the culprit here."""
    for path in sources:
        try:
            for _ in read_batches(open_input(path, text_column), path, DEFAULT_WINDOW_ROWS):
                pass
        except InputError as exc:
            return exc
    return None


@contextlib.contextmanager
def captured_stderr(log: Path) -> Iterator[None]:
    """Send fd 2 to `log` while Ray runs: its C++ core worker writes there directly (no logger to quiet).

    A bug (anything but an InputError) replays the capture, so nothing needed to debug it is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "ab") as sink:
            os.dup2(sink.fileno(), 2)
        try:
            yield
        except (InputError, KeyboardInterrupt):
            raise
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            sys.stderr.write(log.read_text(errors="replace")[-20000:])
            raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.unlink(missing_ok=True)


def written_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*.parquet") if path.is_file())


def count_output(files: list[Path]) -> tuple[int, int]:
    """(rows, rows with a null label) from the footers of what was actually written."""
    rows = nulls = 0
    for path in files:
        metadata = pq.read_metadata(path)
        rows += metadata.num_rows
        label = metadata.schema.to_arrow_schema().get_field_index("label")
        for group in range(metadata.num_row_groups):
            column = metadata.row_group(group).column(label)
            if column.is_stats_set and column.statistics.has_null_count:
                nulls += column.statistics.null_count
            else:
                nulls += pq.ParquetFile(path).read_row_group(group, columns=["label"]).column(0).null_count
    return rows, nulls


def publish_dir(staging: Path, out: Path) -> None:
    """Swap the finished staging dir in as OUT; an earlier OUT is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def merge_into_file(parts: list[Path], out: Path, schema: pa.Schema, record: dict[str, Any]) -> None:
    """IN a file gives OUT a file: stream the part files into one atomic Parquet file with the full record."""
    with atomic_parquet_writer(out, schema) as writer:
        for part in parts:
            parquet = pq.ParquetFile(part)
            for batch in read_batches(parquet, part, DEFAULT_WINDOW_ROWS):
                writer.write_batch(batch.replace_schema_metadata(schema.metadata))
        if not parts:
            writer.write_table(schema.empty_table())
        writer.add_key_value_metadata({METADATA_KEY: json.dumps(record).encode()})


def already_done(out: Path, scorer: Scorer) -> bool:
    """--resume: OUT appears only when a run finished, so an OUT made by the same model is done."""
    files = [out] if out.is_file() else written_files(out) if out.is_dir() else []
    records = [read_metadata(path) for path in files]
    return bool(records) and all(r and r.get("model_sha256") == scorer.manifest.sha256 for r in records)


def run_ray(args: argparse.Namespace, scorer: Scorer) -> RunStats:
    """Score IN into OUT on a Ray cluster; returns the counts for the CLI's summary line."""
    src, out = Path(args.input), Path(args.output)
    sources, input_schema, total_rows = plan_inputs(src, args.text_column)
    if args.resume and already_done(out, scorer):
        return RunStats(skipped_files=len(sources))

    record = {**model_record(scorer, args.text_column), "engine": "ray", "input": str(src), "started_at": now()}
    schema = output_schema(input_schema, record)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_path_for(out)  # hidden sibling of OUT, same naming as the local engine's temp files
    log = Path(tempfile.gettempdir()) / f"ray-score-{os.getpid()}-{uuid.uuid4().hex[:8]}.stderr"
    temp_dir = None
    try:
        with captured_stderr(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ray, temp_dir = start_ray(args.ray_address)
                quiet_data_context(ray)
                truncated = score_on_cluster(ray, args, scorer, sources, schema, staging)
            except Exception as exc:
                error = as_input_error(exc, src)
                if error is None:
                    raise
                if not isinstance(cause_of(exc), InputError):  # a read task failed: name the file
                    error = find_corrupt_file(sources, args.text_column) or error
                raise error from None
            finally:
                shutdown_ray()
        staging.mkdir(exist_ok=True)  # an all-empty input writes no part files
        parts = written_files(staging)
        rows, null_rows = count_output(parts)
        if rows != total_rows:
            raise RuntimeError(f"the Ray run wrote {rows} rows but the input holds {total_rows}; nothing published")
        stats = RunStats(rows=rows, null_rows=null_rows, truncated_rows=truncated, files=len(sources), outputs=[out])
        if src.is_dir():
            if not parts:
                pq.write_table(schema.empty_table(), staging / "empty.parquet")
            publish_dir(staging, out)
        else:
            record.update(rows=rows, null_rows=null_rows, truncated_rows=truncated, finished_at=now())
            merge_into_file(parts, out, schema, record)
        return stats
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if temp_dir is not None:
            reap_leftovers(temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)


def score_on_cluster(
    ray: Any, args: argparse.Namespace, scorer: Scorer, sources: list[Path], schema: pa.Schema, staging: Path
) -> int:
    """read_parquet -> map_batches(ScoreBatches) on an actor pool -> write_parquet; returns truncated texts."""
    actors, threads, reserve = pool_plan(ray.cluster_resources().get("CPU", 1), args.actors, args.threads)
    totals = ray.remote(num_cpus=0)(_Totals).remote()
    dataset = ray.data.read_parquet(
        [str(path.resolve()) for path in sources],
        partitioning=None,  # hive-style dir names must not add columns: input columns stay unchanged
        file_extensions=None,
    ).map_batches(
        ScoreBatches,
        fn_constructor_kwargs=dict(
            model_dir=str(Path(args.model).resolve()),
            sha256=scorer.manifest.sha256,
            threads=threads,
            max_batch_rows=args.batch_size,
            max_batch_tokens=args.max_batch_tokens,
            text_column=args.text_column,
            schema=schema,
            totals=totals,
        ),
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=reserve,
        batch_size=DEFAULT_WINDOW_ROWS,
        batch_format="pyarrow",
        udf_modifying_row_count=False,
    )
    dataset.write_parquet(str(staging.resolve()), schema=schema, compression="zstd")
    return ray.get(totals.total.remote())
