"""Parity of the exported model with PyTorch, reported as max differences against a named tolerance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from onnxruntime import InferenceSession

from export.checkpoint import Checkpoint
from runtime.activations import activate
from runtime.model_dir import ONNX_FILE, Activation
from runtime.scorer import Scorer
from runtime.session import make_session

PARITY_ATOL = 1e-4
PROBE_BATCH_SIZES = (1, 2, 17)


class ValidationError(Exception):
    """The exported model does not reproduce PyTorch within tolerance: it must not be published."""


@dataclass
class ParityReport:
    atol: float
    max_abs_diff_logits: float
    max_abs_diff_probabilities: float
    argmax_agreement: float
    texts: int
    batch_sizes: list[int]

    def as_dict(self) -> dict:
        return asdict(self)


def torch_logits(checkpoint: Checkpoint, texts: list[str], batch_size: int, max_length: int) -> np.ndarray:
    """What the PyTorch pipeline computes: padded per batch, truncated to the model's max length."""
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = checkpoint.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            accepted = {name: tensor for name, tensor in inputs.items() if name in checkpoint.forward_inputs}
            chunks.append(checkpoint.model(**accepted).logits.float().numpy())
    return np.concatenate(chunks)


def onnx_logits(
    checkpoint: Checkpoint, session: InferenceSession, texts: list[str], batch_size: int, max_length: int
) -> np.ndarray:
    """The graph alone, fed the PyTorch tokenizer's tensors, to isolate the export from tokenization."""
    names = [node.name for node in session.get_inputs()]
    chunks = []
    for start in range(0, len(texts), batch_size):
        inputs = checkpoint.tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        chunks.append(session.run(None, {name: inputs[name].astype(np.int64) for name in names})[0])
    return np.concatenate(chunks)


def validate_model_outputs(
    checkpoint: Checkpoint,
    model_dir: Path,
    texts: list[str],
    activation: Activation,
    max_length: int,
    atol: float = PARITY_ATOL,
    batch_sizes: tuple[int, ...] = PROBE_BATCH_SIZES,
) -> ParityReport:
    """Compare PyTorch with the graph (logits) and with the runtime's own path (probabilities); raise on excess.

    The runtime path tokenizes with `tokenizers` from tokenizer.json and batches by length, so this also
    proves the saved tokenizer and the batcher give the PyTorch tokenizer's answers.
    """
    session = make_session(model_dir / ONNX_FILE)
    logit_diff = 0.0
    prob_diff = 0.0
    agreement = []
    scorer = Scorer(model_dir, verify_sha256=False)
    for batch_size in batch_sizes:
        reference = torch_logits(checkpoint, texts, batch_size, max_length)
        exported = onnx_logits(checkpoint, session, texts, batch_size, max_length)
        logit_diff = max(logit_diff, float(np.abs(reference - exported).max()))
        scorer.max_batch_rows = batch_size
        scores = scorer.score(texts)
        reference_probabilities = activate(reference, activation)
        prob_diff = max(prob_diff, float(np.abs(reference_probabilities - scores.probabilities).max()))
        agreement.append(float(np.mean(reference_probabilities.argmax(axis=1) == scores.label_ids)))
    report = ParityReport(
        atol=atol,
        max_abs_diff_logits=logit_diff,
        max_abs_diff_probabilities=prob_diff,
        argmax_agreement=min(agreement),
        texts=len(texts),
        batch_sizes=list(batch_sizes),
    )
    if logit_diff > atol or prob_diff > atol:
        raise ValidationError(
            f"ONNX output differs from PyTorch: max |diff| logits {logit_diff:.2e}, "
            f"probabilities {prob_diff:.2e}, tolerance {atol:.0e}"
        )
    return report
