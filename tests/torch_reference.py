"""What PyTorch and transformers answer for the same texts: the reference every parity test compares to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def torch_probabilities(checkpoint: Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """The pipeline's math: tokenize (padded, truncated), logits, softmax or sigmoid as the config says."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    accepted = set(model.forward.__code__.co_varnames)
    multi_label = model.config.problem_type == "multi_label_classification"
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
            logits = model(**{k: v for k, v in inputs.items() if k in accepted}).logits
            chunks.append((logits.sigmoid() if multi_label else logits.softmax(-1)).numpy())
    return np.concatenate(chunks)
