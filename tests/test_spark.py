"""Spark, for real: `score_dataframe` and `--engine spark` give the local engine's rows and values.

One local[2] SparkSession serves the DataFrame tests and one standalone cluster (a master and a worker on
127.0.0.1, in their own session, stopped by it) the cluster tests, so the module stays within a few minutes.
Every CLI run has a timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.cli import ROOT, assert_clean_error, run_score, write
from tests.support.models import export_model
from tests.support.processes import is_loopback, run_watched

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17+ and no `java` is on PATH")
pytest.importorskip("pyspark")

from pyspark.sql.pandas.types import from_arrow_type  # noqa: E402

from runtime.engines.spark_engine.session import spark_session  # noqa: E402
from runtime.errors import InputError  # noqa: E402
from runtime.spark import score_dataframe  # noqa: E402
from tests.support.spark_cluster import standalone_cluster  # noqa: E402

SPARK_TIMEOUT = 300  # seconds; a healthy CLI run takes ~15-30 s on 2 busy cores
TOLERANCE = 1e-5  # batches are composed differently, so padding and summation order differ
# Spark's Python workers import `runtime` from this checkout, whichever one the venv's editable install names.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TEXTS = ["a gripping, beautiful film", "dull and far too long", "I laughed", "not my kind of movie", "wow"]


def table_of(rows: int, start: int = 0) -> pa.Table:
    """ids, texts with nulls and repeats (deduplicated within a batch), and a pair column."""
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "text": [None if i % 7 == 3 else f"{TEXTS[i % 5]} {i % 40}" for i in ids],
            "pair": [None if i % 11 == 5 else TEXTS[(i + 2) % 5] for i in ids],
            "stars": pa.array([i % 5 for i in ids], pa.int32()),
        }
    )


def long_table(rows: int) -> pa.Table:
    """Texts past the model's 512 tokens, so chunk mode makes several windows."""
    return pa.table(
        {"id": pa.array(range(rows), pa.int64()), "text": [" ".join([TEXTS[i % 5]] * (30 + 60 * (i % 4))) for i in range(rows)]}
    )


def local_engine(model: Path, table: pa.Table, base: Path, *flags: str) -> pa.Table:
    """What the local engine writes for `table`, sorted by id."""
    src, out = write(base / "local-in.parquet", table), base / "local-out.parquet"
    result = run_score(str(src), str(out), "--model", str(model), *flags)
    assert result.returncode == 0, result.stderr
    return pq.read_table(out).sort_by("id")


def assert_same_rows(spark_table: pa.Table, local: pa.Table) -> None:
    """Row for row: every column equal, float columns within TOLERANCE, nulls in the same places."""
    spark_table = spark_table.sort_by("id")
    assert spark_table.column_names == local.column_names
    assert spark_table.num_rows == local.num_rows
    for name in local.column_names:
        mine, theirs = spark_table.column(name).to_pylist(), local.column(name).to_pylist()
        if name.removeprefix("pred_") in ("score", "probabilities", "logits"):
            assert [m is None for m in mine] == [t is None for t in theirs], name
            present = [(m, t) for m, t in zip(mine, theirs) if m is not None]
            if present:
                mine_values, their_values = (np.array([np.atleast_1d(v) for v in side], dtype=np.float64) for side in zip(*present))
                assert np.abs(mine_values - their_values).max() <= TOLERANCE, name
        else:
            assert mine == theirs, name


