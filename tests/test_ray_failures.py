"""Lost workers on a real Ray cluster: a scoring actor SIGKILLed mid-run, a node removed mid-run.

Either way the run must complete with every input row exactly once (Ray restarts the actor and retries its unit,
which rewrites its own part file). The input is big enough that several units are still to do when the failure
is injected: it is injected once the first unit's part file exists.
"""

from __future__ import annotations

import json
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

from tests.support.cli import ROOT, write
from tests.support.processes import run_watched, session_members, stop_session
from tests.support.processes import without_ray_auth

pytest.importorskip("ray")

ROWS = 60_000
KILL_EVENTS = 4  # each kills both actors: 4 deaths each, past the 3 restarts an actor used to get
RUN_TIMEOUT = 300
ACTOR = "ray::ScoringActor"


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
    from runtime.scoring.scorer import Scorer

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


def parts_written(out: Path) -> int:
    return sum(1 for staging in out.parent.glob(f".{out.name}.tmp-*") for _ in staging.glob("*.parquet"))


def test_many_killed_scoring_actors_cost_time_not_rows(model_dir, source, tmp_path):
    """Every actor killed again and again (more often than a fixed restart budget per actor) never fails the run."""
    out = tmp_path / "out.parquet"
    killed, seen_actors, events = [], set(), []

    def kill_every_actor_after_each_unit(members: list[psutil.Process]) -> None:
        actors = actor_pids(members)
        seen_actors.update(actors)
        # once per finished unit, so the run still advances; the actors alive now, whatever they were doing
        if len(actors) == 2 and len(events) < KILL_EVENTS and parts_written(out) > len(events):
            for victim in actors:
                os.kill(victim, 9)
                killed.append(victim)
            events.append(len(actors))

    command = [
        sys.executable, "-m", "runtime.score", str(source), str(out), "--model", str(model_dir), "--engine", "ray",
        "--actors", "2",
    ]  # fmt: skip
    result, seen = run_watched(command, cwd=ROOT, env=None, timeout=RUN_TIMEOUT, act=kill_every_actor_after_each_unit)
    assert len(events) == KILL_EVENTS, f"the run ended after {len(events)} kill events"
    assert result.returncode == 0, result.stderr
    # Ray's reports of the dead workers and the retries stay out of the output: one summary line, nothing else
    assert result.stderr == "" and len(result.stdout.splitlines()) == 1, result.stdout + result.stderr
    assert len(seen_actors) >= 2 + len(killed), "Ray started new actors in place of the killed ones"
    assert_every_row_once(out, model_dir, source)
    assert seen.leftovers == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.parquet"]


def test_sigterm_under_ray_is_one_line_and_no_output_after_progress_lines(model_dir, source, tmp_path):
    """Airflow and Kubernetes stop a task with SIGTERM: 130 and one line, as SIGINT; progress reached stderr."""
    out = tmp_path / "out.parquet"
    signalled = []

    def terminate_mid_run(members: list[psutil.Process]) -> None:
        if not signalled and parts_written(out) >= 1:
            os.kill(os.getsid(members[0].pid), 15)  # the CLI leads its session: signal it alone
            signalled.append(True)

    command = [
        sys.executable, "-m", "runtime.score", str(source), str(out), "--model", str(model_dir), "--engine", "ray",
        "--progress-every", "0.5",
    ]  # fmt: skip
    result, seen = run_watched(command, cwd=ROOT, env=None, timeout=RUN_TIMEOUT, act=terminate_mid_run)
    assert signalled, "the run ended before it could be stopped"
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 130, result.stderr
    assert lines[-1].startswith("error: interrupted"), result.stderr
    assert any(line.startswith("progress: ") for line in lines[:-1]), result.stderr
    assert all(line.startswith("progress: ") for line in lines[:-1]), result.stderr  # no crash dump, no traceback
    assert result.stdout == ""
    assert seen.leftovers == []
    assert list(tmp_path.iterdir()) == []


# The CLI in-process (Ray is imported inside, after the CLI set its environment), then what the process read in all.
DRIVER_PROBE = """
import json, os, sys
import psutil
from runtime.score import main
code = main(sys.argv[1:])
ray_vars = sorted(name for name in os.environ if name.startswith(("RAY_AUTH", "RAY_ENABLE_WINDOWS")))
print(json.dumps({"code": code, "ray_vars": ray_vars, "read_chars": psutil.Process().io_counters().read_chars}))
"""


def test_the_driver_reads_no_output_rows_and_leaves_no_token_behind(model_dir, tmp_path):
    # 330 MB of incompressible bytes that the output carries through; the driver's own reads (Python modules, Ray's
    # included, the model and the input's footer) came to 65 MB on a run with no ballast
    rows, ballast = 10_000, 32768
    payload = pa.array([os.urandom(ballast) for _ in range(rows)], pa.binary())
    texts = [f"{i} a film that is good" for i in range(rows)]
    source = write(tmp_path / "in.parquet", pa.table({"text": texts, "payload": payload}), row_group_size=2000)
    out = tmp_path / "out.parquet"
    command = [sys.executable, "-c", DRIVER_PROBE, str(source), str(out), "--model", str(model_dir), "--engine", "ray"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    result, seen = run_watched(command, cwd=ROOT, env=env, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["code"] == 0 and probe["ray_vars"] == []
    assert pq.read_metadata(out).num_rows == rows
    assert probe["read_chars"] < rows * ballast / 3, probe
    assert seen.leftovers == []


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
        [sys.executable, "-m", "tests.support.ray_two_nodes", temp_dir],
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
