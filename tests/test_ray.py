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

from tests.conftest import ROOT, SST2_DEV, assert_clean_error, corrupt_middle, score as run_cli, write
from tests.ray_processes import is_loopback, run_watched

pytest.importorskip("ray.data")

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


def read_dir(directory: Path) -> pa.Table:
    files = sorted(directory.rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(path).replace_schema_metadata(None) for path in files])


@pytest.fixture(scope="module")
def model_dir(models) -> Path:
    return models["distilbert"][1]


@pytest.fixture(scope="module")
def scored(model_dir, tmp_path_factory):
    """One directory (nested, nulls, extra columns) scored by both engines."""
    base = tmp_path_factory.mktemp("ray")
    texts = sst2_texts()
    in_dir = base / "in"
    next_id = 0
    for name, rows in [("a.parquet", 400), ("b.parquet", 250), ("nested/c.parquet", 300), ("nested/d.parquet", 1)]:
        ids = list(range(next_id, next_id + rows))
        table = pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "text": [None if i % 9 == 4 else texts[i % len(texts)] for i in ids],
                "stars": pa.array([i % 5 for i in ids], pa.int8()),
                "genre": pa.array([["drama", "comedy", "news"][i % 3] for i in ids]).dictionary_encode(),
            }
        )
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
    assert lines[0].startswith(f"scored {scored['rows']} rows in 4 file(s) ({nulls} null, 0 truncated)"), lines[0]


def test_ray_equals_local_row_for_row(scored):
    ray_table = read_dir(scored["ray_out"]).sort_by("id")
    local_table = read_dir(scored["local_out"]).sort_by("id")
    inputs = read_dir(scored["in"]).sort_by("id")
    # no lost or duplicated rows, every input column carried through unchanged
    ids = ray_table["id"].to_pylist()
    assert len(ids) == len(set(ids)) == scored["rows"]
    assert ray_table.select(inputs.column_names).to_pylist() == inputs.to_pylist()
    assert ray_table.select(inputs.column_names).schema == inputs.schema
    assert ray_table.schema == local_table.schema
    assert ray_table["label"].to_pylist() == local_table["label"].to_pylist()
    assert ray_table["label"].null_count == inputs["text"].null_count > 0
    ray_probs = ray_table["probabilities"].to_pylist()
    local_probs = local_table["probabilities"].to_pylist()
    assert [p is None for p in ray_probs] == [p is None for p in local_probs]
    present = [i for i, p in enumerate(local_probs) if p is not None]
    np.testing.assert_allclose(
        np.array([ray_probs[i] for i in present]), np.array([local_probs[i] for i in present]), atol=1e-5
    )
    np.testing.assert_allclose(
        np.array(ray_table["score"].to_pylist(), dtype=float)[present],
        np.array(local_table["score"].to_pylist(), dtype=float)[present],
        atol=1e-5,
    )


def test_ray_output_schema_and_record(scored):
    files = sorted(scored["ray_out"].rglob("*.parquet"))
    assert files
    local_schema = pq.read_schema(next(scored["local_out"].rglob("*.parquet")))
    for path in files:
        schema = pq.read_schema(path)
        assert schema.names == ["id", "text", "stars", "genre", "label", "score", "probabilities"]
        assert schema.remove_metadata() == local_schema.remove_metadata()
        assert pa.types.is_dictionary(schema.field("genre").type)
        assert schema.field("score").type == pa.float32()
        assert schema.field("probabilities").type == pa.list_(pa.float32())
        record = json.loads(pq.read_metadata(path).metadata[b"runtime.score"])
        assert record["engine"] == "ray" and record["labels"] == ["NEGATIVE", "POSITIVE"]
        assert len(record["model_sha256"]) == 64


def test_ray_leaves_no_staging_or_temp_files(scored):
    assert sorted(path.name for path in scored["base"].iterdir()) == ["in", "out-local", "out-ray"]
    assert all(not path.name.startswith(".") for path in scored["ray_out"].rglob("*"))
    assert all(path.suffix == ".parquet" and path.is_file() for path in scored["ray_out"].iterdir())
    assert not (ROOT / "ray").exists() and not list(ROOT.glob("session_*"))


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
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["old.parquet"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in", "out"]


def test_files_with_different_schemas_are_refused_up_front(model_dir, tmp_path):
    write(tmp_path / "in" / "a.parquet", pa.table({"id": [1], "text": ["fine"]}))
    write(tmp_path / "in" / "b.parquet", pa.table({"text": ["fine"], "id": [2]}))
    result = score(model_dir, tmp_path / "in", tmp_path / "out", "--engine", "ray")
    assert_clean_error(result, "a.parquet", "b.parquet", "one schema")
    assert not (tmp_path / "out").exists()


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


def test_pool_plan_leaves_cpu_for_ray_data_tasks():
    from runtime.ray_engine import pool_plan

    actors, threads, reserve = pool_plan(2, None, None)
    assert (actors, threads) == (2, 1) and actors * reserve < 2
    actors, threads, reserve = pool_plan(2, 1, None)
    assert (actors, threads) == (1, 2) and reserve < 2
    actors, threads, reserve = pool_plan(16, 4, 2)
    assert (actors, threads) == (4, 2) and actors * reserve <= 8
    actors, threads, reserve = pool_plan(2, 8, None)
    assert (actors, threads) == (8, 1) and actors * reserve < 2


def test_an_input_error_carried_only_as_text_is_recovered(tmp_path):
    from runtime.ray_engine import as_input_error

    wrapped = RuntimeError(
        "The actor died because of an error raised in its creation task\n  File x\n"
        "runtime.errors.InputError: model dir /m differs on node n2 (sha256 abc, the driver has def)"
    )
    error = as_input_error(wrapped, tmp_path)
    assert error is not None and str(error).startswith("model dir /m differs on node n2")
    assert as_input_error(RuntimeError("some bug"), tmp_path) is None


def test_single_file_parts_merge_into_one_atomic_file(tmp_path):
    from runtime.parquet_io import output_schema
    from runtime.ray_engine import merge_into_file, publish_dir

    schema = output_schema(pa.schema([("id", pa.int64()), ("text", pa.string())]), {"engine": "ray"})
    parts = []
    for i in range(3):
        batch = pa.table(
            {
                "id": [i],
                "text": [f"t{i}"],
                "label": ["POSITIVE"],
                "score": pa.array([0.9], pa.float32()),
                "probabilities": pa.array([[0.1, 0.9]], pa.list_(pa.float32())),
            },
            schema=schema,
        )
        parts.append(write(tmp_path / "staging" / f"part-{i}.parquet", batch))
    merge_into_file(parts, tmp_path / "out.parquet", schema, {"engine": "ray", "rows": 3})
    merged = pq.read_table(tmp_path / "out.parquet")
    assert merged["id"].to_pylist() == [0, 1, 2] and merged.schema.remove_metadata() == schema.remove_metadata()
    assert json.loads(pq.read_metadata(tmp_path / "out.parquet").metadata[b"runtime.score"])["rows"] == 3

    (tmp_path / "out-dir").mkdir()
    (tmp_path / "out-dir" / "old.parquet").write_bytes(b"old")
    publish_dir(tmp_path / "staging", tmp_path / "out-dir")
    assert sorted(path.name for path in (tmp_path / "out-dir").iterdir()) == [p.name for p in parts]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out-dir", "out.parquet"]
