"""`python -m export`: what it refuses, and that a failure publishes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from export.checkpoint import load_checkpoint
from export.validate import ValidationError, validate_model_outputs
from runtime.model_dir import read_manifest
from tests.conftest import ROOT

SEED_CHECKPOINT = "distilbert-base-uncased-finetuned-sst-2-english"


def run_export(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def test_offline_hub_id_fails_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-cache")}
    result = run_export("--checkpoint", "someone/not-cached-model", "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "--checkpoint DIR" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_broken_checkpoint_dir_leaves_no_out(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    result = run_export("--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "ckpt"]


def test_validation_fails_loudly_beyond_tolerance(models):
    checkpoint_dir, model_dir = models["bert"]
    checkpoint = load_checkpoint(str(checkpoint_dir))
    manifest = read_manifest(model_dir)
    with pytest.raises(ValidationError, match="tolerance"):
        validate_model_outputs(
            checkpoint, model_dir, manifest.probes, manifest.activation, 512, atol=0.0, rtol=0.0
        )


def hf_cache_has(checkpoint: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(checkpoint, "config.json"), str)
    except Exception:
        return False


@pytest.mark.skipif(
    not hf_cache_has(SEED_CHECKPOINT), reason=f"{SEED_CHECKPOINT} is not in the local Hugging Face cache (no hub here)"
)
def test_real_checkpoint_reproduces_the_seed(tmp_path):
    from runtime import Scorer
    from runtime.session import OnnxModel

    result = run_export("--checkpoint", SEED_CHECKPOINT, "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    scorer = Scorer(tmp_path / "m")
    texts = ["I'm a good person", "I think that image is NSFW", "Wow. I love it"]
    encoded = scorer.preprocess(texts)
    input_ids, attention_mask = scorer.encoder.pad(encoded.ids, int(encoded.lengths.max()))
    logits = OnnxModel.run(scorer, {"input_ids": input_ids, "attention_mask": attention_mask})
    expected = np.array([[-4.2700, 4.6784], [2.8783, -2.4291], [-4.3149, 4.6853]])
    assert np.round(logits, 4) == pytest.approx(expected, abs=1e-4)
    assert [answer["label"] for answer in scorer(texts)] == ["POSITIVE", "NEGATIVE", "POSITIVE"]


def test_int8_export_records_agreement_and_scores(models, tmp_path):
    import onnx

    from runtime import Scorer
    from tests.conftest import export_model
    from tests.torch_reference import torch_probabilities

    checkpoint_dir, _ = models["bert"]
    model_dir = export_model(checkpoint_dir, tmp_path / "int8", "--quantize", "int8")
    manifest = read_manifest(model_dir)
    assert manifest.quantization["weight_type"] == "int8" and manifest.quantization["per_channel"]
    agreement = manifest.quantization["agreement"]
    assert agreement["argmax_agreement"] >= 0.99 and agreement["texts"] >= 400
    operators = {node.op_type for node in onnx.load(str(model_dir / "model.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in operators or "MatMulInteger" in operators
    texts = ["a fine film", "a dreadful book", "the plot never moves", "I would go back tomorrow"]
    expected = torch_probabilities(checkpoint_dir, texts)
    probabilities = Scorer(model_dir).score(texts).probabilities
    assert np.abs(probabilities - expected).max() < 0.05


def test_int8_below_the_agreement_bar_is_refused(models, tmp_path):
    """An unreachable bar: every try fails, up to half the layers in fp32, and the error says so."""
    import shutil

    from export.probes import agreement_texts
    from export.quantize import QuantizationError, quantize_until_agreement

    checkpoint_dir, model_dir = models["bert"]
    model_dir = shutil.copytree(model_dir, tmp_path / "model")
    with pytest.raises(QuantizationError, match="first 1 of 2 layers in fp32, below the 101% bar"):
        quantize_until_agreement(
            load_checkpoint(str(checkpoint_dir)), model_dir, agreement_texts(512, 20), "softmax", 512, 1.01
        )


def test_int8_can_keep_the_first_layer_fp32(models, tmp_path):
    """The fallback's unit: graph order groups MatMuls by layer, and kept MatMuls stay fp32 while the rest go int8."""
    import onnx

    from export.quantize import quantizable_matmuls, quantize_int8

    _, model_dir = models["bert"]
    matmuls = quantizable_matmuls(model_dir / "model.onnx")
    assert len(matmuls) == 12  # 2 layers x (query, key, value, attention output, FFN in, FFN out)
    first_layer = matmuls[:6]
    assert all("layer.0/" in name for name in first_layer) and not any("layer.0/" in name for name in matmuls[6:])
    quantize_int8(model_dir / "model.onnx", tmp_path / "mixed.onnx", keep_fp32=first_layer)
    nodes = onnx.load(str(tmp_path / "mixed.onnx")).graph.node
    fp32_matmuls = {node.name for node in nodes if node.op_type == "MatMul"}
    assert set(first_layer) <= fp32_matmuls
    assert not fp32_matmuls & set(matmuls[6:])
    assert sum(node.op_type == "MatMulInteger" for node in nodes) >= 6
