"""Checkpoints that ship a SentencePiece model and no tokenizer.json: export builds it and proves its ids."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from export.probes import pair_probes, probe_texts
from runtime import Scorer
from runtime.model.model_dir import read_manifest
from tests.support.cli import ROOT
from tests.support.families import FAMILIES, MAX_LENGTH, corpus
from tests.support.torch_reference import torch_probabilities

# The family's slow tokenizer class, its SentencePiece file and that file's piece ids as the family ships them
SENTENCEPIECE_ONLY = {
    "deberta-v2": ("DebertaV2Tokenizer", "spm.model", {"pad_id": 0, "bos_id": 1, "eos_id": 2, "unk_id": 3}),
    "xlm-roberta": (
        "XLMRobertaTokenizer", "sentencepiece.bpe.model", {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1}
    ),
    "albert": ("AlbertTokenizer", "spiece.model", {"pad_id": 0, "unk_id": 1, "bos_id": -1, "eos_id": -1}),
}
PIECES = {"bos_piece": "[CLS]", "eos_piece": "[SEP]", "pad_piece": "[PAD]", "unk_piece": "[UNK]"}


def sentencepiece_checkpoint(family: str, path: Path) -> Path:
    """A tiny seeded model and a slow tokenizer over a SentencePiece model trained here: no tokenizer.json."""
    import sentencepiece
    import transformers

    class_name, filename, ids = SENTENCEPIECE_ONLY[family]
    model_bytes = io.BytesIO()
    pieces = PIECES if family == "deberta-v2" else {}
    symbols = ["[CLS]", "[SEP]", "[MASK]"] if family == "albert" else []
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=corpus(), model_writer=model_bytes, vocab_size=800, model_type="unigram",
        character_coverage=1.0, user_defined_symbols=symbols, minloglevel=2, **ids, **pieces,
    )
    path.mkdir(parents=True)
    (path / filename).write_bytes(model_bytes.getvalue())
    tokenizer = getattr(transformers, class_name)(vocab_file=str(path / filename), model_max_length=MAX_LENGTH)
    (path / filename).unlink()
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    FAMILIES[family].build_model(len(tokenizer), tokenizer.get_vocab()).save_pretrained(path)
    assert not (path / "tokenizer.json").exists() and (path / filename).exists()
    return path


def run_export(checkpoint: Path, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "export", "--checkpoint", str(checkpoint), "--out", str(out)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("family", ["deberta-v2", "xlm-roberta"])
def test_sentencepiece_only_checkpoint_exports_with_the_original_ids(family, tmp_path):
    checkpoint = sentencepiece_checkpoint(family, tmp_path / "checkpoint")
    result = run_export(checkpoint, tmp_path / "onnx")
    assert result.returncode == 0, result.stderr
    model_dir = tmp_path / "onnx"
    parity = read_manifest(model_dir).parity
    assert parity["tokenizer_converted_from"] == [SENTENCEPIECE_ONLY[family][1]]
    assert parity["tokenizer_ids_checked"] >= len(probe_texts(MAX_LENGTH))
    original = AutoTokenizer.from_pretrained(checkpoint, use_fast=False)
    texts = probe_texts(MAX_LENGTH)
    firsts, seconds = map(list, zip(*pair_probes(MAX_LENGTH)))
    scorer = Scorer(model_dir)
    expected = original(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    assert scorer.preprocess(texts).ids == expected
    assert scorer.preprocess(firsts[:2], seconds[:2]).ids == original(firsts[:2], seconds[:2])["input_ids"]
    probabilities = scorer.score(texts).probabilities
    assert np.abs(probabilities - torch_probabilities(checkpoint, texts)).max() <= 1e-4


def test_conversion_that_changes_ids_is_refused(tmp_path):
    """transformers' ALBERT conversion keeps a lone `▁` for whitespace-only text; the slow tokenizer drops it."""
    checkpoint = sentencepiece_checkpoint("albert", tmp_path / "checkpoint")
    result = run_export(checkpoint, tmp_path / "onnx")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "spiece.model" in lines[0] and "AlbertTokenizer" in lines[0] and "' '" in lines[0]
    assert not (tmp_path / "onnx").exists()
