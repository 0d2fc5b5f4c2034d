"""Directory mode: IN_DIR -> OUT_DIR with the same layout, each file atomic, and --resume."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.cli import make_tree, run_score


def outputs(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_directory_keeps_layout_and_matches_single_files(models, tmp_path):
    _, model_dir = models["distilbert"]
    sources = make_tree(tmp_path / "in")
    result = run_score(str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(model_dir))
    assert result.returncode == 0, result.stderr
    assert "scored 153 rows in 3 file(s)" in result.stdout
    assert outputs(tmp_path / "out") == ["day=1/part-0.parquet", "day=1/part-1.parquet", "day=2/part-0.parquet"]
    single = run_score(str(sources[2]), str(tmp_path / "single.parquet"), "--model", str(model_dir))
    assert single.returncode == 0, single.stderr
    assert pq.read_table(tmp_path / "out" / "day=2" / "part-0.parquet").equals(pq.read_table(tmp_path / "single.parquet"))


def test_resume_skips_only_what_the_same_model_finished(models, tmp_path):
    _, model_dir = models["distilbert"]
    _, other_model = models["bert"]
    make_tree(tmp_path / "in")
    args = (str(tmp_path / "in"), str(tmp_path / "out"), "--resume")
    assert run_score(*args, "--model", str(model_dir)).returncode == 0
    done = tmp_path / "out" / "day=1" / "part-0.parquet"
    missing = tmp_path / "out" / "day=2" / "part-0.parquet"
    before = done.stat().st_mtime_ns
    missing.unlink()
    result = run_score(*args, "--model", str(model_dir))
    assert result.returncode == 0, result.stderr
    assert "scored 52 rows in 1 file(s), 2 file(s) already done" in result.stdout
    assert done.stat().st_mtime_ns == before and missing.exists()
    rescored = run_score(*args, "--model", str(other_model))
    assert "scored 153 rows in 3 file(s)" in rescored.stdout, rescored.stderr
    record = json.loads(pq.read_metadata(done).metadata[b"runtime.score"])
    assert record["labels"] == ["contradiction", "entailment", "neutral"]


def test_bad_file_in_directory_writes_nothing(models, tmp_path):
    _, model_dir = models["distilbert"]
    make_tree(tmp_path / "in")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "in" / "day=2" / "part-9.parquet")
    result = run_score(str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(model_dir))
    assert result.returncode == 2 and "part-9.parquet" in result.stderr
    assert not (tmp_path / "out").exists()


def test_out_inside_in_and_empty_directory_are_refused(models, tmp_path):
    _, model_dir = models["distilbert"]
    make_tree(tmp_path / "in")
    inside = run_score(str(tmp_path / "in"), str(tmp_path / "in" / "scored"), "--model", str(model_dir))
    assert inside.returncode == 2 and "inside the input" in inside.stderr
    (tmp_path / "empty").mkdir()
    empty = run_score(str(tmp_path / "empty"), str(tmp_path / "out2"), "--model", str(model_dir))
    assert empty.returncode == 2 and "no *.parquet" in empty.stderr


def test_hidden_files_are_skipped_and_counted_as_spark_and_hive_do(models, tmp_path):
    _, model_dir = models["distilbert"]
    make_tree(tmp_path / "in")
    table = pa.table({"text": ["a staging file"]})
    for hidden in [".a.parquet", "_tmp/x.parquet", "day=1/_temporary/0/part-0.parquet", "day=1/.part-1.parquet"]:
        (tmp_path / "in" / hidden).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp_path / "in" / hidden)
    summary_json = str(tmp_path / "s.json")
    result = run_score(str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(model_dir), "--summary-json", summary_json)
    assert result.returncode == 0, result.stderr
    assert "4 hidden file(s) ignored" in result.stdout
    assert outputs(tmp_path / "out") == ["day=1/part-0.parquet", "day=1/part-1.parquet", "day=2/part-0.parquet"]
    summary = json.loads((tmp_path / "s.json").read_text())
    hidden = [".a.parquet", "_tmp/x.parquet", "day=1/.part-1.parquet", "day=1/_temporary/0/part-0.parquet"]
    assert sorted(summary["hidden_files_ignored"]) == hidden
