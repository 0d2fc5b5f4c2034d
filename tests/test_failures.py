"""Nightly-job behaviour: every failure is one clear line, exit 2, no traceback, and no OUT."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.model.model_dir import MANIFEST_FILE, ONNX_FILE, TOKENIZER_FILE, read_manifest, sha256_file
from tests.support.cli import ROOT, assert_clean_error, corrupt_middle, score, write


def only_file(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- bad input files --------------------------------------------------------------------------------------


def test_missing_input(model_dir, tmp_path):
    assert_clean_error(score(model_dir, tmp_path / "nope.parquet", tmp_path / "out.parquet"), "nope.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_not_parquet(model_dir, tmp_path):
    (tmp_path / "in.parquet").write_text("id,text\n1,hello\n")
    assert_clean_error(score(model_dir, tmp_path / "in.parquet", tmp_path / "out.parquet"), "in.parquet")
    assert only_file(tmp_path) == ["in.parquet"]


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_parquet(model_dir, tmp_path, keep):
    full = write(tmp_path / "full.parquet", pa.table({"text": [f"row {i} was fine" for i in range(5000)]}))
    data = full.read_bytes()
    (tmp_path / "in.parquet").write_bytes(data[: int(len(data) * keep)])
    assert_clean_error(score(model_dir, tmp_path / "in.parquet", tmp_path / "out.parquet"), "in.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_corrupt_page_inside_a_valid_footer(model_dir, tmp_path):
    src = write(
        tmp_path / "in.parquet",
        pa.table({"text": [f"text number {i} " * 5 for i in range(20000)]}),
        row_group_size=5000,
        compression="zstd",
    )
    corrupt_middle(src)
    result = score(model_dir, src, tmp_path / "out.parquet")
    assert_clean_error(result, "in.parquet")
    assert only_file(tmp_path) == ["in.parquet"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; CI runs as root")
def test_unreadable_input(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    src.chmod(0)
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet"), "in.parquet")


def test_missing_text_column_lists_columns(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"id": [1], "body": ["hi"]}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet"), "'text'", "id, body")


@pytest.mark.parametrize(
    "column,type_name",
    [(pa.array([1, 2]), "int64"), (pa.array([["a"], ["b"]]), "list<"), (pa.array([b"a", b"b"], pa.binary()), "binary")],
    ids=["int", "list", "binary"],
)
def test_text_column_of_wrong_type(model_dir, tmp_path, column, type_name):
    src = write(tmp_path / "in.parquet", pa.table({"text": column}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet"), "'text'", f"type {type_name}")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    "column",
    [pa.array(["good", None, "bad"], pa.large_string()), pa.array(["good", None, "good"]).dictionary_encode()],
    ids=["large_string", "dictionary"],
)
def test_large_and_dictionary_strings_are_accepted(model_dir, tmp_path, column):
    src = write(tmp_path / "in.parquet", pa.table({"review": column}))
    result = score(model_dir, src, tmp_path / "out.parquet", "--text-column", "review")
    assert result.returncode == 0, result.stderr
    out = pq.read_table(tmp_path / "out.parquet")
    assert out["review"].type == column.type
    assert out["label"].null_count == 1 and out.num_rows == 3


# --- odd but valid rows --------------------------------------------------------------------------------


def test_odd_texts_are_scored(model_dir, tmp_path):
    texts = ["", "   ", "\t\n", "ctrl\x01\x07\x1b chars", "nul\x00inside", "😀🎬👎", "这部电影很好看", "هذا فيلم رائع", "é" * 50]
    src = write(tmp_path / "in.parquet", pa.table({"text": texts}))
    result = score(model_dir, src, tmp_path / "out.parquet")
    assert result.returncode == 0, result.stderr
    out = pq.read_table(tmp_path / "out.parquet")
    assert out["text"].to_pylist() == texts
    assert out["label"].null_count == 0
    assert all(len(p) == 2 for p in out["probabilities"].to_pylist())


def test_huge_texts_are_truncated_and_counted(model_dir, tmp_path):
    huge = " ".join(["word"] * 100_000)
    src = write(tmp_path / "in.parquet", pa.table({"text": [huge, "short", huge]}))
    result = score(model_dir, src, tmp_path / "out.parquet")
    assert result.returncode == 0, result.stderr
    assert "(0 null, 2 truncated, 1 deduplicated)" in result.stdout
    record = json.loads(pq.read_metadata(tmp_path / "out.parquet").metadata[b"runtime.score"])
    assert record["truncated_rows"] == 2


def test_zero_rows_many_row_groups_and_nested_passthrough(model_dir, tmp_path):
    nested = pa.array([{"a": i, "b": [str(i)] * (i % 3)} for i in range(1000)])
    table = pa.table(
        {
            "text": [f"review {i}" if i % 7 else None for i in range(1000)],
            "blob": pa.array([bytes([i % 256]) * (i % 5) for i in range(1000)], pa.binary()),
            "nested": nested,
            "when": pa.array(range(1000), pa.timestamp("ms", tz="UTC")),
        }
    )
    src = write(tmp_path / "in.parquet", table, row_group_size=37)
    assert pq.ParquetFile(src).num_row_groups > 20
    assert score(model_dir, src, tmp_path / "out.parquet").returncode == 0
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.select(table.column_names).equals(table)

    empty = write(tmp_path / "empty.parquet", table.slice(0, 0))
    result = score(model_dir, empty, tmp_path / "empty-out.parquet")
    assert result.returncode == 0, result.stderr
    assert "scored 0 rows" in result.stdout
    empty_out = pq.read_table(tmp_path / "empty-out.parquet")
    assert empty_out.num_rows == 0
    assert empty_out.schema.remove_metadata() == out.schema.remove_metadata()


# --- paths, model dirs, options ---------------------------------------------------------------------------


def test_out_equal_to_in_is_refused(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    before = src.read_bytes()
    assert_clean_error(score(model_dir, src, src), "input")
    assert src.read_bytes() == before


def test_out_directory_for_a_file_input_is_refused(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    (tmp_path / "outdir").mkdir()
    assert_clean_error(score(model_dir, src, tmp_path / "outdir"), "directory")
    assert list((tmp_path / "outdir").iterdir()) == []


def broken_model(model_dir: Path, tmp_path: Path, how: str) -> Path:
    broken = tmp_path / "model"
    if how == "missing":
        return broken
    shutil.copytree(model_dir, broken)
    if how == "no-manifest":
        (broken / MANIFEST_FILE).unlink()
    elif how == "other-version":
        manifest = json.loads((broken / MANIFEST_FILE).read_text())
        manifest["format_version"] = 99
        (broken / MANIFEST_FILE).write_text(json.dumps(manifest))
    elif how == "sha-mismatch":
        with open(broken / ONNX_FILE, "ab") as handle:
            handle.write(b"\0")
    elif how == "old-format":  # as exported before model identities: known by model.onnx's sha256 alone
        manifest = json.loads((broken / MANIFEST_FILE).read_text())
        for key in ("files", "identity", "probe_token_digest"):
            del manifest[key]
        manifest.update(format_version=1, sha256=sha256_file(broken / ONNX_FILE))
        (broken / MANIFEST_FILE).write_text(json.dumps(manifest))
    elif how == "tokenizer-edited":
        swap_token_ids(broken / TOKENIZER_FILE, "boring", "brilliant")
    elif how == "labels-edited":
        manifest = json.loads((broken / MANIFEST_FILE).read_text())
        manifest["labels"] = manifest["labels"][::-1]
        (broken / MANIFEST_FILE).write_text(json.dumps(manifest))
    return broken


def swap_token_ids(tokenizer_path: Path, first: str, second: str) -> None:
    """Swap two words' ids in tokenizer.json's vocabulary: the file still loads, and those words change meaning."""
    tokenizer = json.loads(tokenizer_path.read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    tokenizer_path.write_text(json.dumps(tokenizer))


@pytest.mark.parametrize(
    "how,fragment",
    [
        ("missing", "does not exist"),
        ("no-manifest", "manifest.json"),
        ("other-version", "99"),
        ("sha-mismatch", "sha256"),
        ("old-format", "version 1"),
        ("tokenizer-edited", "tokenizer.json has sha256"),
        ("labels-edited", "edited after export"),
    ],
)
def test_unusable_model_dir(model_dir, tmp_path, how, fragment):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    assert_clean_error(score(broken_model(model_dir, tmp_path, how), src, tmp_path / "out.parquet"), fragment)
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    "option", [["--bogus"], ["--threads", "0"], ["--threads", "two"], ["--batch-size", "-3"], ["--batch-size"]]
)
def test_bad_options_exit_2_with_one_line(model_dir, tmp_path, option):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet", *option), option[0], "--help")


# --- interruption ----------------------------------------------------------------------------------------


def start_long_run(model_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    texts = [f"the {i}th review says the film was good and long " * 8 for i in range(300_000)]
    src = write(tmp_path / "in.parquet", pa.table({"text": texts}), row_group_size=20_000)
    out = tmp_path / "out.parquet"
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(model_dir), "--threads", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(".tmp-" in name for name in only_file(tmp_path)):  # wait until it is writing
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    return process, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_keeps_existing_out_and_cleans_up(model_dir, tmp_path, sig):
    (tmp_path / "out.parquet").write_bytes(b"yesterday's output")
    process, out = start_long_run(model_dir, tmp_path)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().startswith("error: interrupted") and "Traceback" not in stderr
    assert out.read_bytes() == b"yesterday's output"
    assert only_file(tmp_path) == ["in.parquet", "out.parquet"]


def test_kill_9_leaves_nothing_that_looks_like_output(model_dir, tmp_path):
    process, out = start_long_run(model_dir, tmp_path)
    process.kill()
    process.wait(timeout=30)
    assert not out.exists()
    leftovers = [name for name in only_file(tmp_path) if name != "in.parquet"]
    assert leftovers and all(name.startswith(".") and not name.endswith(".parquet") for name in leftovers)


# --- what a finished OUT carries -------------------------------------------------------------------------


def test_out_mode_follows_umask_and_metadata_is_complete(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["fine", None]}))
    result = subprocess.run(
        ["sh", "-c", f"umask 027 && {sys.executable} -m runtime.score {src} {tmp_path / 'out.parquet'} --model {model_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.parquet").stat().st_mode & 0o777 == 0o640
    record = json.loads(pq.read_metadata(tmp_path / "out.parquet").metadata[b"runtime.score"])
    keys = ("model_identity", "model_files", "checkpoint", "labels", "versions", "rows", "null_rows", "started_at")
    for key in (*keys, "finished_at"):
        assert key in record, key
    assert record["rows"] == 2 and record["null_rows"] == 1


def test_verify_checks_a_model_dir(model_dir, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "runtime.verify", str(model_dir)], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("ok:"), ok.stderr
    manifest_path = broken_model(model_dir, tmp_path, "copy") / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["probe_probabilities"][0] = [p + 0.01 for p in manifest["probe_probabilities"][0]]
    manifest_path.write_text(json.dumps(manifest))
    bad = subprocess.run([sys.executable, "-m", "runtime.verify", str(tmp_path / "model")], cwd=ROOT, capture_output=True, text=True)
    assert_clean_error(bad, "probe")


def run_verify(model: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.verify", str(model)], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "how,fragment", [("tokenizer-edited", "tokenizer.json has sha256"), ("labels-edited", "edited after export")]
)
def test_verify_refuses_a_tampered_model(model_dir, tmp_path, how, fragment):
    """The tampering the probes missed: "boring" and "brilliant" swapped in tokenizer.json, or labels edited."""
    assert_clean_error(run_verify(broken_model(model_dir, tmp_path, how)), fragment)


def test_verify_catches_a_tokenizer_that_encodes_the_probes_differently(model_dir, tmp_path):
    """As another `tokenizers` version reading the same file would: the file hashes match, the token ids do not."""
    broken = broken_model(model_dir, tmp_path, "copy")
    swap_token_ids(broken / TOKENIZER_FILE, "good", "person")  # both in the probe "I'm a good person"
    read_manifest(broken, verify_sha256=False).write(broken)  # records the new file's hash
    assert_clean_error(run_verify(broken), "token ids", "tokenizers version")


# --- options and the summary ------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--actors", "2"], ["--ray-address", "127.0.0.1:6379"]])
def test_ray_only_flags_are_refused_without_the_ray_engine(model_dir, tmp_path, option):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet", *option), option[0], "--engine ray")
    assert only_file(tmp_path) == ["in.parquet"]


def test_an_unwritable_summary_json_fails_before_any_work(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": ["good"] * 10}))
    (tmp_path / "a-file").write_text("")
    result = score(model_dir, src, tmp_path / "out.parquet", "--summary-json", str(tmp_path / "a-file" / "s.json"))
    assert_clean_error(result, "a-file/s.json")
    assert only_file(tmp_path) == ["a-file", "in.parquet"]  # nothing scored, nothing published


def test_a_failed_run_says_why_in_the_summary_json(model_dir, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"body": ["good"]}))
    result = score(model_dir, src, tmp_path / "out.parquet", "--summary-json", str(tmp_path / "s.json"))
    assert_clean_error(result, "no column 'text'")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["status"] == "failed" and summary["exit_code"] == 2
    assert summary["error"] == result.stderr.strip()


def test_labelled_input_needs_an_output_prefix(model_dir, tmp_path):
    """Evaluation data (SST-2, GLUE) comes with its gold `label`: the outputs take other names, the input stays."""
    table = pa.table({"text": ["a good film", "a dull film", None], "label": [1, 0, 1]})
    src = write(tmp_path / "in.parquet", table)
    refused = score(model_dir, src, tmp_path / "out.parquet")
    assert_clean_error(refused, "already has column(s) label", "--output-prefix")
    result = score(model_dir, src, tmp_path / "out.parquet", "--output-prefix", "pred_", "--logits")
    assert result.returncode == 0, result.stderr
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names == ["text", "label", "pred_label", "pred_score", "pred_probabilities", "pred_logits"]
    assert out.select(["text", "label"]).equals(table)
    plain = score(model_dir, write(tmp_path / "plain.parquet", table.drop(["label"])), tmp_path / "plain-out.parquet")
    assert plain.returncode == 0, plain.stderr
    expected = pq.read_table(tmp_path / "plain-out.parquet")
    assert out["pred_label"].equals(expected["label"]) and out["pred_probabilities"].equals(expected["probabilities"])
    assert out.schema.field("pred_score").metadata == expected.schema.field("score").metadata
