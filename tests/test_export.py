"""`python -m export`: what it refuses, and that a failure publishes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from export.checkpoint import load_checkpoint
from export.errors import ValidationError
from export.validate import validate_model_outputs
from runtime.model.model_dir import read_manifest
from tests.support.cli import ROOT

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


def test_help_gives_the_defaults_of_checkpoint_and_out():
    result = run_export("--help", env={**os.environ, "COLUMNS": "300"})  # wide: argparse breaks names at hyphens
    assert result.returncode == 0, result.stderr
    options = " ".join(result.stdout.split("options:", 1)[1].split())
    checkpoint_help = options.split("--checkpoint ID_OR_DIR ", 1)[1].split(" --out ", 1)[0]
    out_help = options.split("--out DIR ", 1)[1].split(" --force ", 1)[0]
    assert f"(default: {SEED_CHECKPOINT}," in checkpoint_help
    assert "(default: models/default)" in out_help


def test_a_home_relative_checkpoint_is_loaded_offline_for_the_slow_tokenizer_check_too(models, tmp_path):
    """`~/ckpt` as typed: the check that tokenizer.json (built from vocab.txt) matches the slow tokenizer loads the
    slow one from the resolved dir, offline, like the rest of the export (it used to try `~/ckpt` as a hub id)."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(models["bert"][0], home / "ckpt")
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-cache")}
    result = run_export("--checkpoint", "~/ckpt", "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    parity = read_manifest(tmp_path / "out").parity
    assert parity["tokenizer_converted_from"] == ["vocab.txt"] and parity["tokenizer_ids_checked"] > 0


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
    from runtime.model.session import OnnxModel

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
    from tests.support.models import export_model
    from tests.support.torch_reference import torch_probabilities

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


def test_int8_agreement_is_judged_on_the_users_own_texts(models, tmp_path):
    """--agreement-texts replaces the generated sentences (the probes stay); the manifest names the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from export.probes import probe_texts

    own = ["a fine film", "a dreadful book", None, "the plot never moves", "I would go back tomorrow"]
    pq.write_table(pa.table({"text": own}), tmp_path / "mine.parquet")
    result = run_export("--checkpoint", str(models["bert"][0]), "--out", str(tmp_path / "int8"), "--quantize", "int8",
                        "--agreement-texts", str(tmp_path / "mine.parquet"))
    assert result.returncode == 0, result.stderr
    quantization = read_manifest(tmp_path / "int8").quantization
    assert quantization["agreement_texts"] == str(tmp_path / "mine.parquet")
    assert quantization["agreement"]["texts"] == len(probe_texts(512)) + 4
    assert f"on {len(probe_texts(512)) + 4} texts ({tmp_path / 'mine.parquet'};" in result.stdout


def test_agreement_texts_are_thinned_evenly_to_the_limit(tmp_path):
    """A whole job's input would be scored five times: every k-th text is kept, blank lines never."""
    from export.probes import read_agreement_texts

    (tmp_path / "texts.txt").write_text("\n".join(f"text {i}" for i in range(25)) + "\n\n \n")
    assert read_agreement_texts(tmp_path / "texts.txt", limit=10) == [f"text {i}" for i in range(0, 25, 3)]
    assert len(read_agreement_texts(tmp_path / "texts.txt")) == 25


def test_agreement_texts_need_a_string_text_column(tmp_path):
    """The runtime's own column checks apply: a missing or numeric `text` column is refused by name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from export.probes import read_agreement_texts
    from runtime.errors import InputError

    pq.write_table(pa.table({"review": ["a fine film"]}), tmp_path / "named.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "numbers.parquet")
    with pytest.raises(InputError, match="has no column 'text'; its columns are review"):
        read_agreement_texts(tmp_path / "named.parquet")
    with pytest.raises(InputError, match="has type int64, not a string type"):
        read_agreement_texts(tmp_path / "numbers.parquet")


@pytest.mark.parametrize("extra", [["--quantize", "int8", "--agreement-texts", "missing.txt"],
                                   ["--agreement-texts", "texts.txt"]])
def test_agreement_texts_misuse_is_one_line_and_writes_nothing(models, tmp_path, extra):
    (tmp_path / "texts.txt").write_text("a fine film\n")
    extra = [str(tmp_path / arg) if arg.endswith(".txt") else arg for arg in extra]
    result = run_export("--checkpoint", str(models["bert"][0]), "--out", str(tmp_path / "out"), *extra)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --agreement-texts") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_int8_below_the_agreement_bar_is_refused(models, tmp_path):
    """An unreachable bar: every try fails, up to half the layers in fp32, and the error says so."""
    import shutil

    from export.probes import agreement_texts
    from export.errors import QuantizationError
    from export.quantize import quantize_until_agreement

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


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["closed-port", "http://hub.invalid"])
def test_unreachable_hub_fails_fast_with_one_line(tmp_path, endpoint):
    """No HF_HUB_OFFLINE: the hub is probed once instead of retried for half a minute."""
    import time

    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    env["HF_HOME"] = str(tmp_path / "empty-cache")
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}" if endpoint == "closed-port" else endpoint
    started = time.monotonic()
    result = run_export("--out", str(tmp_path / "out"), env=env)
    assert time.monotonic() - started < 10
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "not reachable" in result.stderr and SEED_CHECKPOINT in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["./nockpt", "models/nockpt/", "/no/such/checkpoint"])
def test_a_mistyped_folder_is_no_such_directory(tmp_path, name):
    result = run_export("--checkpoint", name, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no such directory" in result.stderr and name in result.stderr
    assert "hub" not in result.stderr


def make_roberta_checkpoint(path, positions: int = 130):
    """A RoBERTa whose self-trained tokenizer sets no model_max_length (transformers then reports 1e30)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    from export.probes import generated_texts

    path.mkdir()
    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0-4: pad is 1
    bpe.train_from_iterator(generated_texts(300), vocab_size=400, special_tokens=specials)
    bpe.save_model(str(path))
    tokenizer = RobertaTokenizerFast(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"))
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=positions, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    RobertaForSequenceClassification(config).save_pretrained(path)
    return path


def test_roberta_positions_start_after_the_padding_index(tmp_path):
    """max length = max_position_embeddings - padding_idx - 1; texts past it are truncated, not a crash."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from runtime import Scorer

    checkpoint = make_roberta_checkpoint(tmp_path / "roberta")
    result = run_export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert read_manifest(tmp_path / "out").max_length == 130 - 1 - 1
    texts = ["the plot " * 200, "a short one"]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        inputs = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        expected = model(**inputs).logits.softmax(-1).numpy()
    scores = Scorer(tmp_path / "out").score(texts)
    assert np.abs(scores.probabilities - expected).max() < 1e-4
    assert scores.truncated == 1


def test_an_unexpected_failure_is_one_line_and_a_log(models, tmp_path):
    import json
    import shutil

    checkpoint = shutil.copytree(models["bert"][0], tmp_path / "ckpt")
    config = json.loads((checkpoint / "config.json").read_text())
    config["id2label"] = {"0": "contradiction", "2": "neutral"}  # a hole in the label ids
    (checkpoint / "config.json").write_text(json.dumps(config))
    result = run_export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    log = result.stderr.rsplit("full log: ", 1)[1].strip()
    assert "Traceback" in open(log).read()
    os.unlink(log)
    assert not (tmp_path / "out").exists()


def test_int8_warns_when_the_reference_answers_one_class(models, tmp_path):
    """An agreement of 100% means nothing when PyTorch predicts one label for every text: say so."""
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    checkpoint = shutil.copytree(models["distilbert"][0], tmp_path / "ckpt")
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([0.0, 1000.0]))  # always POSITIVE
    model.save_pretrained(checkpoint)
    result = run_export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    assert "all layers int8" in result.stdout and "first 0 layer" not in result.stdout
    assert "PyTorch predicts NEGATIVE 0%, POSITIVE 100%" in result.stdout
    assert result.stderr.startswith("warning: ") and "'POSITIVE' for 100.0%" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    agreement = read_manifest(tmp_path / "out").quantization["agreement"]
    assert agreement["reference_class_shares"] == [0.0, 1.0]


def test_a_regression_head_applies_no_function_as_the_pipeline(tmp_path):
    """The pipeline returns a regression head's raw output; sigmoid would squash a score of 3.7 stars to 0.98."""
    from transformers import pipeline

    from runtime import Scorer
    from tests.support.models import export_model, make_checkpoint

    checkpoint = make_checkpoint("regression", tmp_path / "ckpt")
    model_dir = export_model(checkpoint, tmp_path / "onnx")
    assert read_manifest(model_dir).activation == "none"
    texts = ["a fine film", "a dreadful book"]
    expected = pipeline("text-classification", model=str(checkpoint), device="cpu")(texts)
    answers = Scorer(model_dir)(texts)
    assert [a["score"] for a in answers] == pytest.approx([e["score"] for e in expected], abs=1e-4)
