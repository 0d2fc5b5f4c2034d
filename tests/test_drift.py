"""Distribution in the summary, drift against a baseline, and the HTML report (issue 25, parts 3-5)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.engines.record import RowCounts
from runtime.scoring.distribution import SCORE_BINS, Distribution
from runtime.scoring.drift import PSI_EPSILON, compare
from runtime.scoring.scorer import Scores
from tests.support.cli import assert_clean_error, score, write

LABELS = ["NEGATIVE", "POSITIVE"]


def scores_of(label_ids: list[int], best: list[float], valid: list[bool] | None = None) -> Scores:
    """Two-label softmax scores whose chosen label and top score are given."""
    ids = np.array(label_ids)
    top = np.array(best, dtype=np.float32)
    probabilities = np.where(ids[:, None] == np.arange(2), top[:, None], 1 - top[:, None]).astype(np.float32)
    return Scores(
        label_ids=ids,
        probabilities=probabilities,
        logits=np.zeros_like(probabilities),
        valid=np.array(valid if valid is not None else [True] * len(ids)),
        truncated=0,
        chunks=np.ones(len(ids), dtype=np.int32),
    )


def night(label_ids: list[int], best: list[float]) -> Distribution:
    distribution = Distribution.start(LABELS, probabilities=True)
    distribution.count(scores_of(label_ids, best))
    return distribution


def by_hand_psi(expected: list[int], actual: list[int]) -> float:
    """The PSI formula, written out: sum of (a - e) ln(a / e) over bins, shares floored at the epsilon."""
    e = [max(count / sum(expected), PSI_EPSILON) for count in expected]
    a = [max(count / sum(actual), PSI_EPSILON) for count in actual]
    return sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e))


def histogram(best: list[float]) -> list[int]:
    """numpy's own 10-bin histogram of top scores (as float32, as the scorer keeps them)."""
    return np.histogram(np.float32(best), bins=SCORE_BINS, range=(0, 1))[0].tolist()


def test_a_batch_is_counted_by_label_by_score_bin_and_confidence() -> None:
    distribution = Distribution.start(LABELS, probabilities=True)
    distribution.count(scores_of([0, 1, 1, 0, 1], [0.95, 0.55, 0.75, 1.0, 0.5], valid=[True, True, True, True, False]))
    raw = distribution.as_dict()
    assert raw["label_rows"] == {"NEGATIVE": 2, "POSITIVE": 2}  # the null row has no label
    assert raw["label_shares"] == {"NEGATIVE": 0.5, "POSITIVE": 0.5}
    assert raw["score_histogram_by_label"]["NEGATIVE"] == [0] * 9 + [2]  # 0.95 and 1.0 (the last bin is closed)
    assert raw["score_histogram_by_label"]["POSITIVE"] == [0, 0, 0, 0, 0, 1, 0, 1, 0, 0]
    assert raw["score_histogram"] == [0, 0, 0, 0, 0, 1, 0, 1, 0, 2]
    assert (raw["low_confidence_rows"], raw["low_confidence_share"], raw["low_confidence_below"]) == (1, 0.25, 0.6)


def test_counts_add_up_across_parts_and_through_a_footer() -> None:
    """A file scored in parts (Ray) and a run of many files sum their counts, distribution included."""
    parts = []
    for ids, best in (([0, 1], [0.9, 0.65]), ([1, 1, 0], [0.99, 0.3, 0.58])):
        counts = RowCounts(distribution=Distribution.start(LABELS, probabilities=True))
        counts.count(len(ids), scores_of(ids, best))
        parts.append(RowCounts.of(json.loads(json.dumps(counts.as_dict()))))  # as a footer holds it
    total = RowCounts()
    for part in parts:
        total.add(part)
    whole = night([0, 1, 1, 1, 0], [0.9, 0.65, 0.99, 0.3, 0.58])
    assert total.rows == 5 and total.distribution == whole


def test_logits_get_no_histogram_and_say_why() -> None:
    distribution = Distribution.start(LABELS, probabilities=False)
    distribution.count(scores_of([0, 1], [0.9, 0.7]))
    raw = distribution.as_dict()
    assert raw["label_rows"] == {"NEGATIVE": 1, "POSITIVE": 1}
    assert raw["score_histogram"] is None and raw["score_histogram_by_label"] is None
    assert raw["low_confidence_rows"] is None and "logits" in raw["histogram_note"]
    with pytest.raises(ValueError):
        distribution + night([0], [0.9])  # logits and probabilities never mix


def test_drift_on_two_synthetic_nights_with_a_known_shift() -> None:
    """Night 1: 60% NEGATIVE, confident. Night 2: 30% NEGATIVE, and POSITIVE's scores slide towards 0.5."""
    rng = np.random.default_rng(0)
    first_ids = [0] * 600 + [1] * 400
    first_best = list(rng.uniform(0.9, 1.0, 600)) + list(rng.uniform(0.8, 1.0, 400))
    second_ids = [0] * 300 + [1] * 700
    second_best = list(rng.uniform(0.9, 1.0, 300)) + list(rng.uniform(0.5, 0.8, 700))
    before, after = night(first_ids, first_best), night(second_ids, second_best)

    drift = compare(before, after, "night1.json", threshold=0.2)

    assert drift.label_share_change_points == pytest.approx({"NEGATIVE": -30.0, "POSITIVE": 30.0})
    assert drift.label_psi == pytest.approx(by_hand_psi([600, 400], [300, 700]), abs=1e-6)
    assert before.overall_histogram() == histogram(first_best)
    expected = by_hand_psi(histogram(first_best), histogram(second_best))
    assert drift.score_psi == pytest.approx(expected, abs=1e-6) and expected > 1  # empty bins met the epsilon
    positive = by_hand_psi(histogram(first_best[600:]), histogram(second_best[300:]))
    assert drift.score_psi_by_label["POSITIVE"] == pytest.approx(positive, abs=1e-6)
    assert drift.score_psi_by_label["NEGATIVE"] < 0.1  # the same uniform(0.9, 1) both nights
    warning = drift.warning()
    assert warning and warning.startswith("warning: ") and "score_psi " in warning and "NEGATIVE" not in warning


def test_the_same_night_twice_is_no_drift() -> None:
    same = night([0, 1, 1, 0], [0.91, 0.72, 0.88, 0.64])
    drift = compare(same, same, "night1.json", threshold=0.2)
    assert drift.score_psi == 0 and drift.label_psi == 0 and drift.warning() is None
    assert drift.label_share_change_points == {"NEGATIVE": 0.0, "POSITIVE": 0.0}
