"""The operator: plan units, run them on an actor pool, publish each file as soon as its last unit is in.

Every input file gives one output file at the same relative path, as with the local engine, with the same footer
record, so `--resume` works per file on both engines. A file is cut into units of rows so that one big file keeps
every actor busy; each unit is written atomically into a hidden staging prefix beside OUT, and once all units of
a file are in, an actor merges them in order into OUT, atomically and durably (the driver reads no output rows).
IN, OUT and the model may be URIs (s3://, gs://, ...): actors read and write through the same pyarrow
filesystems, and each fetches a model at a URI into its own host's cache, so the cluster needs no shared
filesystem. Everything that can be checked is checked in the driver before Ray starts (every file's text column).
"""

from __future__ import annotations

from typing import Any

from runtime.engines.job import Job
from runtime.engines.file_scoring import RunStats, files_to_score, orphaned_outputs
from runtime.engines.progress import Progress
from runtime.engines.capture import captured_stderr
from runtime.engines.ray_engine.cluster import ray_cluster
from runtime.engines.ray_engine.failures import as_scorer_error
from runtime.engines.ray_engine.plan import Publication, plan_units, pool_plan
from runtime.engines.ray_engine.pool import ACTOR_OPTIONS, ActorPool, Call
from runtime.engines.ray_engine.publish import remove_staging, staging_for
from runtime.engines.ray_engine.worker import ScoringActor
from runtime.files.storage import URI_SCHEME, Location
from runtime.files.parquet_io import InputFile
from runtime.scoring.scorer import Scorer


def run_ray(job: Job, scorer: Scorer) -> RunStats:
    """Score IN into OUT on a Ray cluster; returns the counts for the CLI's summary line."""
    stats = RunStats(orphaned_outputs=orphaned_outputs(job))
    todo = files_to_score(job, scorer, stats)
    if not todo:
        return stats
    staging = staging_for(job.destination)
    try:
        with captured_stderr() as stderr:
            try:
                with ray_cluster(job.ray_address) as ray:
                    with Progress(sum(source.rows for source, _ in todo), job.progress_every, stream=stderr) as progress:
                        stats.add(score_on_cluster(ray, job, scorer, todo, staging, progress))
            except Exception as exc:
                error = as_scorer_error(exc)
                if error is None:
                    raise
                raise error from None
        return stats
    finally:
        remove_staging(staging)


def score_on_cluster(
    ray: Any, job: Job, scorer: Scorer, todo: list[tuple[InputFile, Location]], staging: Location, progress: Progress
) -> RunStats:
    """Units go to whichever actor is free; a file is published as soon as its last unit is in."""
    actors, threads, reserve = pool_plan(ray.cluster_resources().get("CPU", 1), job.actors, job.threads)
    actor_class = ray.remote(
        num_cpus=reserve,
        scheduling_strategy="SPREAD",  # one node's loss takes as few actors as possible
        **ACTOR_OPTIONS,
    )(ScoringActor)
    options = dict(
        model=job.model if URI_SCHEME.match(job.model) else str(job.model_dir.resolve()),
        identity=scorer.manifest.identity,
        threads=threads,
        max_batch_rows=job.max_batch_rows,
        max_batch_tokens=job.max_batch_tokens,
        options=job.output,
    )
    pool = ActorPool(ray, [actor_class.remote(**options) for _ in range(actors)])
    units = plan_units([(source.source, source.rows) for source, _ in todo], actors, staging)
    parts = {index: [unit.part for unit in units if unit.index == index] for index in range(len(todo))}
    left = {index: len(paths) for index, paths in parts.items()}
    for unit in units:
        pool.submit(Call("score", unit, unit.key))
    stats = RunStats()
    for call, record in pool.completed(while_waiting=progress.tick):
        if call.method == "publish":
            stats.add(RunStats.published(record, call.argument.out))
            continue
        unit = call.argument
        progress.start_file(str(unit.source))
        progress.update(record.counts.rows)
        left[unit.index] -= 1
        if left[unit.index] == 0:
            source, destination = todo[unit.index]
            publication = Publication(unit.index, tuple(parts[unit.index]), destination, source.rows)
            pool.submit(Call("publish", publication, f"publishing {destination}"))
    return stats
