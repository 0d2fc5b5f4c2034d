"""The Ray engine: an actor pool of Scorers, each scoring slices of the input files into part files.

Every input file gives one output file at the same relative path, as with the local engine, made by the same
`score_file` with the same footer record, so `--resume` works per file on both engines. A file is cut into
slices of rows ("units") so that one big file keeps every actor busy; each unit is written atomically into a
hidden staging prefix beside OUT, and once all units of a file are in, the driver publishes the file
atomically and durably, the parts merged in order (so row order is kept). IN, OUT and the model may be URIs
(s3://, gs://, ...): actors read and write through the same pyarrow filesystems, and each fetches a model at a
URI into its own host's cache, so the cluster needs no shared filesystem.

A scoring actor that dies (killed, OOM, its node lost) is restarted by Ray and its unit retried; a retried unit
rewrites its own part file, so every row lands exactly once. Everything that can be checked is checked in the
driver before Ray starts (every file's text column); whatever still fails on the cluster (a corrupt page, a
model dir that differs on some node) becomes one InputError.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import logging
import math
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import uuid
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.errors import InputError, first_line
from runtime.engines.job import FileTask, Job, OutputOptions
from runtime.engines.local_engine import (
    DEFAULT_WINDOW_ROWS,
    RunStats,
    already_done,
    now,
    orphaned_outputs,
    resume_identity,
    score_file,
)
from runtime.files.parquet_io import METADATA_KEY, atomic_parquet_writer, open_input, read_batches, read_metadata
from runtime.engines.progress import Progress
from runtime.model.scorer import Scorer
from runtime.model.session import default_threads
from runtime.files.storage import URI_SCHEME, Location, temp_name

RAY_MISSING = "--engine ray needs the ray extra: pip install '.[ray]'"
# Actors reserve part of a CPU: an actor restarted after its node was lost then still finds room on the nodes
# that are left (which it shares for a while) instead of waiting forever for a free CPU.
ACTOR_CPU_SHARE = 0.5
# A unit is retried on a fresh actor this often when its actor dies (killed, out of memory, node lost).
MAX_RESTARTS = 3
# Units: about this many per actor, so that actors finish together and a lost actor costs little work ...
UNITS_PER_ACTOR = 4
# ... but never so small that per-unit costs (a part file, a task) show, nor so big that a retry costs minutes.
MIN_UNIT_ROWS = DEFAULT_WINDOW_ROWS
MAX_UNIT_ROWS = 16 * DEFAULT_WINDOW_ROWS
# Ray's own chatter (usage stats, unhandled-error reports) must not drown the summary line; workers' output never
# reaches the driver (log_to_driver=False) and fd 2 is captured while Ray runs.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_IGNORE_UNHANDLED_ERRORS": "1"}
QUIET_LOGGERS = ("ray",)
MAX_SOCKET_PREFIX = 40  # Ray's session dir holds Unix sockets, whose paths must stay under ~107 bytes
LOOPBACK = "127.0.0.1"
LOOPBACK_ONLY_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
JOIN_TIMEOUT_SECONDS = 10


# Counts a part's footer record holds that the published file's record sums.
SUMMED_COUNTS = ("rows", "null_rows", "truncated_rows", "chunked_rows", "deduplicated_rows")


@dataclass(frozen=True)
class Unit:
    """Rows `rows` (all when None) of input `source`, scored into the part file `part`."""

    index: int  # of the input file in the run's plan
    source: Location
    part: Location
    rows: range | None


class ScoringActor:
    """One Scorer per actor, loaded once and checked against the driver's model; scores one unit per call."""

    def __init__(
        self, model: str, identity: str, threads: int, max_batch_rows: int, max_batch_tokens: int, options: OutputOptions
    ) -> None:
        # An InputError raised here would reach the driver only as text inside ActorDiedError; raised from
        # a method it arrives as itself (RayTaskError keeps the cause), so keep it for the first unit.
        self.error: InputError | None = None
        self.options = options
        try:
            self.scorer = Scorer(
                model,  # a path, or a URI the Scorer fetches into this host's cache
                threads=threads,
                max_batch_rows=max_batch_rows,
                max_batch_tokens=max_batch_tokens,
                **options.scorer_options(),
            )
            if self.scorer.manifest.identity != identity:
                raise InputError(
                    f"model dir {model} differs on node {os.uname().nodename} (identity "
                    f"{self.scorer.manifest.identity[:12]}, the driver has {identity[:12]}); "
                    "every node needs the same model"
                )
        except InputError as exc:
            self.error = exc

    def score(self, unit: Unit) -> RunStats:
        if self.error is not None:
            raise self.error
        source = open_input(unit.source, self.options)
        quiet = Progress(0, 0.0, stream=io.StringIO())  # the driver reports progress, unit by unit
        return score_file(self.scorer, source, unit.part, self.options, quiet, rows=unit.rows)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


