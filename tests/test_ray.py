"""`--engine ray` on a real local Ray cluster: same rows and answers as the local engine, clean failures.

Ray takes several seconds to start, so one module-scoped run serves most assertions; every Ray run has a
subprocess timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.cli import ROOT, assert_clean_error, corrupt_middle, score as run_cli, write

from tests.support.corpus import SST2_DEV
from tests.support.processes import is_loopback, run_watched

pytest.importorskip("ray")

RAY_TIMEOUT = 240  # seconds; a healthy run takes ~10-30 s on 2 busy cores


def score(model_dir: Path, src: Path, dst: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli(model_dir, src, dst, *extra, env=env, timeout=RAY_TIMEOUT)


def orphaned_ray_workers() -> list[int]:
    """Processes still writing logs into a removed private Ray session dir: workers that outlived their run."""
    orphans = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            targets = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if any("/ray-score-" in target and target.endswith("(deleted)") for target in targets):
            orphans.append(int(entry.name))
    return orphans


def sst2_texts() -> list[str]:
    lines = SST2_DEV.read_text().splitlines()[1:] if SST2_DEV.exists() else []
    return [line.split("\t")[0] for line in lines] or [f"a film that is good number {i}" for i in range(100)]


@pytest.fixture(scope="module")
def scored(model_dir, tmp_path_factory):
    """One directory (nested, nulls, extra columns, two schemas) scored by both engines."""
    base = tmp_path_factory.mktemp("ray")
    texts = sst2_texts()
    in_dir = base / "in"
    next_id = 0
    # "day=.../big.parquet": a partitioned layout, and a file big enough to be cut into units and merged back
    layout = [("a.parquet", 400), ("b.parquet", 250), ("nested/c.parquet", 300), ("nested/d.parquet", 1)]
    for name, rows in [*layout, ("day=2024-01-02/big.parquet", 17000)]:
        ids = list(range(next_id, next_id + rows))
        table = pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "text": [None if i % 9 == 4 else texts[i % len(texts)] for i in ids],
                "stars": pa.array([i % 5 for i in ids], pa.int8()),
                "genre": pa.array([["drama", "comedy", "news"][i % 3] for i in ids]).dictionary_encode(),
            }
        )
        if name == "nested/d.parquet":  # files may differ in schema: each output keeps its input's
            table = table.select(["text", "id"])
        write(in_dir / name, table, row_group_size=128)
        next_id += rows
    ray_out, local_out = base / "out-ray", base / "out-local"
    home = tmp_path_factory.mktemp("home")  # where Ray 2.60 would save a token it generates (~/.ray/auth_token)
    started = time.perf_counter()
    ray_run, seen = run_watched(
        [sys.executable, "-m", "runtime.score", str(in_dir), str(ray_out), "--model", str(model_dir), "--engine", "ray"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}, "HOME": str(home)},
        timeout=RAY_TIMEOUT,
    )
    seconds = time.perf_counter() - started
    local_run = score(model_dir, in_dir, local_out)
    assert local_run.returncode == 0, local_run.stderr
    return {
        "base": base,
        "in": in_dir,
        "rows": next_id,
        "ray": ray_run,
        "ray_out": ray_out,
        "local_out": local_out,
        "seconds": seconds,
        "seen": seen,
        "home": home,
    }


def test_private_instance_listens_on_loopback_only(scored):
    seen = scored["seen"]
    # the run was watched: the GCS, the raylet and the scoring workers all showed their sockets
    assert {"gcs_server", "raylet"} <= seen.names() and any(name.startswith("ray::") for name in seen.names()), seen
    exposed = sorted((name, host, port) for name, host, port in seen.listening if not is_loopback(host))
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_private_instance_uses_a_fresh_token_that_is_never_shown(scored):
    seen = scored["seen"]
    assert {mode for _, _, mode in seen.auth_modes} == {"token"}, f"GCS and raylet modes: {seen.auth_modes}"
    assert len(seen.tokens) == 1, "every Ray process of the run shares one token, from its environment"
    token = next(iter(seen.tokens))
    assert len(token) >= 32
    assert seen.log_texts, "the run's Ray logs were read while it ran"
    places = {"stdout": scored["ray"].stdout, "stderr": scored["ray"].stderr, **{str(k): v for k, v in seen.log_texts.items()}}
    places.update({f"command line {i}": line for i, line in enumerate(seen.command_lines)})
    assert not [place for place, text in places.items() if token in text]
    assert not (scored["home"] / ".ray").exists(), "no token file was written into the user's home"


def test_no_ray_process_outlives_the_run(scored):
    assert scored["seen"].leftovers == []


def test_ray_run_succeeds_with_one_quiet_summary_line(scored):
    result = scored["ray"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # Ray's own logging, progress bars and C++ chatter stay out
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    nulls = sum(1 for i in range(scored["rows"]) if i % 9 == 4)
    assert lines[0].startswith(f"scored {scored['rows']} rows in 5 file(s) ({nulls} null, 0 truncated"), lines[0]


def relative_files(directory: Path) -> list[Path]:
    return sorted(path.relative_to(directory) for path in directory.rglob("*") if path.is_file())


def test_ray_keeps_the_layout_one_output_per_input(scored):
    inputs = relative_files(scored["in"])
    assert relative_files(scored["ray_out"]) == relative_files(scored["local_out"]) == inputs
    # no staging dir, temp or part file left anywhere; Ray's session files lived in a private dir, now gone
    assert sorted(path.name for path in scored["base"].iterdir()) == ["in", "out-local", "out-ray"]
    assert not (ROOT / "ray").exists() and not list(ROOT.glob("session_*"))


def test_ray_equals_local_row_for_row_in_each_file(scored):
    for name in relative_files(scored["in"]):
        ray_table = pq.read_table(scored["ray_out"] / name)
        local_table = pq.read_table(scored["local_out"] / name)
        inputs = pq.read_table(scored["in"] / name)
        # every row exactly once, in the input's order, every input column unchanged (types included)
        assert ray_table.select(inputs.column_names).equals(inputs), name
        assert ray_table.schema == local_table.schema
        assert ray_table["label"].to_pylist() == local_table["label"].to_pylist()
        assert ray_table["label"].null_count == inputs["text"].null_count
        present = np.flatnonzero(ray_table["score"].is_valid().to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(
            np.stack(ray_table["probabilities"].to_numpy(zero_copy_only=False)[present]),
            np.stack(local_table["probabilities"].to_numpy(zero_copy_only=False)[present]),
            atol=1e-5,
        )


def test_ray_writes_the_local_engines_record(scored):
    for name in relative_files(scored["in"]):
        ray_record = json.loads(pq.read_metadata(scored["ray_out"] / name).metadata[b"runtime.score"])
        local_record = json.loads(pq.read_metadata(scored["local_out"] / name).metadata[b"runtime.score"])
        assert ray_record.keys() == local_record.keys()
        for key in ("rows", "null_rows", "truncated_rows", "input", "model_identity", "labels", "text_column"):
            assert ray_record[key] == local_record[key], (name, key)
        assert ray_record["rows"] == pq.read_metadata(scored["in"] / name).num_rows
        assert ray_record["started_at"] <= ray_record["finished_at"]


def test_resume_on_ray_skips_finished_files_only(scored, model_dir):
    out = scored["ray_out"]
    again = score(model_dir, scored["in"], out, "--engine", "ray", "--resume")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("scored 0 rows in 0 file(s), 5 file(s) already done"), again.stdout
    redo = Path("nested/c.parquet")
    before = {name: (out / name).stat().st_mtime_ns for name in relative_files(out) if name != redo}
    (out / redo).unlink()
    again = score(model_dir, scored["in"], out, "--engine", "ray", "--resume")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("scored 300 rows in 1 file(s), 4 file(s) already done"), again.stdout
    assert pq.read_table(out / redo).select(["id", "label"]).equals(pq.read_table(scored["local_out"] / redo).select(["id", "label"]))
    assert {name: (out / name).stat().st_mtime_ns for name in relative_files(out) if name != redo} == before


def test_text_column_of_wrong_type_fails_before_ray_starts(model_dir, tmp_path):
    write(tmp_path / "in" / "good.parquet", pa.table({"id": [1, 2], "text": ["fine", "bad"]}))
    write(tmp_path / "in" / "sub" / "ints.parquet", pa.table({"id": [3, 4], "text": [1, 2]}))
    started = time.perf_counter()
    result = score(model_dir, tmp_path / "in", tmp_path / "out", "--engine", "ray")
    assert_clean_error(result, "ints.parquet", "'text'", "type int64")
    assert not (tmp_path / "out").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in"]
    assert time.perf_counter() - started < 60


def test_corrupt_page_on_the_cluster_is_one_error_line_and_no_out(model_dir, tmp_path):
    """A valid footer passes the driver's checks; the read task fails on the cluster and must not hang."""
    write(tmp_path / "in" / "good.parquet", pa.table({"id": [1, 2], "text": ["fine", None]}))
    src = write(
        tmp_path / "in" / "broken.parquet",
        pa.table({"id": range(20000), "text": [f"text number {i} " * 5 for i in range(20000)]}),
        row_group_size=5000,
        compression="zstd",
    )
    corrupt_middle(src)
    (tmp_path / "out").mkdir()  # yesterday's output survives a failed run
    (tmp_path / "out" / "old.parquet").write_bytes(b"yesterday")
    result = score(model_dir, tmp_path / "in", tmp_path / "out", "--engine", "ray")
    assert_clean_error(result, "broken.parquet", "corrupt")
    assert not orphaned_ray_workers()
    # each file appears whole or not at all: good.parquet may be done, broken.parquet never is
    assert {path.name for path in (tmp_path / "out").iterdir()} <= {"old.parquet", "good.parquet"}
    assert (tmp_path / "out" / "old.parquet").read_bytes() == b"yesterday"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in", "out"]


