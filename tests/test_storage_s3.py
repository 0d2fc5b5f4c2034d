"""IN, OUT and --model on a real S3-protocol server (moto on 127.0.0.1): same answers as local files, --resume
over the store, atomic publish through failures, the model cache, and flat memory on a big object."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.processes import peak_rss_mb
from tests.support.s3_server import objects, read_s3, reviews, upload_file, without_record
from tests.support.cli import ROOT, assert_clean_error, corrupt_middle, score, write
from tests.support.cli import make_tree

OLD_OUT = b"yesterday's output"


def test_file_to_file_equals_the_local_run(s3, model_dir, tmp_path):
    bucket = s3.new_bucket()
    local_in = write(tmp_path / "in.parquet", reviews(300))
    source = upload_file(s3, bucket, "in/day=1/part-0.parquet", local_in)
    result = score(model_dir, source, f"s3://{bucket}/out/scored.parquet", env=s3.env())
    assert result.returncode == 0, result.stderr
    assert f"wrote s3://{bucket}/out/scored.parquet" in result.stdout
    assert score(model_dir, local_in, tmp_path / "out.parquet").returncode == 0
    remote = read_s3(s3, bucket, "out/scored.parquet")
    assert without_record(remote).equals(without_record(pq.read_table(tmp_path / "out.parquet")))
    assert json.loads(remote.schema.metadata[b"runtime.score"])["input"] == source
    assert objects(s3, bucket) == ["in/day=1/part-0.parquet", "out/scored.parquet"]  # no staging key left


def test_prefix_to_prefix_keeps_layout_and_resumes_over_the_store(s3, model_dir, tmp_path):
    bucket = s3.new_bucket()
    files = make_tree(tmp_path / "in")
    for path in files:
        upload_file(s3, bucket, f"in/{path.relative_to(tmp_path / 'in')}", path)
    s3.put(bucket, "in/day=1/_SUCCESS", b"")
    args = (f"s3://{bucket}/in/", f"s3://{bucket}/out/", "--resume")
    first = score(model_dir, *args, env=s3.env())
    assert first.returncode == 0, first.stderr
    assert "scored 153 rows in 3 file(s)" in first.stdout
    relative = ["day=1/part-0.parquet", "day=1/part-1.parquet", "day=2/part-0.parquet"]
    assert [key for key in objects(s3, bucket) if key.startswith("out/")] == [f"out/{name}" for name in relative]
    assert score(model_dir, tmp_path / "in", tmp_path / "out").returncode == 0
    for name in relative:
        assert without_record(read_s3(s3, bucket, f"out/{name}")).equals(without_record(pq.read_table(tmp_path / "out" / name)))

    etags = {key: s3.client.head_object(Bucket=bucket, Key=key)["ETag"] for key in objects(s3, bucket)}
    again = score(model_dir, *args, env=s3.env())
    assert "scored 0 rows in 0 file(s), 3 file(s) already done" in again.stdout, again.stderr
    assert {key: s3.client.head_object(Bucket=bucket, Key=key)["ETag"] for key in objects(s3, bucket)} == etags

    changed = write(tmp_path / "changed.parquet", reviews(20, start=1000))  # fewer rows, other texts
    upload_file(s3, bucket, "in/day=2/part-0.parquet", changed)
    rescored = score(model_dir, *args, env=s3.env())
    assert "scored 20 rows in 1 file(s), 2 file(s) already done" in rescored.stdout, rescored.stderr
    assert read_s3(s3, bucket, "out/day=2/part-0.parquet")["id"].to_pylist() == list(range(1000, 1020))


def test_model_from_s3_is_cached_once(s3, model_dir, tmp_path):
    bucket = s3.new_bucket()
    for path in sorted(model_dir.iterdir()):
        upload_file(s3, bucket, f"models/tiny/{path.name}", path)
    source = upload_file(s3, bucket, "in.parquet", write(tmp_path / "in.parquet", reviews(50)))
    env = s3.env(XDG_CACHE_HOME=str(tmp_path / "cache"))

    def run(number: int) -> dict:
        summary = tmp_path / f"summary-{number}.json"
        out = f"s3://{bucket}/out-{number}.parquet"
        result = score(f"s3://{bucket}/models/tiny/", source, out, "--summary-json", str(summary), env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(summary.read_text())

    first = run(1)
    assert first["model_cached"] is False
    cached = tmp_path / "cache" / "onnx-batch-scorer" / "models" / first["model_identity"]
    assert Path(first["model_dir"]) == cached and (cached / "model.onnx").is_file()
    s3.client.delete_object(Bucket=bucket, Key="models/tiny/model.onnx")  # a second run must not need it
    second = run(2)
    assert second["model_cached"] is True and second["model_dir"] == first["model_dir"]
    assert score(model_dir, tmp_path / "in.parquet", tmp_path / "local.parquet").returncode == 0
    local = without_record(pq.read_table(tmp_path / "local.parquet"))
    assert without_record(read_s3(s3, bucket, "out-2.parquet")).equals(local)


# --- failures in the middle of a run: no OUT object, an old OUT kept -----------------------------------------


def assert_out_untouched(s3, bucket: str, input_key: str) -> None:
    assert s3.read(bucket, "out.parquet") == OLD_OUT
    visible = [key for key in objects(s3, bucket) if key not in (input_key, "out.parquet")]
    assert all(key.startswith(".") and not key.endswith(".parquet") for key in visible), visible


def test_corrupt_page_deep_in_the_file(s3, model_dir, tmp_path):
    bucket = s3.new_bucket()
    table = pa.table({"text": [f"text number {i} " * 5 for i in range(20000)]})
    local = write(tmp_path / "in.parquet", table, row_group_size=5000, compression="zstd")
    corrupt_middle(local)
    source = upload_file(s3, bucket, "in.parquet", local)
    s3.put(bucket, "out.parquet", OLD_OUT)
    result = score(model_dir, source, f"s3://{bucket}/out.parquet", env=s3.env())
    assert_clean_error(result, source)
    assert_out_untouched(s3, bucket, "in.parquet")
    assert objects(s3, bucket) == ["in.parquet", "out.parquet"]


def wait_for_line(process: subprocess.Popen, prefix: str, timeout: float = 120) -> str:
    """The first stderr line starting with `prefix`: the run has reached that point."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 1)
        if ready:
            line = process.stderr.readline()
            if line.startswith(prefix):
                return line
            assert line, f"the run ended before printing {prefix!r}: {process.communicate()}"
    raise AssertionError(f"no {prefix!r} line within {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signal_mid_run(s3, model_dir, tmp_path, sig):
    bucket = s3.new_bucket()
    texts = [f"the {i}th review says the film was good and long " * 4 for i in range(120_000)]
    source = upload_file(s3, bucket, "in.parquet", write(tmp_path / "in.parquet", pa.table({"text": texts})))
    s3.put(bucket, "out.parquet", OLD_OUT)
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.score", source, f"s3://{bucket}/out.parquet", "--model", str(model_dir),
         "--threads", "1", "--progress-every", "0.2"],
        cwd=ROOT, env=s3.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_line(process, "progress: ")  # scoring and writing the staging object
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if sig == signal.SIGTERM:
        assert process.returncode == 130 and stderr.strip().startswith("error: interrupted"), stderr
        assert objects(s3, bucket) == ["in.parquet", "out.parquet"]
    assert_out_untouched(s3, bucket, "in.parquet")


