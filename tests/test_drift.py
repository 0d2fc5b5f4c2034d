"""Distribution in the summary, drift against a baseline, and the HTML report (issue 25, parts 3-5)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.engines.record import RowCounts
from runtime.files.parquet_io import METADATA_KEY
from runtime.scoring.distribution import SCORE_BINS, Distribution
from runtime.scoring.drift import PSI_EPSILON, compare
from runtime.scoring.scorer import Scores
from tests.support.cli import ROOT, assert_clean_error, score, write

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
        truncated_rows=np.zeros(len(ids), dtype=bool),
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


def texts_table(count: int = 40) -> pa.Table:
    texts = [
        None if i % 10 == 3 else f"review {i}: the film was {'great' if i % 3 else 'dull and long'}"
        for i in range(count)
    ]
    return pa.table({"id": range(count), "text": texts})


@pytest.fixture(scope="module")
def first_night(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(input, output, summary) of a run with --summary-json: the baseline of the other runs."""
    base = tmp_path_factory.mktemp("night1")
    src = write(base / "in.parquet", texts_table())
    result = score(model_dir, src, base / "out.parquet", "--summary-json", str(base / "summary.json"))
    assert result.returncode == 0, result.stderr
    return src, base / "out.parquet", json.loads((base / "summary.json").read_text())


def test_the_summary_carries_the_distribution_of_the_output(first_night: tuple[Path, Path, dict]) -> None:
    _, out, summary = first_night
    labels = pq.read_table(out).column("label").to_pylist()
    scored = [label for label in labels if label is not None]
    distribution = summary["distribution"]
    assert distribution["scored_rows"] == len(scored) == summary["rows"] - summary["null_rows"] == 36
    assert distribution["label_rows"] == {label: scored.count(label) for label in distribution["labels"]}
    assert sum(distribution["score_histogram"]) == len(scored)
    footer = json.loads(pq.read_metadata(out).metadata[METADATA_KEY])  # each file's footer carries its own
    assert footer["distribution"]["label_rows"] == distribution["label_rows"]


def test_raw_logits_get_null_histograms_with_a_reason(model_dir: Path, first_night: tuple, tmp_path: Path) -> None:
    src, _, _ = first_night
    result = score(
        model_dir,
        src,
        tmp_path / "out.parquet",
        "--function-to-apply",
        "none",
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert result.returncode == 0, result.stderr
    distribution = json.loads((tmp_path / "s.json").read_text())["distribution"]
    assert distribution["score_histogram"] is None and "logits" in distribution["histogram_note"]
    assert distribution["scored_rows"] == 36


def score_against(model_dir: Path, src: Path, baseline: Path, tmp_path: Path):
    """Tonight's run with BASELINE as last night, its summary in tmp_path/s.json."""
    summary_json = str(tmp_path / "s.json")
    return score(model_dir, src, tmp_path / "out.parquet", "--baseline", str(baseline), "--summary-json", summary_json)


def test_baseline_of_the_same_night_is_no_drift(model_dir: Path, first_night: tuple, tmp_path: Path) -> None:
    src, _, _ = first_night
    baseline = Path(first_night[1]).parent / "summary.json"
    result = score_against(model_dir, src, baseline, tmp_path)
    assert result.returncode == 0 and "warning:" not in result.stderr, result.stderr
    drift = json.loads((tmp_path / "s.json").read_text())["drift"]
    assert drift["score_psi"] == 0 and drift["label_psi"] == 0 and drift["shifted"] == []
    assert drift["baseline"] == str(baseline) and drift["psi_threshold"] == 0.2


def test_a_shifted_baseline_is_one_warning_line_and_exit_0(model_dir: Path, first_night: tuple, tmp_path: Path) -> None:
    """A baseline whose top scores all sat in another bin than tonight's: the score PSI passes 0.2."""
    src, _, summary = first_night
    distribution = summary["distribution"]
    tonight = distribution["score_histogram"]
    empty = min(range(SCORE_BINS), key=lambda bin_: tonight[bin_])
    shifted = {label: [0] * SCORE_BINS for label in distribution["labels"]}
    for label, rows in distribution["label_rows"].items():
        shifted[label][empty] = rows
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({**summary, "distribution": {**distribution, "score_histogram_by_label": shifted}}))
    result = score_against(model_dir, src, baseline, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "score_psi" in warnings[0] and str(baseline) in warnings[0], result.stderr
    drift = json.loads((tmp_path / "s.json").read_text())["drift"]
    assert drift["score_psi"] > 0.2 and drift["label_psi"] == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json at all", "not JSON"),
        (json.dumps({"status": "failed", "exit_code": 2}), "failed run"),
        (json.dumps({"status": "ok", "rows": 3}), "without a score distribution"),
        ("relabel", "not comparable"),
    ],
)
def test_a_bad_baseline_is_one_line_before_any_scoring(
    model_dir: Path, first_night: tuple, tmp_path: Path, content: str, fragment: str
) -> None:
    src, _, summary = first_night
    if content == "relabel":  # a summary of a model with other labels
        content = json.dumps(
            {
                **summary,
                "distribution": {
                    **summary["distribution"],
                    "labels": ["A", "B"],
                    "label_rows": {"A": 1, "B": 2},
                    "score_histogram_by_label": {"A": [0] * 10, "B": [0] * 10},
                },
            }
        )
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    result = score(model_dir, src, tmp_path / "out.parquet", "--baseline", str(baseline))
    assert_clean_error(result, str(baseline), fragment)
    assert not (tmp_path / "out.parquet").exists()


