"""The record of a scored file, kept in its Parquet footer: written, read, summed and compared in one place.

Every engine writes the same record, so `--resume` trusts an output whichever engine made it, and a file
scored in parts (Ray units, Spark tasks) is published with one record summing its parts' counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from runtime.files.parquet_io import OutputOptions
from runtime.files.parquet_io import METADATA_KEY, InputFile, read_metadata
from runtime.files.storage import Location
from runtime.model.model_dir import package_versions
from runtime.scoring.distribution import Distribution
from runtime.scoring.scorer import Scorer, Scores

RUNTIME_PACKAGES = ("onnxruntime", "tokenizers", "numpy", "pyarrow")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RowCounts:
    """The rows of one output (or of a whole run), what happened to them and how their scores are distributed."""

    rows: int = 0
    null_rows: int = 0
    truncated_rows: int = 0
    chunked_rows: int = 0
    deduplicated_rows: int = 0
    cached_rows: int = 0  # outputs read from --score-cache, not scored
    distribution: Distribution = field(default_factory=Distribution)

    @classmethod
    def start(cls, scorer: Scorer, options: OutputOptions) -> RowCounts:
        """No rows yet, over the labels rows get (the model's, or zero-shot's candidates) and the kind of score."""
        probabilities = options.candidate_labels is not None or scorer.function_to_apply != "none"
        return cls(distribution=Distribution.start(options.answer_labels(scorer.labels), probabilities=probabilities))

    def add(self, other: RowCounts) -> None:
        for counter in fields(self):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))

    def count(self, rows: int, scores: Scores) -> None:
        """Add one scored batch of `rows` rows."""
        self.distribution.count(scores)
        self.add(
            RowCounts(
                rows=rows,
                null_rows=int((~scores.valid).sum()),
                truncated_rows=scores.truncated,
                chunked_rows=int((scores.chunks > 1).sum()),
                deduplicated_rows=scores.deduplicated,
                cached_rows=scores.cached,
            )
        )

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, Any] = {counter.name: getattr(self, counter.name) for counter in fields(self)}
        return {**counts, "distribution": self.distribution.as_dict()}

    @classmethod
    def of(cls, raw: dict[str, Any]) -> RowCounts:
        """The counts in a footer; one written before distributions were kept has an empty one."""
        return cls(
            **{counter.name: int(raw.get(counter.name, 0)) for counter in fields(cls) if counter.name != "distribution"},
            distribution=Distribution.of(raw["distribution"]) if "distribution" in raw else Distribution(),
        )


def model_record(scorer: Scorer, options: OutputOptions) -> dict[str, Any]:
    """Which model and options made an output: enough to reproduce it."""
    manifest = scorer.manifest
    return {
        "model_identity": manifest.identity,
        "model_files": manifest.files,
        "checkpoint": manifest.checkpoint,
        "labels": manifest.labels,
        "activation": scorer.function_to_apply,
        "quantization": manifest.quantization,
        "precision_used": scorer.chosen_precision.record(),  # the arithmetic, its agreement and the CPU flags
        **options.record(),
        "long_text_policy": scorer.long_text.as_record(),  # with the model's default stride filled in
        "versions": {"runtime": package_versions(RUNTIME_PACKAGES), "export": manifest.versions},
    }


def resume_key(scorer: Scorer, source: InputFile, options: OutputOptions) -> dict[str, Any]:
    """What --resume compares: the model's identity, the input's identity and every option that changes the output."""
    return {"model_identity": scorer.manifest.identity, "input_identity": source.identity, **options.record()}


@dataclass
class FileRecord:
    """How one output was made and what it holds; its footer says it as one flat JSON object."""

    model: dict[str, Any]  # model_record(): model, options and versions
    input: str
    input_identity: dict[str, Any]
    resume_compares: list[str]
    started_at: str
    counts: RowCounts = field(default_factory=RowCounts)
    finished_at: str | None = None  # set only once every row is written: --resume trusts nothing else

    @classmethod
    def start(cls, scorer: Scorer, source: InputFile, options: OutputOptions) -> FileRecord:
        key = resume_key(scorer, source, options)
        return cls(
            model_record(scorer, options), str(source.source), source.identity, list(key), now(), RowCounts.start(scorer, options)
        )

    def finish(self) -> dict[bytes, bytes]:
        """Mark the record finished; returns the footer's key-value metadata."""
        self.finished_at = now()
        return {METADATA_KEY: json.dumps(self.as_dict()).encode()}

    def as_dict(self) -> dict[str, Any]:
        record = {
            **self.model,
            "input": self.input,
            "input_identity": self.input_identity,
            "resume_compares": self.resume_compares,
            "started_at": self.started_at,
            **self.counts.as_dict(),
        }
        if self.finished_at is not None:
            record["finished_at"] = self.finished_at
        return record

    @classmethod
    def read(cls, out: Location) -> FileRecord | None:
        """The record in OUT's footer, or None when OUT is missing or no run of ours finished it."""
        raw = read_metadata(out) if out.exists() else None
        if not raw or "finished_at" not in raw:
            return None
        own = {"input", "input_identity", "resume_compares", "started_at", "finished_at", *RowCounts().as_dict()}
        return cls(
            model={key: value for key, value in raw.items() if key not in own},
            input=raw.get("input", ""),
            input_identity=raw.get("input_identity", {}),
            resume_compares=raw.get("resume_compares", []),
            started_at=raw.get("started_at", ""),
            counts=RowCounts.of(raw),
            finished_at=raw["finished_at"],
        )

    def made_like(self, key: dict[str, Any]) -> bool:
        """--resume: this finished output came from the same input, model and options as `key` asks for."""
        mine = {**self.model, "input_identity": self.input_identity}
        return all(key_name in mine and mine[key_name] == value for key_name, value in key.items())

    @classmethod
    def merged(cls, parts: list[FileRecord]) -> FileRecord:
        """One record for a file published from parts: the first part's model and input, the counts summed."""
        counts = RowCounts()
        for part in parts:
            counts.add(part.counts)
        first = parts[0]
        return cls(
            first.model,
            first.input,
            first.input_identity,
            first.resume_compares,
            min(part.started_at for part in parts),
            counts,
        )


def already_done(destination: Location, key: dict[str, Any]) -> bool:
    """--resume trusts an output only when a finished run made it from the same input, model and options."""
    record = FileRecord.read(destination)
    return record is not None and record.made_like(key)
