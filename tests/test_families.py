"""Every common encoder family, exported with `python -m export` and scored with `python -m runtime.score`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from export.first_token import FIRST_TOKEN_LAST_LAYER, WHOLE_MODEL
from export.probes import SEED_TEXTS, pair_probes
from runtime import Scorer
from runtime.model.model_dir import read_manifest
from tests.support.cli import ROOT, score, write
from tests.support.models import export_model
from tests.support.families import FAMILIES, MAX_LENGTH, make_family_checkpoint
from tests.support.torch_reference import torch_probabilities

TOLERANCE = 1e-4


@pytest.fixture(scope="session", params=list(FAMILIES))
def family(request, tmp_path_factory: pytest.TempPathFactory):
    """(name, checkpoint dir, model dir): each family is built and exported once per session."""
    base = tmp_path_factory.mktemp(request.param)
    checkpoint = make_family_checkpoint(request.param, base / "checkpoint")
    return request.param, checkpoint, export_model(checkpoint, base / "onnx")


def text_of_length(tokenizer, length: int) -> str:
    """A text that tokenizes to exactly `length` ids, special tokens included."""
    for word in ("good", "film", "a", "the", "it"):
        for count in range(1, length + 1):
            text = " ".join([word] * count)
            size = len(tokenizer(text)["input_ids"])
            if size == length:
                return text
            if size > length:
                break
    raise AssertionError(f"no text of {length} tokens for {type(tokenizer).__name__}")


def parity_texts(tokenizer) -> list[str]:
    """1 token, a few, exactly the max length, past it; the seed's sentences and odd scripts."""
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    return [
        text_of_length(tokenizer, specials + 1),
        text_of_length(tokenizer, specials + 4),
        text_of_length(tokenizer, MAX_LENGTH),
        text_of_length(tokenizer, MAX_LENGTH) + " and then some more words past the limit",
        " ".join(["terrific"] * 300),
        *SEED_TEXTS,
        "",
        "Absolutely wonderful 😊👍 这部电影很好看",
        *(" ".join(["the plot was not bad at all"] * n) for n in range(1, 6)),
    ]


def test_family_matches_pytorch_through_the_cli(family, tmp_path):
    name, checkpoint, model_dir = family
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    texts = parity_texts(tokenizer)
    expected = torch_probabilities(checkpoint, texts)
    src = write(tmp_path / "in.parquet", pa.table({"text": texts}))
    result = score(model_dir, src, tmp_path / "out.parquet", "--batch-size", "17")
    assert result.returncode == 0, result.stderr
    past_max = sum(len(tokenizer(text)["input_ids"]) > MAX_LENGTH for text in texts)
    assert past_max == 2 and f"{past_max} truncated" in result.stdout
    table = pq.read_table(tmp_path / "out.parquet")
    probabilities = np.array(table.column("probabilities").to_pylist())
    assert np.abs(probabilities - expected).max() <= TOLERANCE, name
    labels = read_manifest(model_dir).labels
    assert table.column("label").to_pylist() == [labels[i] for i in expected.argmax(axis=1)]
    for batch_size in (1, 2):  # the CLI's path in process: batching by length must not change an answer
        scores = Scorer(model_dir, max_batch_rows=batch_size).score(texts)
        assert np.abs(scores.probabilities - expected).max() <= TOLERANCE, (name, batch_size)
        assert (scores.label_ids == expected.argmax(axis=1)).all()


def test_family_pairs_match_pytorch(family):
    name, checkpoint, model_dir = family
    texts, pairs = map(list, zip(*pair_probes(MAX_LENGTH)))
    expected = torch_probabilities(checkpoint, texts, pairs)
    scores = Scorer(model_dir, max_batch_rows=2).score(texts, pairs)
    assert np.abs(scores.probabilities - expected).max() <= TOLERANCE, name
    assert read_manifest(model_dir).parity["pairs"] == len(texts)  # validation at export covered pairs too


def test_family_manifest_and_tokenizer(family):
    """The saved tokenizer keeps the family's pad id and max length; the ONNX inputs are the family's."""
    name, checkpoint, model_dir = family
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    manifest = read_manifest(model_dir)
    assert manifest.model_type == name
    assert manifest.pad_token_id == tokenizer.pad_token_id
    assert manifest.max_length == MAX_LENGTH
    takes_token_types = name in ("albert", "electra")
    assert ("token_type_ids" in manifest.onnx_inputs) == takes_token_types
    first_token = name not in ("deberta-v2", "modernbert")  # exported whole, and the manifest says why
    assert (manifest.graph_optimizations == [FIRST_TOKEN_LAST_LAYER]) == first_token
    assert manifest.graph_optimizations[0].startswith(FIRST_TOKEN_LAST_LAYER if first_token else WHOLE_MODEL)


def test_unexportable_architecture_is_one_error_line(tmp_path):
    """FNet has a sequence classifier in transformers but no ONNX config in optimum."""
    import subprocess
    import sys

    import torch
    from transformers import FNetConfig, FNetForSequenceClassification

    torch.manual_seed(0)
    config = FNetConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, max_position_embeddings=128)
    FNetForSequenceClassification(config).save_pretrained(tmp_path / "fnet")
    make_family_checkpoint("electra", tmp_path / "electra")  # borrow a WordPiece tokenizer
    AutoTokenizer.from_pretrained(tmp_path / "electra").save_pretrained(tmp_path / "fnet")
    result = subprocess.run(
        [sys.executable, "-m", "export", "--checkpoint", str(tmp_path / "fnet"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "FNetForSequenceClassification" in lines[0] and "'fnet'" in lines[0] and "not support" in lines[0]
    assert not (tmp_path / "out").exists()