def test_a_missing_baseline_is_one_line(model_dir: Path, first_night: tuple, tmp_path: Path) -> None:
    result = score(model_dir, first_night[0], tmp_path / "out.parquet", "--baseline", str(tmp_path / "nope.json"))
    assert_clean_error(result, "nope.json", "not a file")


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runtime.report", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


class Page(HTMLParser):
    """The report's svg elements (their attributes) and every piece of text, for asserting on what it shows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.svgs: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.svgs.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_report_draws_each_night(first_night: tuple, tmp_path: Path) -> None:
    """Label shares of all nights in one plot, then one histogram per night; a logits night says it has none."""
    summary = first_night[2]
    logits = {
        **summary,
        "distribution": {**summary["distribution"], "score_histogram_by_label": None, "low_confidence_rows": None},
    }
    paths = []
    for name, content in (("score-2026-12-07.json", summary), ("score-2026-12-08.json", logits)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(content))
    result = run_report(*map(str, paths), "--out", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    page = Page((tmp_path / "report.html").read_text())
    assert [svg["data-plot"] for svg in page.svgs] == ["label-shares", "score-histogram", "score-histogram"]
    assert [svg["data-night"] for svg in page.svgs[1:]] == ["score-2026-12-07.json", "score-2026-12-08.json"]
    words = " ".join(page.text)
    assert all(label in words for label in summary["distribution"]["labels"])
    assert "raw logits: no score histogram" in words and "<script" not in (tmp_path / "report.html").read_text()
    assert "http" not in (tmp_path / "report.html").read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.parametrize(("content", "fragment"), [("{", "not JSON"), ('{"rows": 1}', "without a score distribution")])
def test_bad_report_input_is_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(content)
    result = run_report(str(summary), "--out", str(tmp_path / "report.html"))
    assert_clean_error(result, str(summary), fragment)
    assert not (tmp_path / "report.html").exists()


def test_a_report_without_out_is_one_line(tmp_path: Path) -> None:
    assert_clean_error(run_report(str(tmp_path / "x.json")), "--out")


def test_psi_threshold_without_a_baseline_is_bad_usage(model_dir: Path, first_night: tuple, tmp_path: Path) -> None:
    result = score(model_dir, first_night[0], tmp_path / "out.parquet", "--psi-threshold", "0.1")
    assert_clean_error(result, "--psi-threshold only applies with --baseline")
