"""`--ray-address` against a cluster secured as the README says: token auth, loopback only.

The head is started here with `ray start --head --block` in a session of its own and stopped by it; the runs
that join it must bring the cluster's token through Ray's own environment variables or token file.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.cli import assert_clean_error, score, write
from tests.support.processes import is_loopback, session_members, stop_session, without_ray_auth

pytest.importorskip("ray")

HEAD_START_SECONDS = 90
RUN_TIMEOUT = 240
FAIL_FAST_SECONDS = 30  # a refused token must end in seconds: Ray's own retries alone take 20 s, a hang forever


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A one-node cluster with token auth on loopback, started as the README shows; yields (address, token)."""
    token = secrets.token_urlsafe(32)
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="rayhead-", dir="/tmp"))  # Unix socket paths must stay short
    log = tmp_path_factory.mktemp("head") / "head.log"
    env = {
        **without_ray_auth(os.environ),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]  # fmt: skip
    with open(log, "w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + HEAD_START_SECONDS
        while "Ray runtime started" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield {"address": f"127.0.0.1:{port}", "token": token, "session": process.pid}
    finally:
        stop_session(process.pid)
        leftovers = session_members(process.pid)
        subprocess.run(["rm", "-rf", str(temp_dir)], check=False)
        assert not leftovers, f"Ray processes outlived the test: {leftovers}"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    rows = 300
    table = pa.table({"id": range(rows), "text": [None if i % 7 == 3 else f"a fine film, take {i}" for i in range(rows)]})
    return write(tmp_path_factory.mktemp("in") / "in.parquet", table)


def test_head_listens_on_loopback_only(head):
    listening = []
    for process in session_members(head["session"]):
        listening += [(process.name(), c.laddr) for c in process.net_connections("inet") if c.status == "LISTEN"]
    assert listening and all(is_loopback(address.ip) for _, address in listening), listening


def test_joins_with_the_token_from_the_environment(head, model_dir, source, tmp_path):
    env = {**without_ray_auth(os.environ), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": head["token"]}
    out = tmp_path / "out.parquet"
    result = score(model_dir, source, out, "--engine", "ray", "--ray-address", head["address"], env=env, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert head["token"] not in result.stdout + result.stderr
    table = pq.read_table(out)
    assert sorted(table["id"].to_pylist()) == list(range(300))
    assert table["label"].null_count == sum(1 for i in range(300) if i % 7 == 3)


def test_joins_through_ray_address_and_a_token_file(head, model_dir, source, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(head["token"])
    token_file.chmod(0o600)
    env = {
        **without_ray_auth(os.environ),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_file),
        "RAY_ADDRESS": head["address"],
    }
    out = tmp_path / "out.parquet"
    result = score(model_dir, source, out, "--engine", "ray", env=env, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert pq.read_metadata(out).num_rows == 300


@pytest.mark.parametrize(
    "auth, expected",
    [
        ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}, "refused the token"),
        ({}, "requires token authentication: set RAY_AUTH_MODE=token"),
    ],
    ids=["wrong-token", "no-token"],
)
def test_a_wrong_or_missing_token_is_one_error_line_in_seconds(head, model_dir, source, tmp_path, auth, expected):
    env = {**without_ray_auth(os.environ), **auth, "HOME": str(tmp_path)}  # no ~/.ray/auth_token to fall back on
    started = time.perf_counter()
    result = score(model_dir, source, tmp_path / "out.parquet", "--engine", "ray", "--ray-address", head["address"], env=env, timeout=RUN_TIMEOUT)
    assert_clean_error(result, head["address"], expected)
    assert time.perf_counter() - started < FAIL_FAST_SECONDS
    assert not (tmp_path / "out.parquet").exists()


def test_nothing_listening_is_one_error_line(model_dir, source, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    result = score(model_dir, source, tmp_path / "out.parquet", "--engine", "ray", "--ray-address", address, timeout=RUN_TIMEOUT)
    assert_clean_error(result, f"cannot reach the Ray cluster at {address}", "--ray-address")