@pytest.fixture(scope="module")
def spark():
    """One local[2] session, started as the CLI starts its own (loopback, UI off)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)
    try:
        with spark_session("local[2]") as session:
            session.conf.set("spark.sql.shuffle.partitions", "2")
            session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "64")  # several batches per task
            yield session
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def int8_model(models, tmp_path_factory) -> Path:
    checkpoint = models["distilbert"][0]
    return export_model(checkpoint, tmp_path_factory.mktemp("int8") / "model", "--quantize", "int8")


CASES = {
    "nulls-logits-dedup": ("distilbert", table_of(300), {"logits": True}, ["--logits"]),
    "pairs-sigmoid": (
        "bert",
        table_of(200),
        {"text_pair_column": "pair", "function_to_apply": "sigmoid", "output_prefix": "pred_"},
        ["--text-pair-column", "pair", "--function-to-apply", "sigmoid", "--output-prefix", "pred_"],
    ),
    "chunk": (
        "distilbert",
        long_table(24),
        {"long_text": "chunk", "chunk_stride": 32, "chunk_aggregate": "max", "max_chunks": 3},
        ["--long-text", "chunk", "--chunk-stride", "32", "--chunk-aggregate", "max", "--max-chunks", "3"],
    ),
    # dynamic int8 quantizes activations with each model batch's range, so values depend on the batch's rows
    # (~5e-4 on this model): one row per model batch on both sides makes them comparable at 1e-5
    "int8": ("int8", table_of(120), {"max_batch_rows": 1}, ["--batch-size", "1"]),
}


@pytest.mark.parametrize("case", CASES)
def test_score_dataframe_equals_the_local_engine(case, spark, models, int8_model, tmp_path):
    kind, table, options, flags = CASES[case]
    model = int8_model if kind == "int8" else models[kind][1]
    local = local_engine(model, table, tmp_path, *flags)
    df = spark.createDataFrame(table).repartition(3)  # several tasks, batches composed unlike the local ones
    scored = score_dataframe(df, str(model), **options)
    # the declared types are the local engine's, converted: one definition of the output columns
    added = local.schema.names[table.num_columns :]
    assert [(f.name, f.dataType) for f in scored.schema.fields[table.num_columns :]] == [
        (name, from_arrow_type(local.schema.field(name).type)) for name in added
    ]
    assert_same_rows(scored.toArrow(), local)


@pytest.mark.parametrize(
    "problem, call, fragment",
    [
        ("missing column", lambda df, model: score_dataframe(df, model, text_column="body"), "no column 'body'"),
        ("not a string", lambda df, model: score_dataframe(df, model, text_column="stars"), "not a string type"),
        ("pair not a string", lambda df, model: score_dataframe(df, model, text_pair_column="id"), "text_pair_column="),
        ("clash", lambda df, model: score_dataframe(df.withColumnRenamed("stars", "label"), model), "output_prefix='pred_'"),
        ("chunked pairs", lambda df, model: score_dataframe(df, model, text_pair_column="pair", long_text="chunk"), "single texts"),
        ("no model", lambda df, model: score_dataframe(df, str(Path(model).parent / "absent")), "absent"),
    ],
)
def test_bad_input_fails_on_the_driver_before_any_task(problem, call, fragment, spark, models):
    df = spark.createDataFrame(table_of(10))
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        call(df, str(models["distilbert"][1]))
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs_before, "a Spark job ran"


def test_a_model_dir_that_fails_verification_fails_on_the_driver(spark, models, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(models["distilbert"][1], broken)
    with open(broken / "model.onnx", "ab") as onnx:
        onnx.write(b"\0")
    with pytest.raises(InputError):
        score_dataframe(spark.createDataFrame(table_of(10)), str(broken))


# --- the CLI ---------------------------------------------------------------------------------------------


def spark_cli(model: Path, src: Path, out: Path, *flags: str, env: dict | None = None):
    return run_score(str(src), str(out), "--model", str(model), "--engine", "spark", *flags, env=env or ENV, timeout=SPARK_TIMEOUT)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A directory of two files (one nested, one in a partition-style directory) and a hidden file to skip."""
    base = tmp_path_factory.mktemp("dataset")
    write(base / "in" / "a.parquet", table_of(1500), row_group_size=250)
    write(base / "in" / "day=2024-01-02" / "b.parquet", table_of(900, start=1500), row_group_size=300)
    write(base / "in" / "_hidden.parquet", table_of(5, start=10_000))
    return base / "in"


@pytest.fixture(scope="module")
def local_dataset(models, dataset, tmp_path_factory) -> pa.Table:
    out = tmp_path_factory.mktemp("local") / "out"
    result = run_score(str(dataset), str(out), "--model", str(models["distilbert"][1]), "--logits")
    assert result.returncode == 0, result.stderr
    return pa.concat_tables([pq.read_table(path) for path in sorted(out.rglob("*.parquet"))]).sort_by("id")


@pytest.fixture(scope="module")
def local2_run(models, dataset, tmp_path_factory):
    """The CLI on local[2], watched: every socket its processes listen on while it runs."""
    base = tmp_path_factory.mktemp("spark-cli")
    out, summary = base / "out", base / "summary.json"
    command = [
        sys.executable, "-m", "runtime.score", str(dataset), str(out), "--model", str(models["distilbert"][1]),
        "--engine", "spark", "--spark-master", "local[2]", "--logits", "--progress-every", "1",
        "--summary-json", str(summary),
    ]  # fmt: skip
    result, seen = run_watched(command, cwd=ROOT, env=ENV, timeout=SPARK_TIMEOUT)
    return {"result": result, "seen": seen, "out": out, "summary": summary}


def read_dataset(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(path) for path in sorted(out.glob("part-*.parquet"))])


def test_cli_on_local2_writes_the_local_engines_rows_as_a_dataset(local2_run, local_dataset):
    result, out = local2_run["result"], local2_run["out"]
    assert result.returncode == 0, result.stderr
    assert (out / "_SUCCESS").exists()
    assert len(list(out.glob("part-*.parquet"))) >= 2, "the input was cut into several tasks"
    assert_same_rows(read_dataset(out), local_dataset)
    lines = result.stdout.strip().splitlines()
    nulls = sum(1 for i in range(2400) if i % 7 == 3)
    assert len(lines) == 1 and lines[0].startswith("scored 2400 rows in 2 file(s), 1 hidden file(s) ignored"), lines
    assert f"({nulls} null, 0 truncated" in lines[0] and "deduplicated" in lines[0]


