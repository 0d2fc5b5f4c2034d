"""Lost workers on a real Ray cluster: a scoring actor SIGKILLed mid-run, a node removed mid-run.

Either way the run must complete with every input row exactly once (Ray restarts the actor and retries its unit,
which rewrites its own part file). The input is big enough that several units are still to do when the failure
is injected: it is injected once the first unit's part file exists.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, write
from tests.ray_processes import run_watched, session_members, stop_session
from tests.test_ray_cluster import without_ray_auth

pytest.importorskip("ray")

ROWS = 60_000
RUN_TIMEOUT = 300
ACTOR = "ray::ScoringActor"


@pytest.fixture(scope="module")
def model_dir(models) -> Path:
    return models["distilbert"][1]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    words = ["good", "bad", "film", "plot", "dull", "great", "acting", "never", "again", "loved"]
    # distinct texts (the row number in each), so that dedup does not make the units too quick to interrupt
    texts = [None if i % 13 == 5 else f"{i} " + " ".join(words[(i * k) % 10] for k in range(1, 2 + i % 9)) for i in range(ROWS)]
    return write(tmp_path_factory.mktemp("in") / "in.parquet", pa.table({"id": range(ROWS), "text": texts}), row_group_size=5000)


def first_part_written(out: Path) -> bool:
    """A unit is done, so the run is under way with units still to do."""
    return any(part for staging in out.parent.glob(f".{out.name}.tmp-*") for part in staging.glob("*.parquet"))


def actor_pids(members: list[psutil.Process]) -> set[int]:
    pids = set()
    for process in members:
        try:
            if process.name().startswith(ACTOR):
                pids.add(process.pid)
        except psutil.Error:
            continue
    return pids


def assert_every_row_once(out: Path, model_dir: Path, source: Path) -> None:
    from runtime.model.scorer import Scorer

    table = pq.read_table(out)
    assert table["id"].to_pylist() == list(range(ROWS))  # exactly once, and in order
    assert pq.read_table(source).column("text").equals(table.column("text"))
    record = pq.read_metadata(out).metadata[b"runtime.score"]
    assert b'"rows": %d' % ROWS in record
    sample = np.arange(0, ROWS, 97)
    texts = table["text"].take(sample).to_pylist()
    scorer = Scorer(model_dir, threads=1)
    scores = scorer.score(texts)
    expected = [scorer.labels[i] if ok else None for i, ok in zip(scores.label_ids, scores.valid)]
    assert table["label"].take(sample).to_pylist() == expected


def test_a_killed_scoring_actor_costs_time_not_rows(model_dir, source, tmp_path):
    out = tmp_path / "out.parquet"
    killed, seen_actors = [], set()

    def kill_an_actor_mid_run(members: list[psutil.Process]) -> None:
        actors = actor_pids(members)
        seen_actors.update(actors)
        if actors and not killed and first_part_written(out):
            victim = min(actors)
            os.kill(victim, 9)
            killed.append(victim)

    command = [sys.executable, "-m", "runtime.score", str(source), str(out), "--model", str(model_dir), "--engine", "ray"]
    result, seen = run_watched(command, cwd=ROOT, env=None, timeout=RUN_TIMEOUT, act=kill_an_actor_mid_run)
    assert killed, "the run ended before an actor could be killed"
    assert result.returncode == 0, result.stderr
    # Ray's reports of the dead worker and the retry stay out of the output: one summary line, nothing else
    assert result.stderr == "" and len(result.stdout.splitlines()) == 1, result.stdout + result.stderr
    assert len(seen_actors) > 2, "Ray started a new actor in place of the killed one"
    assert_every_row_once(out, model_dir, source)
    assert seen.leftovers == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.parquet"]


@pytest.fixture
def two_nodes():
    """A head and a worker node (one CPU each) on loopback with token auth, in a session of their own."""
    env = {
        **without_ray_auth(os.environ),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_urlsafe(32),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    temp_dir = tempfile.mkdtemp(prefix="raynodes-", dir="/tmp")  # Unix socket paths must stay short
    env["RAY_TMPDIR"] = temp_dir  # nothing of an earlier Ray run is needed, nothing is left outside temp_dir
    nodes = subprocess.Popen(
        [sys.executable, "-m", "tests.ray_two_nodes", temp_dir],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        address = nodes.stdout.readline().strip()
        assert address, "the two-node cluster did not start"
        yield {"address": address, "env": env, "process": nodes}
    finally:
        stop_session(nodes.pid)
        leftovers = session_members(nodes.pid)
        subprocess.run(["rm", "-rf", temp_dir], check=False)
        assert not leftovers, f"Ray processes outlived the test: {leftovers}"


def test_a_lost_node_costs_time_not_rows(model_dir, source, tmp_path, two_nodes):
    out = tmp_path / "out.parquet"
    nodes = two_nodes["process"]
    removed, seen_actors = [], set()

    def remove_the_worker_node_mid_run(members: list[psutil.Process]) -> None:
        seen_actors.update(actor_pids(session_members(nodes.pid)))
        if len(seen_actors) >= 2 and not removed and first_part_written(out):
            nodes.stdin.write("remove\n")
            nodes.stdin.flush()
            removed.append(nodes.stdout.readline().strip())

    command = [
        sys.executable, "-m", "runtime.score", str(source), str(out), "--model", str(model_dir),
        "--engine", "ray", "--ray-address", two_nodes["address"],
    ]  # fmt: skip
    result, seen = run_watched(command, cwd=ROOT, env=two_nodes["env"], timeout=RUN_TIMEOUT, act=remove_the_worker_node_mid_run)
    assert removed == ["removed"], "the run ended before the worker node could be removed"
    assert result.returncode == 0, result.stderr
    assert len(seen_actors) > 2, "the lost node's actor was restarted on the head"
    assert_every_row_once(out, model_dir, source)
    assert seen.leftovers == []