def test_missing_ray_names_the_extra(model_dir, tmp_path):
    fake = tmp_path / "fake"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    src = write(tmp_path / "in.parquet", pa.table({"text": ["fine"]}))
    env = {**os.environ, "PYTHONPATH": str(fake)}
    result = score(model_dir, src, tmp_path / "out.parquet", "--engine", "ray", env=env)
    assert_clean_error(result, "pip install '.[ray]'")
    assert not (tmp_path / "out.parquet").exists()


# --- pieces that need no cluster ---------------------------------------------------------------------------


def test_pool_plan_leaves_room_for_restarted_actors():
    from runtime.engines.ray_engine.plan import pool_plan

    actors, threads, reserve = pool_plan(2, None, None)
    assert (actors, threads) == (2, 1) and actors * reserve < 2
    actors, threads, reserve = pool_plan(2, 1, None)
    assert (actors, threads) == (1, 2) and reserve < 2
    actors, threads, reserve = pool_plan(16, 4, 2)
    assert (actors, threads) == (4, 2) and actors * reserve <= 8
    actors, threads, reserve = pool_plan(2, 8, None)
    assert (actors, threads) == (8, 1) and actors * reserve < 2


def test_an_error_carried_only_as_text_is_recovered_with_its_kind():
    from runtime.engines.ray_engine.failures import as_scorer_error
    from runtime.errors import ModelError

    wrapped = RuntimeError(
        "The actor died because of an error raised in its creation task\n  File x\n"
        "runtime.errors.ModelError: model dir /m differs on node n2 (identity abc, the driver has def)"
    )
    error = as_scorer_error(wrapped)
    assert isinstance(error, ModelError) and str(error).startswith("model dir /m differs on node n2")
    assert as_scorer_error(RuntimeError("some bug")) is None
    assert as_scorer_error(RuntimeError("runtime.errors.first_line: not an error kind")) is None


