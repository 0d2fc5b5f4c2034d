"""The session's fixtures: small real models built from configs with fixed seeds, exported once, and an S3 server.

Helpers live in tests/support/ (shared with the benchmarks); this file holds fixtures only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import export_model, make_checkpoint
from tests.support.s3_server import S3Store, moto_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download; fail fast instead of retrying the hub


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """kind -> (checkpoint dir, exported model dir) for distilbert (2 labels), bert (3) and multilabel (4)."""
    base = tmp_path_factory.mktemp("models")
    built = {}
    for kind in ("distilbert", "bert", "multilabel"):
        checkpoint = make_checkpoint(kind, base / f"{kind}-checkpoint")
        built[kind] = (checkpoint, export_model(checkpoint, base / f"{kind}-onnx"))
    return built


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Store]:
    """A real S3-protocol server (moto) on 127.0.0.1 for the whole session, stopped by its process group."""
    with moto_server() as aws_env:
        yield S3Store(aws_env)


@pytest.fixture(scope="module")
def model_dir(models) -> Path:
    """The exported two-label DistilBERT: the model of every test that is about files, engines or failures."""
    return models["distilbert"][1]