def test_memory_stays_flat_on_a_big_object(s3, model_dir, tmp_path):
    """Peak RSS over a 3x bigger object grows by far less than the object: the run streams over S3.

    Both runs span several 8192-row windows (the first windows set the high-water mark); 1 KB of incompressible
    payload per row makes the object big, and repeated texts keep the scoring itself cheap.
    """
    bucket = s3.new_bucket()
    peaks, sizes = {}, {}
    for rows in (32_000, 96_000):
        payload = np.random.default_rng(rows).bytes(1024 * rows)
        table = reviews(rows).append_column("payload", pa.array([payload[i * 1024 : (i + 1) * 1024] for i in range(rows)]))
        local = write(tmp_path / f"in-{rows}.parquet", table, row_group_size=4_000)
        sizes[rows] = local.stat().st_size / 2**20
        source = upload_file(s3, bucket, f"in-{rows}.parquet", local)
        command = [sys.executable, "-m", "runtime.score", source, f"s3://{bucket}/out-{rows}.parquet", "--model", str(model_dir)]
        peaks[rows] = peak_rss_mb(command, env=s3.env())
    growth, object_growth = peaks[96_000] - peaks[32_000], sizes[96_000] - sizes[32_000]
    assert object_growth > 60
    assert growth < object_growth / 4, (peaks, sizes)
