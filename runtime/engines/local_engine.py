"""The local engine: one process streams each Parquet file through the Scorer into an atomic output."""

from __future__ import annotations

from runtime.engines.file_scoring import RunStats, files_to_score, orphaned_outputs, score_file
from runtime.engines.job import Job
from runtime.engines.progress import Progress
from runtime.files.score_cache import ScoreCache
from runtime.scoring.scorer import Scorer


def run_local(job: Job, scorer: Scorer) -> RunStats:
    """Check every input, skip what --resume may trust, then score the rest file by file."""
    stats = RunStats(orphaned_outputs=orphaned_outputs(job))
    todo = files_to_score(job, scorer, stats)
    cache = None if job.score_cache is None else ScoreCache(job.score_cache, scorer)
    with Progress(sum(source.rows for source, _ in todo), job.progress_every) as progress:
        for source, destination in todo:
            stats.add(RunStats.published(score_file(scorer, source, destination, job.output, progress, cache=cache), destination))
    return stats