@pytest.mark.parametrize("rows, actors", [(1, 2), (17000, 2), (500_000, 3), (3_000_000, 64)])
def test_units_cover_every_row_exactly_once(rows, actors, tmp_path):
    from runtime.engines.ray_engine.plan import MAX_UNIT_ROWS, MIN_UNIT_ROWS, plan_units
    from runtime.files.storage import Location

    names = [("small.parquet", 5), ("big.parquet", rows), ("empty.parquet", 0)]
    sources = [(Location.local(tmp_path / name), count) for name, count in names]
    units = plan_units(sources, actors, Location.local(tmp_path / "staging"))
    assert len({unit.part.path for unit in units}) == len(units)
    for index, (source, count) in enumerate(sources):
        mine = [unit for unit in units if unit.index == index]
        assert all(unit.source == source for unit in mine)
        if len(mine) == 1:
            assert mine[0].rows is None  # read whole
            continue
        covered = [row for unit in mine for row in unit.rows]
        assert covered == list(range(count))
        assert all(MIN_UNIT_ROWS // 2 <= len(unit.rows) <= MAX_UNIT_ROWS * 1.5 for unit in mine)
    if rows >= 500_000:
        assert len(units) >= actors  # every actor gets work


@pytest.mark.parametrize("row_group_size", [1000, 3000, 7000])
@pytest.mark.parametrize("window", [256, 8192])
def test_reading_a_slice_of_rows_yields_exactly_those_rows(tmp_path, row_group_size, window):
    from runtime.files.parquet_io import read_batches

    path = write(tmp_path / "in.parquet", pa.table({"id": range(7000)}), row_group_size=row_group_size)
    for rows in [range(0, 7000), range(0, 1), range(2999, 3001), range(1234, 5678), range(6999, 7000)]:
        batches = list(read_batches(pq.ParquetFile(path), path, window, rows))
        assert [i for batch in batches for i in batch.column("id").to_pylist()] == list(rows)
        assert all(0 < batch.num_rows <= window for batch in batches)


def test_s3_in_out_and_model_through_ray(s3, model_dir, tmp_path):
    """IN, OUT and the model on an S3-protocol server: actors read, write and fetch the model through the store."""
    from tests.support.s3_server import objects, read_s3, reviews, upload_file, without_record

    bucket = s3.new_bucket()
    for path in sorted(model_dir.iterdir()):
        upload_file(s3, bucket, f"models/tiny/{path.name}", path)
    layout = ["day=1/part-0.parquet", "day=2/part-0.parquet"]
    for number, relative in enumerate(layout):
        upload_file(s3, bucket, f"in/{relative}", write(tmp_path / "in" / relative, reviews(300, start=300 * number)))
    env = s3.env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    model = f"s3://{bucket}/models/tiny/"
    result = score(model, f"s3://{bucket}/in/", f"s3://{bucket}/out/", "--engine", "ray", env=env)
    assert result.returncode == 0, result.stderr
    assert score(model_dir, tmp_path / "in", tmp_path / "out").returncode == 0
    assert [key for key in objects(s3, bucket) if key.startswith("out/")] == [f"out/{name}" for name in layout]
    assert not [key for key in objects(s3, bucket) if ".tmp-" in key]  # no staging key left
    for relative in layout:
        expected = without_record(pq.read_table(tmp_path / "out" / relative))
        assert without_record(read_s3(s3, bucket, f"out/{relative}")).equals(expected)


def test_a_row_count_mismatch_publishes_nothing(model_dir, tmp_path):
    from runtime.files.parquet_io import OutputOptions
    from runtime.engines.file_scoring import score_file
    from runtime.engines.progress import Progress
    from runtime.engines.ray_engine.plan import Publication
    from runtime.engines.ray_engine.publish import RowCountMismatch, merge_parts
    from runtime.files.parquet_io import open_input
    from runtime.files.storage import Location
    from runtime.scoring.scorer import Scorer

    source = open_input(Location.local(write(tmp_path / "in.parquet", pa.table({"text": ["good", "bad"] * 50}))), OutputOptions())
    part = Location.local(tmp_path / "part.parquet")
    score_file(Scorer(model_dir, threads=1), source, part, OutputOptions(), Progress(0, 0.0), rows=range(0, 60))
    out = Location.local(tmp_path / "out.parquet")
    with pytest.raises(RowCountMismatch, match="holds 100 rows but its parts hold 60; not published"):
        merge_parts(Publication(0, (part,), out, rows=100))
    assert not out.exists()
    record = merge_parts(Publication(0, (part,), out, rows=60))
    assert record.counts.rows == 60 and pq.read_table(out.path).num_rows == 60
