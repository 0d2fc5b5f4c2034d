"""A confident model is published: its logits near ±100 differ from PyTorch by float32 rounding only."""

from __future__ import annotations

import numpy as np
import pytest

from export.probes import SEED_TEXTS
from runtime import Scorer
from runtime.model.model_dir import read_manifest
from tests.support.models import bert_vocab, export_model
from tests.support.torch_reference import torch_logits, torch_probabilities


@pytest.fixture(scope="module")
def confident_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """DistilBERT-base's shape (768 wide, 6 layers; 128 tokens keep it quick), its logits scaled past ±100."""
    import torch
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    labels = ["NEGATIVE", "POSITIVE"]
    label2id = {label: i for i, label in enumerate(labels)}
    config = DistilBertConfig(num_labels=2, id2label=dict(enumerate(labels)), label2id=label2id)
    model = DistilBertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(600)
        model.classifier.bias.zero_()
    path = tmp_path_factory.mktemp("confident") / "checkpoint"
    model.save_pretrained(path)
    BertTokenizerFast(vocab_file=str(bert_vocab()), do_lower_case=True, model_max_length=128).save_pretrained(path)
    return path


def test_confident_model_is_published(confident_checkpoint, tmp_path):
    logits = torch_logits(confident_checkpoint, SEED_TEXTS)
    assert np.abs(logits).max() > 100  # as confident as the issue says
    model_dir = export_model(confident_checkpoint, tmp_path / "onnx")
    parity = read_manifest(model_dir).parity
    assert parity["max_abs_diff_logits"] > parity["atol"]  # refused by an absolute-only logit check
    assert parity["logits_share_of_tolerance"] <= 1
    assert parity["max_abs_diff_probabilities"] <= 1e-4
    scores = Scorer(model_dir).score(SEED_TEXTS)
    assert np.abs(scores.probabilities - torch_probabilities(confident_checkpoint, SEED_TEXTS)).max() <= 1e-4
    assert np.allclose(scores.logits, logits, atol=1e-4, rtol=1e-5)
