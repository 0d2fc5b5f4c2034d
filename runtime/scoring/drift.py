"""Did tonight's scores move? Tonight's distribution against a baseline night's: label shares and the population
stability index (PSI) of the top-score histogram.

PSI = sum over bins of (a - e) * ln(a / e), with e the baseline's share of rows in a bin and a tonight's. The usual
reading: below 0.1 no significant change, 0.1 to 0.2 a moderate one, above 0.2 a significant shift. An empty bin
would make a term infinite, so shares below PSI_EPSILON are raised to it first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runtime.errors import DataError
from runtime.scoring.distribution import Distribution

DEFAULT_PSI_THRESHOLD = 0.2
PSI_EPSILON = 1e-4  # the floor of a bin's share (0.01%), so that an empty bin gives a finite PSI


def psi(expected: Sequence[int], actual: Sequence[int]) -> float | None:
    """The PSI of `actual` counts against `expected` ones, bin by bin; None when either side has no rows."""
    expected_total, actual_total = sum(expected), sum(actual)
    if not expected_total or not actual_total:
        return None
    total = 0.0
    for before, after in zip(expected, actual):
        e = max(before / expected_total, PSI_EPSILON)
        a = max(after / actual_total, PSI_EPSILON)
        total += (a - e) * math.log(a / e)
    return round(total, 6)


@dataclass
class Drift:
    """Tonight against a baseline: the figures an orchestrator alerts on (the `drift` key of the summary)."""

    baseline: str
    threshold: float
    label_share_change_points: dict[str, float | None]
    label_psi: float | None  # PSI of the label shares: labels swapping places moves this, not the score histogram
    score_psi: float | None
    score_psi_by_label: dict[str, float | None]
    note: str | None  # why a figure is None

    def shifted(self) -> list[str]:
        """The figures past the threshold, named as in the summary JSON."""
        figures = {"label_psi": self.label_psi, "score_psi": self.score_psi}
        figures.update({f"score_psi_by_label.{label}": value for label, value in self.score_psi_by_label.items()})
        return [
            f"{name} {value:.3f}" for name, value in figures.items() if value is not None and value > self.threshold
        ]

    def warning(self) -> str | None:
        """One `warning:` line when any PSI passes the threshold, else None."""
        shifted = self.shifted()
        if not shifted:
            return None
        return (
            f"warning: scores drifted from the baseline {self.baseline}: {', '.join(shifted)} > {self.threshold} (PSI)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "psi_threshold": self.threshold,
            "psi_epsilon": PSI_EPSILON,
            "label_share_change_points": self.label_share_change_points,
            "label_psi": self.label_psi,
            "score_psi": self.score_psi,
            "score_psi_by_label": self.score_psi_by_label,
            "shifted": self.shifted(),
            "note": self.note,
        }


def compare(baseline: Distribution, tonight: Distribution, shown: str, threshold: float) -> Drift:
    """Tonight's distribution against the baseline's (over the same labels), `shown` naming the baseline."""
    unknown = dict.fromkeys(baseline.labels)
    if not tonight.scored_rows:  # every file skipped by --resume, or only null texts
        return Drift(shown, threshold, unknown, None, None, unknown, "no rows were scored tonight")
    before, after = baseline.as_dict()["label_shares"], tonight.as_dict()["label_shares"]
    points = {label: round(100 * (after[label] - before[label]), 4) for label in baseline.labels}
    label_psi = psi(baseline.label_rows, tonight.label_rows)
    if baseline.histograms is None or tonight.histograms is None:
        note = "no score histogram on one of the nights (raw logits): no score PSI"
        return Drift(shown, threshold, points, label_psi, None, unknown, note)
    by_label = {
        label: psi(mine, theirs)
        for label, mine, theirs in zip(baseline.labels, baseline.histograms, tonight.histograms)
    }
    score_psi = psi(baseline.overall_histogram() or [], tonight.overall_histogram() or [])
    return Drift(shown, threshold, points, label_psi, score_psi, by_label, None)


def summary_of(raw: bytes, shown: str) -> tuple[dict[str, Any], Distribution]:
    """A run summary (from --summary-json) and its distribution; a DataError naming `shown` when it is not one."""
    try:
        summary = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{shown} is not a run summary: not JSON ({exc})") from None
    if not isinstance(summary, dict) or "distribution" not in summary:
        status = summary.get("status") if isinstance(summary, dict) else None
        why = "of a failed run" if status == "failed" else "without a score distribution"
        raise DataError(f"{shown} is not a run summary with a score distribution: a summary {why}")
    try:
        distribution = Distribution.of(summary["distribution"])
    except DataError as exc:
        raise DataError(f"{shown}: {exc}") from None
    return summary, distribution


def check_baseline(baseline: Distribution, labels: Sequence[str], shown: str) -> None:
    """A baseline is comparable only when it scored rows and its model had the same labels, in the same order."""
    if not baseline.scored_rows:
        raise DataError(f"{shown} is the summary of a run that scored no rows: nothing to compare with")
    if list(baseline.labels) != list(labels):
        raise DataError(f"{shown} scored labels {list(baseline.labels)}, this model has {list(labels)}: not comparable")