def unit_rows(total_rows: int, actors: int) -> int:
    return min(MAX_UNIT_ROWS, max(MIN_UNIT_ROWS, math.ceil(total_rows / (UNITS_PER_ACTOR * actors))))


def plan_units(sources: list[tuple[Location, int]], actors: int, staging: Location) -> list[Unit]:
    """Cut every (input, rows) into units of about `unit_rows` rows; a small file is one unit, read whole."""
    size = unit_rows(sum(rows for _, rows in sources), actors)
    units = []
    for index, (source, rows) in enumerate(sources):
        count = max(1, round(rows / size))
        bounds = [rows * k // count for k in range(count + 1)]
        for k in range(count):
            part = staging.child(f"{index}-{k}.parquet")
            units.append(Unit(index, source, part, range(bounds[k], bounds[k + 1]) if count > 1 else None))
    return units


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


def as_input_error(exc: BaseException) -> InputError | None:
    """What the user should read for a failure on the cluster, or None for a bug."""
    cause = cause_of(exc)
    if isinstance(cause, InputError):
        return InputError(str(cause))
    if isinstance(cause, (pa.ArrowException, OSError)):  # e.g. OUT's disk full or not writable on a node
        return InputError(first_line(cause))
    if type(exc).__name__ in ("RayActorError", "ActorDiedError", "ActorUnavailableError"):
        return InputError(
            f"a scoring actor died {MAX_RESTARTS + 1} times on the same unit of rows ({first_line(exc)}); "
            "files not finished were not published"
        )
    # Some wrappers (an actor that died in __init__) carry the worker's exception only as text.
    marker = f"{InputError.__module__}.{InputError.__qualname__}: "
    lines = [line for line in str(exc).splitlines() if line.startswith(marker)]
    return InputError(lines[-1][len(marker) :]) if lines else None


@contextlib.contextmanager
def captured_stderr(log: Path) -> Iterator[None]:
    """Send fd 2 to `log` while Ray runs: its C++ core worker writes there directly (no logger to quiet).

    Ray's driver also prints the cluster's error reports (a worker died, a task is retried) to sys.stdout, which
    is for the summary line: they go to the same log. A bug (anything but an InputError) replays the capture,
    so nothing needed to debug it is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "ab") as sink:
            os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(sys.stderr):
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


def merge_parts(parts: list[Location], out: Location) -> RunStats:
    """Publish one file's parts as OUT, atomically and durably, with one record summing the parts' records."""
    records = [read_metadata(part) for part in parts]
    record = {
        **records[0],
        "started_at": min(r["started_at"] for r in records),
        **{key: sum(r[key] for r in records) for key in SUMMED_COUNTS},
        "finished_at": now(),
    }
    files = [pq.ParquetFile(part.path, filesystem=part.filesystem) for part in parts]
    with atomic_parquet_writer(out, files[0].schema_arrow) as writer:
        for part, parquet in zip(parts, files):
            for batch in read_batches(parquet, part, DEFAULT_WINDOW_ROWS):
                writer.write_batch(batch)
        if not record["rows"]:
            writer.write_table(files[0].schema_arrow.empty_table())
        writer.add_key_value_metadata({METADATA_KEY: json.dumps(record).encode()})
    return RunStats(**{key: record[key] for key in SUMMED_COUNTS}, files=1, outputs=[str(out)])


def staging_for(job: Job) -> Location:
    """A hidden sibling of OUT for the part files: they never appear inside OUT, and one run never meets another's."""
    return job.destination.sibling(temp_name(job.destination.name))


def remove_staging(staging: Location) -> None:
    with contextlib.suppress(OSError, pa.ArrowException):
        staging.filesystem.delete_dir(staging.path)


def run_ray(job: Job, scorer: Scorer) -> RunStats:
    """Score IN into OUT on a Ray cluster; returns the counts for the CLI's summary line."""
    stats = RunStats(orphaned_outputs=orphaned_outputs(job))
    todo = []
    for task in job.tasks:  # every file is checked (columns, readable footer) before any work
        source = open_input(task.source, job.output)
        if job.resume and already_done(task.destination, resume_identity(scorer, source, job.output)):
            stats.skipped_files += 1
        else:
            todo.append((task, source.rows))
    if not todo:
        return stats
    staging = staging_for(job)
    log = Path(tempfile.gettempdir()) / f"ray-score-{os.getpid()}-{uuid.uuid4().hex[:8]}.stderr"
    temp_dir = None
    try:
        with captured_stderr(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ray, temp_dir = start_ray(job.ray_address)
                with Progress(sum(rows for _, rows in todo), job.progress_every) as progress:
                    stats.add(score_on_cluster(ray, job, scorer, todo, staging, progress))
            except Exception as exc:
                error = as_input_error(exc)
                if error is None:
                    raise
                raise error from None
            finally:
                shutdown_ray()
        return stats
    finally:
        remove_staging(staging)
        if temp_dir is not None:
            reap_leftovers(temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)


def score_on_cluster(
    ray: Any, job: Job, scorer: Scorer, todo: list[tuple[FileTask, int]], staging: Location, progress: Progress
) -> RunStats:
    """Units go to whichever actor is free; a file is published as soon as its last unit is in."""
    actors, threads, reserve = pool_plan(ray.cluster_resources().get("CPU", 1), job.actors, job.threads)
    actor_class = ray.remote(
        num_cpus=reserve,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_RESTARTS,
        scheduling_strategy="SPREAD",  # one node's loss takes as few actors as possible
    )(ScoringActor)
    options = dict(
        model=job.model if URI_SCHEME.match(job.model) else str(job.model_dir.resolve()),
        identity=scorer.manifest.identity,
        threads=threads,
        max_batch_rows=job.max_batch_rows,
        max_batch_tokens=job.max_batch_tokens,
        options=job.output,
    )
    idle = [actor_class.remote(**options) for _ in range(actors)]
    queue = deque(plan_units([(task.source, rows) for task, rows in todo], actors, staging))
    parts = {index: [unit.part for unit in queue if unit.index == index] for index in range(len(todo))}
    left = {index: len(paths) for index, paths in parts.items()}
    failures: Counter[str] = Counter()  # by part path: a Unit holds a filesystem, which does not hash
    running: dict[Any, tuple[Any, Unit]] = {}
    stats = RunStats()
    while queue or running:
        while idle and queue:
            actor, unit = idle.pop(), queue.popleft()
            running[actor.score.remote(unit)] = (actor, unit)
        [ready], _ = ray.wait(list(running), num_returns=1)
        actor, unit = running.pop(ready)
        idle.append(actor)  # Ray restarts a dead actor behind the same handle
        try:
            done = ray.get(ready)
        except ray.exceptions.RayActorError:
            # Its actor died or went unreachable mid-unit (Ray does not retry the call when it cannot tell
            # whether it ran): do the unit again, which rewrites the same part file.
            failures[unit.part.path] += 1
            if failures[unit.part.path] > MAX_RESTARTS:
                raise
            queue.appendleft(unit)
            continue
        progress.start_file(str(unit.source))
        progress.update(done.rows)
        left[unit.index] -= 1
        if left[unit.index] == 0:
            task, rows = todo[unit.index]
            published = merge_parts(parts[unit.index], task.destination)
            if published.rows != rows:
                raise RuntimeError(f"{task.source} holds {rows} rows but the Ray run scored {published.rows}; not published")
            stats.add(published)
    return stats
