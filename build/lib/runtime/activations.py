"""Logits to probabilities, numerically stable for any logit magnitude."""

from __future__ import annotations

import numpy as np

from runtime.model_dir import Activation


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row max keeps exp() from overflowing."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise sigmoid written so that neither branch can overflow."""
    exp_neg_abs = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + exp_neg_abs), exp_neg_abs / (1.0 + exp_neg_abs))


def activate(logits: np.ndarray, activation: Activation) -> np.ndarray:
    """Probabilities as the pipeline computes them: softmax for single-label, sigmoid for multi-label."""
    probabilities = softmax(logits) if activation == "softmax" else sigmoid(logits)
    return probabilities.astype(np.float32, copy=False)
