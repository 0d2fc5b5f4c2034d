"""A standalone Spark cluster on 127.0.0.1 for the tests: one master and one worker from the pyspark package.

Both run in one session of their own (start_new_session=True), so the test stops exactly them, with the
executors and Python workers they start, by that session; nothing listens beyond loopback (SPARK_LOCAL_IP).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

from tests.support.processes import session_members, stop_session

SPARK_HOME = Path(pyspark.__file__).parent
START_TIMEOUT = 120  # seconds for the worker to register on 2 busy cores


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    master_url: str
    session: int  # the session id of the master, the worker and everything they start
    log: Path
    work: Path  # the worker's work dir: each executor's stdout and stderr

    def executor_logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.work.rglob("stderr")))

    def members(self) -> list:
        return session_members(self.session)


def cluster_env(root: Path) -> dict[str, str]:
    """The cluster's environment: loopback only, this venv's Python for executors, this checkout importable."""
    return {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(root),
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",  # else a REST server on the fixed port 6066
    }


@contextlib.contextmanager
def standalone_cluster(base: Path, root: Path, cores: int = 2) -> Iterator[Cluster]:
    """Start a master and one worker with `cores` cores; yield once the worker has registered; stop both."""
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    log = base / "cluster.log"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    script = (
        f"{spark_class} org.apache.spark.deploy.master.Master --host 127.0.0.1 --port {port} "
        f"--webui-port {free_port()} & "
        f"{spark_class} org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores {cores} --memory 2G "
        f"--work-dir {base / 'work'} --webui-port {free_port()} {url} & wait"
    )
    with open(log, "wb") as sink:
        leader = subprocess.Popen(
            ["bash", "-c", script], env=cluster_env(root), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    cluster = Cluster(url, leader.pid, log, base / "work")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Successfully registered with master" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or leader.poll() is not None:
                raise RuntimeError(f"the standalone cluster did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield cluster
    finally:
        stop_session(leader.pid)
        leader.wait(timeout=10)
