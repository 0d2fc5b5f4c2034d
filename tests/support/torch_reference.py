"""What PyTorch and transformers answer for the same texts: the reference every parity test compares to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer


def torch_logits(checkpoint: Path, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32) -> np.ndarray:
    """The pipeline's forward pass: each text (or pair) tokenized alone with truncation, padded per batch, then
    the model. One call per item as the pipeline makes it: a single call drops an empty pair, a batched one not."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    accepted = set(model.forward.__code__.co_varnames)
    items = [tokenizer(text, None if pairs is None else pairs[i], truncation=True) for i, text in enumerate(texts)]
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = tokenizer.pad(items[start : start + batch_size], return_tensors="pt")
            chunks.append(model(**{k: v for k, v in inputs.items() if k in accepted}).logits.float().numpy())
    return np.concatenate(chunks)


def torch_probabilities(checkpoint: Path, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
    """The pipeline's math: logits, then softmax, or sigmoid for multi-label and single-logit models."""
    config = AutoConfig.from_pretrained(checkpoint)
    logits = torch.from_numpy(torch_logits(checkpoint, texts, pairs))
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return logits.sigmoid().numpy()
    return logits.softmax(-1).numpy()
