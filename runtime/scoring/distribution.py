"""What a night's scores look like, in counts that add up: label counts, a top-score histogram per label, and the
rows below a confidence threshold.

Counts, not shares, are kept, so the distribution of a file scored in parts (Ray units) or of a whole run is the
sum of its pieces whatever the engine; shares are derived only when the distribution is written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.errors import DataError
from runtime.scoring.scorer import Scores

SCORE_BINS = 10  # equal bins of the top score on [0, 1]
LOW_CONFIDENCE_BELOW = 0.6  # a top score below this is a low-confidence row
LOGITS_NOTE = "scores are raw logits (--function-to-apply none), not probabilities: no histogram"


@dataclass
class Distribution:
    """Label counts and top-score histograms of the rows that have a score (a null text has none).

    `histograms` holds per label the count of its rows in each of SCORE_BINS bins of the top score, or is None
    when the scores are raw logits, which have no fixed range to bin. An empty `labels` is the sum's identity.
    """

    labels: tuple[str, ...] = ()
    label_rows: list[int] = field(default_factory=list)
    histograms: list[list[int]] | None = field(default_factory=list)
    low_confidence_rows: int | None = 0

    @classmethod
    def start(cls, labels: list[str], probabilities: bool) -> Distribution:
        """An empty distribution over `labels`; `probabilities` False means the scores are logits."""
        count = len(labels)
        return cls(
            tuple(labels),
            [0] * count,
            [[0] * SCORE_BINS for _ in range(count)] if probabilities else None,
            0 if probabilities else None,
        )

    @property
    def scored_rows(self) -> int:
        return sum(self.label_rows)

    def count(self, scores: Scores) -> None:
        """Add one scored batch: its valid rows by chosen label, and by top score when the scores are probabilities."""
        ids = scores.label_ids[scores.valid]
        for label, rows in enumerate(np.bincount(ids, minlength=len(self.labels))):
            self.label_rows[label] += int(rows)
        if self.histograms is None or self.low_confidence_rows is None:
            return
        best = scores.best[scores.valid].astype(np.float64)
        bins = np.clip((best * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        counted = np.bincount(ids * SCORE_BINS + bins, minlength=len(self.labels) * SCORE_BINS)
        for label, histogram in enumerate(self.histograms):
            for bin_, rows in enumerate(counted[label * SCORE_BINS : (label + 1) * SCORE_BINS]):
                histogram[bin_] += int(rows)
        self.low_confidence_rows += int((best < LOW_CONFIDENCE_BELOW).sum())

    def __add__(self, other: Distribution) -> Distribution:
        """The distribution of both sets of rows; both must come from the same labels and kind of score."""
        if not other.labels:
            return self
        if not self.labels:
            return other
        if self.labels != other.labels or (self.histograms is None) != (other.histograms is None):
            raise ValueError(f"cannot add the distributions of labels {self.labels} and {other.labels} (or of logits)")
        histograms = (
            None
            if self.histograms is None or other.histograms is None
            else [[a + b for a, b in zip(mine, theirs)] for mine, theirs in zip(self.histograms, other.histograms)]
        )
        low = None if self.low_confidence_rows is None else self.low_confidence_rows + (other.low_confidence_rows or 0)
        return Distribution(self.labels, [a + b for a, b in zip(self.label_rows, other.label_rows)], histograms, low)

    def overall_histogram(self) -> list[int] | None:
        """The top-score histogram of all labels together."""
        if self.histograms is None:
            return None
        return [sum(column) for column in zip(*self.histograms)] if self.histograms else [0] * SCORE_BINS

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: the counts, and the shares an operator reads (of the rows with a score)."""
        total = self.scored_rows
        binned = self.histograms is not None and self.low_confidence_rows is not None
        return {
            "labels": list(self.labels),
            "scored_rows": total,
            "label_rows": dict(zip(self.labels, self.label_rows)),
            "label_shares": {label: share(rows, total) for label, rows in zip(self.labels, self.label_rows)},
            "score_bins": [round(edge / SCORE_BINS, 2) for edge in range(SCORE_BINS + 1)],
            "score_histogram": self.overall_histogram(),
            "score_histogram_by_label": dict(zip(self.labels, self.histograms))
            if self.histograms is not None
            else None,
            "low_confidence_below": LOW_CONFIDENCE_BELOW,
            "low_confidence_rows": self.low_confidence_rows,
            "low_confidence_share": share(self.low_confidence_rows, total) if binned else None,
            "histogram_note": None if binned else LOGITS_NOTE,
        }

    @classmethod
    def of(cls, raw: Any) -> Distribution:
        """A distribution from its JSON form (a footer's or a summary's); a DataError says what is wrong with it."""
        try:
            labels = tuple(str(label) for label in raw["labels"])
            label_rows = [whole(raw["label_rows"][label]) for label in labels]
            by_label = raw["score_histogram_by_label"]
            histograms = None if by_label is None else [[whole(rows) for rows in by_label[label]] for label in labels]
            low = raw["low_confidence_rows"]
            low_rows = None if low is None else whole(low)
            threshold = raw["low_confidence_below"]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a score distribution ({type(exc).__name__}: {exc})") from None
        if histograms is not None and any(len(histogram) != SCORE_BINS for histogram in histograms):
            raise DataError(f"not a score distribution: a histogram has other than {SCORE_BINS} bins")
        if threshold != LOW_CONFIDENCE_BELOW:
            raise DataError(f"its low-confidence threshold is {threshold}, not {LOW_CONFIDENCE_BELOW}")
        return cls(labels, label_rows, histograms, low_rows)


def share(rows: int | None, total: int) -> float | None:
    return None if rows is None or not total else round(rows / total, 6)


def whole(value: Any) -> int:
    """A count from JSON: a non-negative whole number, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value