def test_cli_record_and_summary(local2_run, models):
    out, summary = local2_run["out"], json.loads(local2_run["summary"].read_text())
    record = json.loads((out / "_runtime.score.json").read_text())
    assert record["rows"] == summary["rows"] == 2400 and record["finished_at"]
    assert record["model_identity"] == summary["model_identity"] == json.loads(
        (models["distilbert"][1] / "manifest.json").read_text()
    )["identity"]
    assert record["logits"] is True and record["engine"] == "spark" == summary["engine"]
    assert len(record["input_identity"]["files"]) == 2 and record["spark"]["master"] == "local[2]"
    assert record["versions"]["runtime"]["onnxruntime"]
    # Spark and pyarrow readers skip the record: it is hidden by its underscore
    assert pq.read_table(out).num_rows == 2400


def test_cli_progress_lines_and_a_quiet_stderr(local2_run):
    stderr = local2_run["result"].stderr.strip().splitlines()
    assert stderr and all(line.startswith("progress: ") for line in stderr), stderr  # no JVM or pyspark chatter
    assert stderr[-1].startswith("progress: ") and "/2,400 rows" in stderr[-1]


def test_nothing_listens_beyond_loopback(local2_run):
    seen = local2_run["seen"]
    assert "java" in seen.names(), f"the JVM was seen listening: {seen.listening}"
    exposed = sorted((name, host, port) for name, host, port in seen.listening if not is_loopback(host))
    assert not exposed, f"listening beyond loopback: {exposed}"
    assert seen.leftovers == []
    print("listening during the run:", sorted(seen.listening))


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--text-column", "body"], "no column 'body'"),
        (["--text-column", "stars"], "not a string type"),
        (["--resume"], "--resume does not apply with --engine spark"),
    ],
)
def test_cli_bad_input_is_one_error_line(flags, fragment, models, dataset, tmp_path):
    result = spark_cli(models["distilbert"][1], dataset, tmp_path / "out", *flags)
    assert_clean_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_spark_master_without_engine_spark_is_refused(models, dataset, tmp_path):
    result = run_score(str(dataset), str(tmp_path / "out"), "--model", str(models["distilbert"][1]), "--spark-master", "local[2]")
    assert_clean_error(result, "--spark-master only apply with --engine spark")


def test_an_out_that_is_not_a_dataset_is_not_replaced(models, dataset, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    result = spark_cli(models["distilbert"][1], dataset, tmp_path / "out")
    assert_clean_error(result, "is not a finished Spark dataset")
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


# --- a standalone cluster on 127.0.0.1 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(tmp_path_factory.mktemp("cluster"), ROOT) as running:
        yield running


def test_standalone_cluster_gives_the_local_engines_rows(cluster, models, dataset, local_dataset, tmp_path):
    out = tmp_path / "out"
    result = spark_cli(models["distilbert"][1], dataset, out, "--logits", "--spark-master", cluster.master_url)
    assert result.returncode == 0, result.stderr
    assert (out / "_SUCCESS").exists()
    assert_same_rows(read_dataset(out), local_dataset)
    listening = set()
    for member in cluster.members():
        for connection in member.net_connections(kind="inet"):
            if connection.status == "LISTEN":
                listening.add(connection.laddr.ip)
    assert listening and all(is_loopback(host) for host in listening), listening


def test_a_killed_python_worker_leaves_every_row_exactly_once(cluster, models, tmp_path):
    """SIGKILL one of the executor's Python workers mid-task: Spark retries the task, the output is whole."""
    rows = 8000
    texts = [f"{TEXTS[i % 5]} number {i}" for i in range(rows)]  # all distinct: no repeat is scored for free
    src = write(tmp_path / "in.parquet", pa.table({"id": range(rows), "text": texts}), row_group_size=500)
    killed: list[int] = []
    done = threading.Event()

    def kill_one_worker() -> None:
        # pyspark's daemon forks a worker per task: a child of the daemon, scoring once it has run a moment
        while not done.is_set() and not killed:
            for member in cluster.members():
                try:
                    parent = member.parent()
                    busy = member.cpu_times().user > 0.5
                    if parent is not None and "pyspark.daemon" in " ".join(parent.cmdline()) and busy:
                        os.kill(member.pid, signal.SIGKILL)
                        killed.append(member.pid)
                        break
                except Exception:
                    continue
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    try:
        # small model batches make each task long enough to be caught running
        flags = ("--batch-size", "4", "--spark-master", cluster.master_url)
        result = spark_cli(models["distilbert"][1], src, tmp_path / "out", *flags)
    finally:
        done.set()
        killer.join()
    assert killed, "no Python worker was caught mid-task"
    assert "Python worker exited unexpectedly" in cluster.executor_logs(), "the task saw its worker die"
    assert result.returncode == 0, result.stderr  # so Spark retried the task
    ids = read_dataset(tmp_path / "out").column("id").to_pylist()
    assert sorted(ids) == list(range(rows)), "every row exactly once"
    assert json.loads((tmp_path / "out" / "_runtime.score.json").read_text())["rows"] == rows
