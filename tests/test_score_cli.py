"""`python -m runtime.score` end to end on real Parquet files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.corpus import sst2_dev
from runtime.model.model_dir import read_manifest
from tests.support.cli import ROOT, run_score
from tests.support.corpus import SST2_DEV
from tests.support.torch_reference import torch_probabilities


def sst2_table() -> pa.Table:
    texts, gold = sst2_dev()
    return pa.table({"id": np.arange(len(texts)), "text": texts, "gold": gold})


@pytest.mark.skipif(not SST2_DEV.exists(), reason=f"SST-2 dev set not found at {SST2_DEV} (../shared is absent)")
@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_sst2_dev_matches_pytorch(models, kind, tmp_path):
    checkpoint, model_dir = models[kind]
    table = sst2_table()
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=300)
    result = run_score(str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), "--model", str(model_dir))
    assert result.returncode == 0, result.stderr
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.select(["id", "text", "gold"]).equals(table)
    expected = torch_probabilities(checkpoint, table["text"].to_pylist())
    probabilities = np.array(out["probabilities"].to_pylist(), dtype=np.float32)
    assert np.abs(probabilities - expected).max() <= 1e-4
    labels = read_manifest(model_dir).labels
    assert out["label"].to_pylist() == [labels[i] for i in expected.argmax(axis=1)]
    assert np.allclose(out["score"].to_numpy(), expected.max(axis=1), atol=1e-4)


def test_round_trip_keeps_rows_columns_and_nulls(models, tmp_path):
    _, model_dir = models["distilbert"]
    table = pa.table(
        {
            "id": pa.array([3, 1, 2, 0], pa.int32()),
            "text": ["a long sentence about a film that was wonderful", None, "bad", ""],
            "tags": pa.array([["x"], [], None, ["y", "z"]], pa.list_(pa.string())),
        },
        metadata={b"owner": b"team-a"},
    )
    pq.write_table(table, tmp_path / "in.parquet")
    result = run_score(str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), "--model", str(model_dir))
    assert result.returncode == 0, result.stderr
    assert "scored 4 rows (1 null, 0 truncated)" in result.stdout
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names == ["id", "text", "tags", "label", "score", "probabilities"]
    assert out.select(["id", "text", "tags"]).equals(table.select(["id", "text", "tags"]))
    assert out.schema.field("score").type == pa.float32()
    assert out.schema.field("probabilities").type == pa.list_(pa.float32())
    assert out["label"][1].as_py() is None and out["score"][1].as_py() is None
    assert out["probabilities"][1].as_py() is None
    assert out["label"].null_count == 1
    record = json.loads(pq.read_metadata(tmp_path / "out.parquet").metadata[b"runtime.score"])
    manifest = read_manifest(model_dir)
    assert record["model_identity"] == manifest.identity and record["model_files"] == manifest.files
    assert record["labels"] == manifest.labels
    assert (record["rows"], record["null_rows"]) == (4, 1)
    assert record["started_at"] <= record["finished_at"]
    assert out.schema.metadata[b"owner"] == b"team-a"


def test_scoring_never_imports_torch(models, tmp_path):
    _, model_dir = models["distilbert"]
    pq.write_table(pa.table({"text": ["fine"]}), tmp_path / "in.parquet")
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['score', {str(tmp_path / 'in.parquet')!r}, {str(tmp_path / 'out.parquet')!r}, "
        f"'--model', {str(model_dir)!r}]\n"
        "try:\n    runpy.run_module('runtime.score', run_name='__main__')\nexcept SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'optimum'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out.parquet").exists()
