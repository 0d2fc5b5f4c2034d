"""Nightly-job operations on local disk: --resume identity, durable publish, a file-size limit, progress lines,
--summary-json, and scoring each distinct text once."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.cli import EXIT_RETRY
from tests.support.cli import ROOT, assert_clean_error, make_tree, score, write


def record_of(path: Path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[b"runtime.score"])


# --- --resume trusts an output only when input, model and options are the same ------------------------------


def test_resume_rescores_a_changed_input(model_dir, tmp_path):
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write(src, pa.table({"id": range(500), "text": [f"old review {i} was dull" for i in range(500)]}))
    assert score(model_dir, src, out, "--resume").returncode == 0
    record = record_of(out)
    assert record["input_identity"]["rows"] == 500
    assert set(record["resume_compares"]) >= {"model_identity", "input_identity", "text_column", "logits"}

    write(src, pa.table({"id": range(300), "text": [f"new review {i} was great" for i in range(300)]}))
    rerun = score(model_dir, src, out, "--resume")
    assert rerun.returncode == 0, rerun.stderr
    assert "scored 300 rows" in rerun.stdout
    assert pq.read_table(out)["text"].to_pylist()[:1] == ["new review 0 was great"]


def test_resume_compares_every_output_option(model_dir, tmp_path):
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write(src, pa.table({"text": ["fine", "awful"], "note": ["a", "b"]}))
    assert score(model_dir, src, out).returncode == 0
    assert "scored 0 rows" in score(model_dir, src, out, "--resume").stdout  # same everything: trusted
    with_logits = score(model_dir, src, out, "--resume", "--logits")
    assert "scored 2 rows" in with_logits.stdout, with_logits.stderr
    assert "logits" in pq.read_table(out).column_names
    other_column = score(model_dir, src, out, "--resume", "--logits", "--text-column", "note")
    assert "scored 2 rows" in other_column.stdout, other_column.stderr


def test_outputs_whose_input_is_gone_are_reported_and_kept(model_dir, tmp_path):
    sources = make_tree(tmp_path / "in")
    assert score(model_dir, tmp_path / "in", tmp_path / "out").returncode == 0
    sources[1].unlink()
    result = score(model_dir, tmp_path / "in", tmp_path / "out", "--resume", "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    orphan = str(tmp_path / "out" / "day=1" / "part-1.parquet")
    assert "1 output(s) under OUT have no input any more (kept)" in result.stdout and orphan in result.stdout
    assert json.loads((tmp_path / "s.json").read_text())["orphaned_outputs"] == [orphan]
    assert Path(orphan).exists()


# --- durable, atomic local output ----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_output_is_fsynced_before_the_rename_and_its_directory_after(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["good", "bad"]}))
    out = tmp_path / "new-dir" / "out.parquet"
    trace = tmp_path / "trace.txt"
    command = ["strace", "-f", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", str(trace)]
    command += [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(model_dir)]
    assert subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines() if "pycache" not in line]  # "PID  call"
    temp_sync = next(i for i, call in enumerate(calls) if call.startswith("fsync(") and ".out.parquet.tmp-" in call)
    rename = next(i for i, call in enumerate(calls) if call.startswith("rename") and f'"{out}"' in call)
    dir_sync = next(i for i, call in enumerate(calls) if call.startswith("fsync(") and f"<{out.parent}>" in call)
    assert temp_sync < rename < dir_sync, calls
    assert any(call.startswith("fsync(") and f"<{tmp_path}>" in call for call in calls[:rename])  # new-dir's entry


def test_file_size_limit_mid_write_keeps_the_old_out(model_dir, tmp_path):
    rows = 20_000
    payload = np.random.default_rng(0).bytes(200 * rows)
    table = pa.table(
        {"text": [f"review {i}" for i in range(rows)], "payload": [payload[i * 200 : (i + 1) * 200] for i in range(rows)]}
    )
    src = write(tmp_path / "in.parquet", table, row_group_size=2_000)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"yesterday's output")
    limit = 1 << 20  # the output needs ~4 MB

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(model_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size,
    )
    assert_clean_error(result, str(out), "File too large", code=EXIT_RETRY)  # the store's limit, not the input
    assert out.read_bytes() == b"yesterday's output"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


# --- logs an operator can follow -----------------------------------------------------------------------------


def test_progress_lines_and_summary_json_off_a_terminal(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": [f"the {i}th review says the film was long " * 6 for i in range(12_000)]}))
    summary_path = tmp_path / "reports" / "summary.json"
    result = score(
        model_dir, src, tmp_path / "out.parquet", "--threads", "1", "--progress-every", "0.2",
        "--summary-json", str(summary_path),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith("progress: ") for line in lines), result.stderr
    done = [int(line.split()[1].split("/")[0].replace(",", "")) for line in lines]
    assert done == sorted(done) and 0 < done[0] < 12_000
    assert all("/12,000 rows (" in line and " rows/s, ETA " in line and f"file {src}" in line for line in lines)

    summary = json.loads(summary_path.read_text())
    for key in ("rows", "null_rows", "truncated_rows", "deduplicated_rows", "files_done", "files_skipped", "seconds",
                "rows_per_second", "model_identity", "versions", "outputs"):
        assert key in summary, key
    assert (summary["rows"], summary["files_done"], summary["files_skipped"]) == (12_000, 1, 0)
    assert summary["outputs"] == [str(tmp_path / "out.parquet")]
    assert summary["model_identity"] == record_of(tmp_path / "out.parquet")["model_identity"]

    quiet = score(model_dir, src, tmp_path / "quiet.parquet", "--progress-every", "0")
    assert quiet.returncode == 0 and quiet.stderr == ""


# --- each distinct text scored once ---------------------------------------------------------------------------


def test_repeated_texts_are_scored_once_with_the_same_answers(model_dir, tmp_path):
    rng = np.random.default_rng(0)
    distinct = [f"ticket {i}: the app {'crashes' if i % 3 else 'works'} " * (1 + i % 7) for i in range(200)]
    picks = rng.integers(0, len(distinct), 3_000)
    texts = [None if i % 50 == 7 else distinct[pick] for i, pick in enumerate(picks)]
    write(tmp_path / "repeats.parquet", pa.table({"text": texts}))
    write(tmp_path / "distinct.parquet", pa.table({"text": distinct}))
    repeated = score(model_dir, tmp_path / "repeats.parquet", tmp_path / "repeats-out.parquet")
    assert score(model_dir, tmp_path / "distinct.parquet", tmp_path / "distinct-out.parquet").returncode == 0
    assert repeated.returncode == 0, repeated.stderr

    present = [text for text in texts if text is not None]
    expected_repeats = len(present) - len(set(present))
    assert f"{len(texts) - len(present)} null, 0 truncated, {expected_repeats} deduplicated)" in repeated.stdout
    assert record_of(tmp_path / "repeats-out.parquet")["deduplicated_rows"] == expected_repeats

    reference = pq.read_table(tmp_path / "distinct-out.parquet").to_pydict()
    by_text = dict(zip(reference["text"], zip(reference["label"], reference["probabilities"])))
    out = pq.read_table(tmp_path / "repeats-out.parquet").to_pydict()
    for text, label, probabilities in zip(out["text"], out["label"], out["probabilities"]):
        if text is None:
            assert label is None and probabilities is None
            continue
        assert label == by_text[text][0]
        assert np.abs(np.array(probabilities) - np.array(by_text[text][1])).max() <= 1e-6
