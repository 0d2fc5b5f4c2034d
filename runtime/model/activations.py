"""Logits to scores, as the pipeline's `function_to_apply`: numerically stable for any logit magnitude."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

FunctionToApply = Literal["softmax", "sigmoid", "none"]
FUNCTIONS_TO_APPLY: tuple[str, ...] = get_args(FunctionToApply)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row max keeps exp() from overflowing."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise sigmoid written so that neither branch can overflow."""
    exp_neg_abs = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + exp_neg_abs), exp_neg_abs / (1.0 + exp_neg_abs))


def no_activation(logits: np.ndarray) -> np.ndarray:
    """The raw logits: regression heads, calibration and ensembling want them as they are."""
    return logits


ACTIVATIONS = {"softmax": softmax, "sigmoid": sigmoid, "none": no_activation}


def checked_function(function: str) -> FunctionToApply:
    """`function` in lower case if it is one the pipeline knows (which also takes "SIGMOID" and its
    ClassificationFunction members, str subclasses); a ValueError naming the choices otherwise."""
    name = function.lower() if isinstance(function, str) else function
    if name not in ACTIVATIONS:
        raise ValueError(f"function_to_apply must be one of {', '.join(FUNCTIONS_TO_APPLY)}, not {function!r}")
    return name  # type: ignore[return-value]


def activate(logits: np.ndarray, function: FunctionToApply) -> np.ndarray:
    """Scores as the pipeline computes them: softmax (single-label), sigmoid (multi-label, one logit) or none."""
    return ACTIVATIONS[checked_function(function)](logits).astype(np.float32, copy=False)
