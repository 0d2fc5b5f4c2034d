"""--score-cache: rows scored on an earlier night are read back, not scored; the cache survives concurrent writers,
a killed writer, compaction, and works on a real S3-protocol server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.files.score_cache import ScoreCache, cache_stats, compact, list_parts
from runtime.files.storage import Location
from runtime.scoring.scorer import Scorer
from tests.support.cli import ROOT, assert_clean_error, score, write
from tests.support.s3_server import stop_group

TOLERANCE = 1e-5  # fp32: batching alone (padding, summation order) moves scores by about 1e-6


def texts(count: int, start: int = 0) -> list[str]:
    return [f"review {i}: the film was {'great fun' if i % 3 else 'a dull, long mess'}" for i in range(start, start + count)]


def night(tmp_path: Path, name: str, model_dir: Path, rows: list[str | None], *extra: str) -> tuple[pa.Table, dict]:
    """Score `rows` with the cache at tmp_path/cache; (the output, the summary)."""
    src = write(tmp_path / f"{name}.parquet", pa.table({"id": range(len(rows)), "text": pa.array(rows, pa.string())}))
    out, summary = tmp_path / f"{name}-out.parquet", tmp_path / f"{name}.json"
    result = score(model_dir, src, out, "--score-cache", str(tmp_path / "cache"), "--summary-json", str(summary), *extra)
    assert result.returncode == 0, result.stderr
    return pq.read_table(out), json.loads(summary.read_text()) | {"line": result.stdout}


def probabilities(table: pa.Table) -> np.ndarray:
    return np.array(table.column("probabilities").to_pylist(), dtype=np.float64)


def test_second_night_scores_nothing_and_writes_the_same(tmp_path, model_dir):
    rows = [*texts(300), None, *texts(20)]  # a null row and repeats
    first, cold = night(tmp_path, "one", model_dir, rows, "--logits")
    second, warm = night(tmp_path, "two", model_dir, rows, "--logits", "--batch-size", "7")
    assert cold["cached_rows"] == 0 and cold["deduplicated_rows"] == 20
    assert warm["cached_rows"] == warm["rows"] - 1 == 320  # every row with a text
    assert "320 from the score cache" in warm["line"]
    footer = json.loads(pq.read_metadata(tmp_path / "two-out.parquet").metadata[b"runtime.score"])
    assert footer["cached_rows"] == 320
    assert first.column("label").to_pylist() == second.column("label").to_pylist()
    assert second.column("label")[300].as_py() is None
    for column in ("probabilities", "logits"):
        a, b = first.column(column).to_pylist(), second.column(column).to_pylist()
        assert a[300] is None and b[300] is None
        assert np.abs(np.array(a[:300] + a[301:]) - np.array(b[:300] + b[301:])).max() < TOLERANCE
    assert warm["distribution"]["label_rows"] == cold["distribution"]["label_rows"]


def test_changed_and_new_rows_are_scored(tmp_path, model_dir):
    night(tmp_path, "one", model_dir, texts(100))
    changed = [*texts(90), *(f"{text} Edited." for text in texts(10, 90)), *texts(25, 1000)]
    table, summary = night(tmp_path, "two", model_dir, changed)
    assert summary["cached_rows"] == 90
    fresh = Scorer(model_dir).score(changed)
    assert np.abs(probabilities(table) - fresh.probabilities).max() < TOLERANCE
    _, third = night(tmp_path, "three", model_dir, changed)
    assert third["cached_rows"] == len(changed)


@pytest.mark.parametrize("option", [("--function-to-apply", "sigmoid"), ("--long-text", "chunk", "--max-chunks", "2")])
def test_a_changed_option_misses(tmp_path, model_dir, option):
    night(tmp_path, "one", model_dir, texts(50))
    _, summary = night(tmp_path, "two", model_dir, texts(50), *option)
    assert summary["cached_rows"] == 0
    _, again = night(tmp_path, "three", model_dir, texts(50), *option)
    assert again["cached_rows"] == 50


def test_a_changed_model_misses_and_a_pair_differs_from_its_text(tmp_path, models):
    model_dir = models["distilbert"][1]
    night(tmp_path, "one", model_dir, texts(40))
    _, other = night(tmp_path, "two", models["bert"][1], texts(40))
    assert other["cached_rows"] == 0
    src = write(tmp_path / "pairs.parquet", pa.table({"text": texts(40), "pair": [""] * 40}))
    summary = tmp_path / "pairs.json"
    extra = ("--text-pair-column", "pair", "--score-cache", str(tmp_path / "cache"), "--summary-json", str(summary))
    assert score(model_dir, src, tmp_path / "pairs-out.parquet", *extra).returncode == 0
    assert json.loads(summary.read_text())["cached_rows"] == 0


def test_python_api(tmp_path, model_dir):
    scorer = Scorer(model_dir)
    cache = ScoreCache.open(str(tmp_path / "cache"), scorer)
    first = cache.score(texts(30))
    cache.flush()
    again = ScoreCache.open(str(tmp_path / "cache"), scorer).score([None, *texts(30)])
    assert (first.cached, again.cached) == (0, 30)
    assert np.abs(again.probabilities[1:] - first.probabilities).max() < TOLERANCE
    assert list(again.label_ids[1:]) == list(first.label_ids) and not again.valid[0]


def launch(model_dir: Path, src: Path, out: Path, cache: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(model_dir), "--score-cache", str(cache)]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_two_concurrent_writers_then_a_reader_lose_nothing(tmp_path, model_dir):
    inputs = [write(tmp_path / f"in{n}.parquet", pa.table({"text": texts(400, n * 200)})) for n in range(2)]
    writers = [launch(model_dir, src, tmp_path / f"out{n}.parquet", tmp_path / "cache") for n, src in enumerate(inputs)]
    try:
        for writer in writers:
            assert writer.wait(timeout=300) == 0, writer.stderr.read()
    finally:
        for writer in writers:
            stop_group(writer)
    # the 200 rows both inputs share are written twice, unless one writer's part landed before the other looked
    assert 600 <= cache_stats(Location.local(tmp_path / "cache")).entries <= 800
    _, summary = night(tmp_path, "reader", model_dir, texts(600))
    assert summary["cached_rows"] == 600
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")]


def test_a_killed_writer_leaves_a_usable_cache(tmp_path, model_dir):
    night(tmp_path, "one", model_dir, texts(200))
    files = [write(tmp_path / "big" / f"part-{n}.parquet", pa.table({"text": texts(2000, 5000 + n * 2000)})) for n in range(20)]
    writer = launch(model_dir, files[0].parent, tmp_path / "big-out", tmp_path / "cache")
    try:
        deadline = time.monotonic() + 120
        while len(list_parts(Location.local(tmp_path / "cache"))) and time.monotonic() < deadline:
            if sum(len(p) for p in list_parts(Location.local(tmp_path / "cache")).values()) > 256:
                break  # the first big file's entries are in: it is writing the next ones
            time.sleep(0.05)
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        stop_group(writer)
    assert writer.returncode == -signal.SIGKILL
    rows = [*texts(200), *texts(2000, 5000), *texts(10, 900_000)]
    table, summary = night(tmp_path, "after", model_dir, rows)
    assert summary["cached_rows"] >= 200 and summary["rows"] == len(rows)
    assert np.abs(probabilities(table) - Scorer(model_dir).score(rows).probabilities).max() < TOLERANCE


def test_s3(tmp_path, model_dir, s3):
    src = write(tmp_path / "in.parquet", pa.table({"text": texts(120)}))
    env = s3.env()
    uri = f"s3://{s3.new_bucket()}/nightly/cache"
    runs = []
    for name in ("one", "two"):
        summary = tmp_path / f"{name}.json"
        result = score(model_dir, src, tmp_path / f"{name}.parquet", "--score-cache", uri, "--summary-json", str(summary), env=env)
        assert result.returncode == 0, result.stderr
        runs.append(json.loads(summary.read_text()))
    assert [run["cached_rows"] for run in runs] == [0, 120]
    stats = subprocess.run([sys.executable, "-m", "runtime.cache", "stats", uri], cwd=ROOT, env=env, capture_output=True, text=True)
    assert stats.returncode == 0 and stats.stdout.startswith("120 entries"), stats


def test_an_unreadable_cache_is_one_error_line(tmp_path, model_dir):
    src = write(tmp_path / "in.parquet", pa.table({"text": texts(5)}))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a cache")
    for cache in (blocker, blocker / "cache"):
        result = score(model_dir, src, tmp_path / "out.parquet", "--score-cache", str(cache))
        assert_clean_error(result, str(blocker))
        assert not (tmp_path / "out.parquet").exists()
    stats = subprocess.run([sys.executable, "-m", "runtime.cache", "stats", str(blocker)], cwd=ROOT, capture_output=True, text=True)
    assert_clean_error(stats, "not a directory")


def test_compact_and_stats(tmp_path, model_dir):
    for n in range(3):
        night(tmp_path, f"n{n}", model_dir, texts(100, n * 50))  # overlapping nights: 200 distinct texts
    root = Location.local(tmp_path / "cache")
    before = cache_stats(root)
    assert before.entries == 200 and before.parts > before.shards
    result = subprocess.run([sys.executable, "-m", "runtime.cache", "compact", str(root)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    after = cache_stats(root)
    assert (after.entries, after.shards, after.parts) == (200, before.shards, before.shards)
    _, summary = night(tmp_path, "after", model_dir, texts(200))
    assert summary["cached_rows"] == 200
    assert compact(root, older_than_days=1) == (after.parts, 0)
    time.sleep(1.1)
    assert compact(root, older_than_days=1 / 86_400)[1] == 200
    assert cache_stats(root).entries == 0
