"""A real S3-protocol server for tests and benchmarks: moto's server mode on 127.0.0.1, in its own process group.

Clients reach it through the standard AWS environment variables (pyarrow honours AWS_ENDPOINT_URL); nothing is
patched in-process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start on 127.0.0.1:{port} (exit code {process.poll()})")
            time.sleep(0.1)


def stop_group(process: subprocess.Popen) -> None:
    """End the server's whole process group (ours alone: start_new_session), politely first."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """Start the server; yield the AWS environment variables that point a client at it; stop it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_listening(process, port)
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    finally:
        stop_group(process)


class S3Store:
    """The test process's view of the server: boto3 to make buckets and inspect objects, pyarrow to upload inputs."""

    def __init__(self, aws_env: dict[str, str]) -> None:
        import boto3
        import pyarrow.fs as pafs

        self.aws_env = aws_env
        self.client = boto3.client(
            "s3",
            endpoint_url=aws_env["AWS_ENDPOINT_URL"],
            aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
            region_name=aws_env["AWS_DEFAULT_REGION"],
        )
        self.filesystem = pafs.S3FileSystem(
            endpoint_override=aws_env["AWS_ENDPOINT_URL"],
            access_key=aws_env["AWS_ACCESS_KEY_ID"],
            secret_key=aws_env["AWS_SECRET_ACCESS_KEY"],
            region=aws_env["AWS_DEFAULT_REGION"],
        )
        self.buckets = 0

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a CLI subprocess that talks to this server."""
        return {**os.environ, **self.aws_env, **extra}

    def new_bucket(self) -> str:
        self.buckets += 1
        name = f"test-bucket-{self.buckets}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def pending_uploads(self, bucket: str) -> list[str]:
        return [upload["Key"] for upload in self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)


def upload_file(s3, bucket: str, key: str, path: Path) -> str:
    s3.put(bucket, key, path.read_bytes())
    return f"s3://{bucket}/{key}"


def objects(s3, bucket: str) -> list[str]:
    """Keys of real objects: pyarrow keeps empty `prefix/` markers after a delete or move, as directories."""
    return [key for key in s3.keys(bucket) if not key.endswith("/")]


def read_s3(s3, bucket: str, key: str) -> pa.Table:
    return pq.read_table(f"{bucket}/{key}", filesystem=s3.filesystem)


def without_record(table: pa.Table) -> pa.Table:
    """The rows and columns; the footer record differs by design (input URI, times)."""
    return table.replace_schema_metadata(None)


def reviews(rows: int, start: int = 0) -> pa.Table:
    texts = [None if i % 11 == 3 else f"review {i % 40} says the film was {'great' if i % 3 else 'dull'}" for i in range(start, start + rows)]
    return pa.table({"id": range(start, start + rows), "text": texts})
