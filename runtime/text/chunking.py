"""Long texts: truncate them as the pipeline does, or score them as overlapping windows and aggregate.

Chunk mode scores a text past the max length as the windows the fast tokenizer makes with
`truncation=True, max_length=M, stride=N, return_overflowing_tokens=True`; the row's probabilities are the mean
(or max) of its windows' probabilities. Texts that fit give exactly what truncate mode gives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

import numpy as np

from runtime.errors import ConfigurationError

LongText = Literal["truncate", "chunk"]
ChunkAggregate = Literal["mean", "max"]
LONG_TEXT_MODES: tuple[str, ...] = get_args(LongText)
CHUNK_AGGREGATES: tuple[str, ...] = get_args(ChunkAggregate)
DEFAULT_MAX_CHUNKS = 256
# Default overlap: a quarter of a window. Every token then sees at least an eighth of a window of context on
# either side of a window boundary, for a third more tokens than no overlap.
DEFAULT_STRIDE_SHARE = 0.25


@dataclass(frozen=True)
class LongTextPolicy:
    """What to do with texts past the model's max length; `stride` None means the default for the model."""

    mode: LongText = "truncate"
    stride: int | None = None
    aggregate: ChunkAggregate = "mean"
    max_chunks: int = DEFAULT_MAX_CHUNKS

    @property
    def chunked(self) -> bool:
        return self.mode == "chunk"

    def for_model(self, window_tokens: int) -> LongTextPolicy:
        """This policy checked against a model whose windows hold `window_tokens` text tokens, stride filled in."""
        if self.mode not in LONG_TEXT_MODES:
            raise ConfigurationError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, not {self.mode!r}")
        if self.aggregate not in CHUNK_AGGREGATES:
            raise ConfigurationError(f"chunk aggregate must be one of {', '.join(CHUNK_AGGREGATES)}, not {self.aggregate!r}")
        if self.max_chunks < 1:
            raise ConfigurationError(f"max chunks must be at least 1, not {self.max_chunks}")
        if not self.chunked:
            return replace(self, stride=0, max_chunks=1)
        stride = int(window_tokens * DEFAULT_STRIDE_SHARE) if self.stride is None else self.stride
        if not 0 <= stride < window_tokens:
            raise ConfigurationError(
                f"chunk stride {stride} must be at least 0 and below the {window_tokens} text tokens a window of "
                "this model holds (its max length less the special tokens); choose a smaller --chunk-stride"
            )
        return replace(self, stride=stride)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def aggregate_windows(values: np.ndarray, rows: np.ndarray, n_rows: int, how: ChunkAggregate) -> np.ndarray:
    """Per-row mean or max of per-window values; a row with one window keeps its values unchanged."""
    if len(rows) == n_rows:  # one window per row: nothing to aggregate
        return values
    if how == "max":
        result = np.full((n_rows, values.shape[1]), -np.inf, dtype=values.dtype)
        np.maximum.at(result, rows, values)
        return result
    result = np.zeros((n_rows, values.shape[1]), dtype=np.float64)
    np.add.at(result, rows, values)
    return (result / np.bincount(rows, minlength=n_rows)[:, None]).astype(values.dtype)
