"""The scoring actor: one Scorer per actor, loaded once, scoring units into part files and publishing files."""

from __future__ import annotations

import io
import os

from runtime.files.parquet_io import OutputOptions
from runtime.engines.file_scoring import score_file
from runtime.engines.progress import Progress
from runtime.engines.ray_engine.plan import Publication, Unit
from runtime.engines.ray_engine.pool import count_start
from runtime.engines.ray_engine.publish import merge_parts
from runtime.engines.record import FileRecord
from runtime.errors import ModelError, ScorerError
from runtime.files.parquet_io import open_input
from runtime.scoring.scorer import Scorer


class ScoringActor:
    """Checked against the driver's model when it starts; scores one unit, or publishes one file, per call."""

    def __init__(
        self, model: str, identity: str, threads: int, max_batch_rows: int, max_batch_tokens: int, options: OutputOptions
    ) -> None:
        # An error raised here would reach the driver only as text inside ActorDiedError; raised from a
        # method it arrives as itself (RayTaskError keeps the cause), so keep it for the first call.
        self.error: ScorerError | None = None
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
                raise ModelError(
                    f"model dir {model} differs on node {os.uname().nodename} (identity "
                    f"{self.scorer.manifest.identity[:12]}, the driver has {identity[:12]}); "
                    "every node needs the same model"
                )
        except ScorerError as exc:
            self.error = exc

    def score(self, unit: Unit) -> FileRecord:
        if self.error is not None:
            raise self.error
        count_start(unit.starts, unit.key)
        source = open_input(unit.source, self.options)
        quiet = Progress(0, 0.0, stream=io.StringIO())  # the driver reports progress, unit by unit
        return score_file(self.scorer, source, unit.part, self.options, quiet, rows=unit.rows)

    def publish(self, publication: Publication) -> FileRecord:
        """Merge on the cluster, not in the driver: the driver's disk and network never carry output rows."""
        return merge_parts(publication)
