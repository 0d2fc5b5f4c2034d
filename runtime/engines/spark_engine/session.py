"""A SparkSession this project starts: the master asked for, nothing listening beyond loopback, no UI, quiet.

Only a session the CLI starts itself is configured here; a DataFrame user's own session is never touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

from runtime.errors import ConfigurationError, first_line

DEFAULT_MASTER = "local[*]"
LOOPBACK = "127.0.0.1"
APP_NAME = "runtime.score"


def is_loopback_master(master: str) -> bool:
    """local[...] runs in this process; spark://HOST:PORT on a loopback HOST is a cluster on this host only."""
    if master.startswith("local"):
        return True
    host = urlsplit(master).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and os.access(os.path.join(home, "bin", "java"), os.X_OK)))


def session_conf(master: str) -> dict[str, str]:
    """What a session we start is told: no UI, and for a master on this host the driver and its block manager
    bound to loopback.

    A remote master's executors must reach the driver, so there the bind address stays Spark's (spark-defaults,
    SPARK_LOCAL_IP): the cluster's network is its operator's to secure.
    """
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # the CLI prints its own progress lines
    }
    if is_loopback_master(master):
        conf |= {"spark.driver.bindAddress": LOOPBACK, "spark.driver.host": LOOPBACK}
    return conf


def session_env(master: str) -> dict[str, str]:
    """The environment the SparkContext reads as it starts: the executors' Python is this one unless
    PYSPARK_PYTHON names another, and on this host SPARK_LOCAL_IP is loopback (the JVM's "this host")."""
    env = {"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable}
    if is_loopback_master(master):
        env["SPARK_LOCAL_IP"] = LOOPBACK
    return env


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, put back as it was afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def spark_session(master: str | None) -> Iterator[SparkSession]:
    """Start Spark on `master` (default local[*]) for one run, and stop it after."""
    master = master or DEFAULT_MASTER
    if not java_found():
        raise ConfigurationError("--engine spark needs Java 17 or newer: put `java` on PATH or set JAVA_HOME")
    builder = SparkSession.builder.master(master).appName(APP_NAME)
    for key, value in session_conf(master).items():
        builder = builder.config(key, value)
    try:
        with environment(session_env(master)):
            session = builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own types for a JVM that did not start
        raise ConfigurationError(f"could not start Spark on {master} ({first_line(exc)}); Spark 4 needs Java 17 or newer") from None
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
