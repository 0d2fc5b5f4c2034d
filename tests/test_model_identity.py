"""A model is known by its identity (graph, tokenizer and the manifest fields that decide outputs), not by
model.onnx's sha256: a re-export of the same weights with other labels is another model to --resume, to the
model cache and to the Ray actors' check. Also: the cache verifies an entry on use, a manifest whose labels do
not fit the graph is refused, and the Scorer takes the URIs the CLI takes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import Scorer
from runtime.files.parquet_io import OutputOptions
from runtime.engines.ray_engine.worker import ScoringActor
from runtime.errors import InputError
from runtime.model.model_dir import MANIFEST_FILE, ONNX_FILE, TOKENIZER_FILE, read_manifest
from tests.support.cli import ROOT, assert_clean_error, score, write
from tests.support.models import export_model

NEW_LABELS = ["bad", "good"]
TEXTS = ["a fine film", "a dull film", None, "I love it", "awful, just awful"]


@pytest.fixture(scope="module")
def original(models) -> Path:
    return models["distilbert"][1]


@pytest.fixture(scope="module")
def relabelled(models, tmp_path_factory) -> Path:
    """The same checkpoint (same weights, same tokenizer) with its labels renamed, exported again."""
    checkpoint = tmp_path_factory.mktemp("relabelled") / "checkpoint"
    shutil.copytree(models["distilbert"][0], checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["id2label"] = dict(enumerate(NEW_LABELS))
    config["label2id"] = {label: i for i, label in enumerate(NEW_LABELS)}
    (checkpoint / "config.json").write_text(json.dumps(config))
    return export_model(checkpoint, checkpoint.parent / "model")


def upload_dir(s3, bucket: str, prefix: str, model_dir: Path) -> str:
    for path in sorted(model_dir.iterdir()):
        s3.put(bucket, f"{prefix}/{path.name}", path.read_bytes())
    return f"s3://{bucket}/{prefix}/"


def test_a_relabelled_export_shares_the_graph_but_not_the_identity(original, relabelled):
    old, new = read_manifest(original), read_manifest(relabelled)
    assert (original / ONNX_FILE).read_bytes() == (relabelled / ONNX_FILE).read_bytes()  # what fooled the old key
    assert old.files == new.files and new.labels == NEW_LABELS
    assert old.identity != new.identity


def test_resume_rescores_when_only_the_labels_changed(original, relabelled, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    out = tmp_path / "out.parquet"
    assert score(original, src, out, "--resume").returncode == 0
    assert set(pq.read_table(out)["label"].drop_null().to_pylist()) <= {"NEGATIVE", "POSITIVE"}
    rerun = score(relabelled, src, out, "--resume")
    assert rerun.returncode == 0, rerun.stderr
    assert "scored 5 rows" in rerun.stdout and "already done" not in rerun.stdout
    labels = pq.read_table(out)["label"].drop_null().to_pylist()
    assert labels and set(labels) <= set(NEW_LABELS)
    assert "scored 0 rows" in score(relabelled, src, out, "--resume").stdout  # same identity: trusted


def test_the_model_cache_keeps_relabelled_models_apart(s3, original, relabelled, tmp_path):
    bucket = s3.new_bucket()
    models = {name: upload_dir(s3, bucket, f"models/{name}", model) for name, model in (("old", original), ("new", relabelled))}
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    env = s3.env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    summaries = {}
    for name, uri in models.items():
        summary = tmp_path / f"{name}.json"
        result = score(uri, src, tmp_path / f"{name}.parquet", "--summary-json", str(summary), env=env)
        assert result.returncode == 0, result.stderr
        summaries[name] = json.loads(summary.read_text())
    assert summaries["new"]["model_cached"] is False  # not served from the old model's entry
    assert summaries["new"]["model_dir"] != summaries["old"]["model_dir"]
    assert set(pq.read_table(tmp_path / "new.parquet")["label"].drop_null().to_pylist()) <= set(NEW_LABELS)
    assert read_manifest(Path(summaries["new"]["model_dir"])).labels == NEW_LABELS


def test_a_damaged_cache_entry_is_fetched_again_once(s3, original, tmp_path):
    bucket = s3.new_bucket()
    uri = upload_dir(s3, bucket, "models/tiny", original)
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    env = s3.env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    entry = tmp_path / "cache" / "onnx-batch-scorer" / "models" / read_manifest(original).identity

    def run(number: int) -> subprocess.CompletedProcess:
        summary = tmp_path / f"summary-{number}.json"
        return score(uri, src, tmp_path / f"out-{number}.parquet", "--summary-json", str(summary), env=env)

    assert run(1).returncode == 0 and (entry / ONNX_FILE).is_file()
    with open(entry / TOKENIZER_FILE, "ab") as handle:  # a disk error, a stray edit: the source is fine
        handle.write(b" ")
    second = run(2)
    assert second.returncode == 0, second.stderr
    warnings = [line for line in second.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "tokenizer.json" in warnings[0] and uri in warnings[0], second.stderr
    assert json.loads((tmp_path / "summary-2.json").read_text())["model_cached"] is False
    read_manifest(entry)  # whole again
    rows = [pq.read_table(tmp_path / f"out-{number}.parquet").replace_schema_metadata(None) for number in (1, 2)]
    assert rows[0].equals(rows[1])
    third = run(3)
    assert third.returncode == 0 and "warning" not in third.stderr, third.stderr
    assert json.loads((tmp_path / "summary-3.json").read_text())["model_cached"] is True

    (entry / ONNX_FILE).write_bytes(b"damaged")  # damaged again, and now the source is broken too: fetched once
    s3.client.delete_object(Bucket=bucket, Key="models/tiny/model.onnx")
    broken = run(4)
    lines = broken.stderr.strip().splitlines()
    assert broken.returncode == 2 and len(lines) == 2, broken.stderr
    assert lines[0].startswith("warning:") and lines[1].startswith("error:") and "model.onnx" in lines[1]


def test_the_scorer_and_verify_take_an_s3_uri(s3, original, tmp_path, monkeypatch):
    bucket = s3.new_bucket()
    uri = upload_dir(s3, bucket, "models/tiny", original)
    env = s3.env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    texts = [text for text in TEXTS if text]
    assert Scorer(uri)(texts) == Scorer(original)(texts)
    command = [sys.executable, "-m", "runtime.verify", uri]
    verified = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert verified.returncode == 0 and verified.stdout.startswith(f"ok: {uri}"), verified.stderr


def test_labels_that_do_not_fit_the_graph_are_refused_on_open(models, tmp_path):
    model_dir = shutil.copytree(models["bert"][1], tmp_path / "model")  # three logits
    manifest = read_manifest(model_dir)
    manifest.labels = manifest.labels[:2]
    manifest.write(model_dir)  # a consistent manifest, identity and all, that names two labels
    src = write(tmp_path / "in.parquet", pa.table({"text": ["fine"]}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet"), "3 logits", "2 labels", MANIFEST_FILE)
    with pytest.raises(InputError, match="3 logits"):
        Scorer(model_dir)


def test_a_ray_actor_refuses_a_model_of_another_identity(original, relabelled):
    """The actor's own check, without Ray: a node whose dir at the same path holds the relabelled export."""
    driver = read_manifest(original).identity
    actor = ScoringActor(str(relabelled), driver, 1, 64, 4096, OutputOptions())
    assert isinstance(actor.error, InputError) and "differs on node" in str(actor.error)
    assert ScoringActor(str(original), driver, 1, 64, 4096, OutputOptions()).error is None
