"""Parity of the exported model with PyTorch, reported as max differences against named tolerances.

Logits are compared as `torch.testing` does, |onnx - torch| <= atol + rtol * |torch|: a confident model with
logits near ±100 differs by a few 1e-4 from float32 rounding alone, while its probabilities do not move.
Probabilities, what the pipeline returns, are held to an absolute 1e-4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from onnxruntime import InferenceSession

from export.checkpoint import Checkpoint
from export.errors import ValidationError
from export.probes import pair_probes
from runtime.model.activations import activate
from runtime.model.model_dir import ONNX_FILE, Activation
from runtime.scoring.scorer import Scorer
from runtime.model.session import make_session

PARITY_ATOL = 1e-4
# torch.testing's float32 default is 1.3e-6; ONNX Runtime's fused kernels sum in another order, which on a
# 768-wide model moves logits near ±150 by 2.5e-4 (1.7e-6 relative): 1e-5 leaves room without hiding a bug.
LOGITS_RTOL = 1e-5
PROBE_BATCH_SIZES = (1, 2, 17)

Pairs = list[str] | None


@dataclass
class ParityReport:
    atol: float
    rtol_logits: float
    max_abs_diff_logits: float
    logits_share_of_tolerance: float
    max_abs_diff_probabilities: float
    argmax_agreement: float
    texts: int
    pairs: int
    batch_sizes: list[int]
    tokenizer_converted_from: list[str]
    tokenizer_ids_checked: int

    def as_dict(self) -> dict:
        return asdict(self)


def tokenized(checkpoint: Checkpoint, texts: list[str], pairs: Pairs, max_length: int, tensors: str) -> dict:
    """The PyTorch tokenizer as the pipeline calls it: truncated longest first, padded per batch.

    An empty pair is left out, as the pipeline's one call per item does (`[(text, pair)] if pair else [text]`);
    a batched call with the pairs would keep it as a second `[SEP]`.
    """
    items = texts if pairs is None else [(text, pair) if pair else text for text, pair in zip(texts, pairs)]
    return checkpoint.tokenizer.batch_encode_plus(
        items, padding=True, truncation=True, max_length=max_length, return_tensors=tensors
    )


def batched(texts: list[str], pairs: Pairs, batch_size: int) -> list[tuple[list[str], Pairs]]:
    return [
        (texts[start : start + batch_size], None if pairs is None else pairs[start : start + batch_size])
        for start in range(0, len(texts), batch_size)
    ]


def torch_logits(
    checkpoint: Checkpoint, texts: list[str], batch_size: int, max_length: int, pairs: Pairs = None
) -> np.ndarray:
    """What the PyTorch pipeline computes: padded per batch, truncated to the model's max length."""
    chunks = []
    with torch.inference_mode():
        for batch_texts, batch_pairs in batched(texts, pairs, batch_size):
            inputs = tokenized(checkpoint, batch_texts, batch_pairs, max_length, "pt")
            accepted = {name: tensor for name, tensor in inputs.items() if name in checkpoint.forward_inputs}
            chunks.append(checkpoint.model(**accepted).logits.float().numpy())
    return np.concatenate(chunks)


def onnx_logits(
    checkpoint: Checkpoint,
    session: InferenceSession,
    texts: list[str],
    batch_size: int,
    max_length: int,
    pairs: Pairs = None,
) -> np.ndarray:
    """The graph alone, fed the PyTorch tokenizer's tensors, to isolate the export from tokenization."""
    names = [node.name for node in session.get_inputs()]
    chunks = []
    for batch_texts, batch_pairs in batched(texts, pairs, batch_size):
        inputs = tokenized(checkpoint, batch_texts, batch_pairs, max_length, "np")
        chunks.append(session.run(None, {name: inputs[name].astype(np.int64) for name in names})[0])
    return np.concatenate(chunks)


def has_pair_template(checkpoint: Checkpoint) -> bool:
    """Tokenizers that add special tokens between two segments were made for pairs (BERT, RoBERTa, ...)."""
    tokenizer = checkpoint.tokenizer
    return tokenizer.num_special_tokens_to_add(pair=True) > tokenizer.num_special_tokens_to_add(pair=False)


def share_of_tolerance(reference: np.ndarray, exported: np.ndarray, atol: float, rtol: float) -> float:
    """max |diff| / (atol + rtol * |reference|): at most 1 when all logits are close, as torch.testing says."""
    allowed = atol + rtol * np.abs(reference)
    difference = np.abs(reference - exported)
    return float(np.max(difference / np.maximum(allowed, np.finfo(np.float32).tiny)))


def check_converted_tokenizer(checkpoint: Checkpoint, probe_sets: list[tuple[list[str], Pairs]]) -> int:
    """When tokenizer.json was built from slow-tokenizer files, prove it gives the slow tokenizer's ids.

    Returns how many texts (or pairs) were compared; raises ValidationError on the first difference.
    """
    if not checkpoint.tokenizer_converted_from:
        return 0
    original = checkpoint.slow_tokenizer()
    compared = 0
    for texts, pairs in probe_sets:
        # batched and untruncated: a single call drops an empty pair, and slow truncation differs by design
        converted_ids, original_ids = (
            tokenizer(texts, pairs, verbose=False)["input_ids"] for tokenizer in (checkpoint.tokenizer, original)
        )
        for index, (converted, expected) in enumerate(zip(converted_ids, original_ids)):
            if converted != expected:
                shown = repr(texts[index] if pairs is None else (texts[index], pairs[index]))[:80]
                raise ValidationError(
                    f"the tokenizer.json built from {' + '.join(checkpoint.tokenizer_converted_from)} gives "
                    f"{converted[:12]} for {shown}, the original {type(original).__name__} {expected[:12]}; "
                    "add a tokenizer.json that matches the original to the checkpoint"
                )
        compared += len(texts)
    return compared


def validate_model_outputs(
    checkpoint: Checkpoint,
    model_dir: Path,
    texts: list[str],
    activation: Activation,
    max_length: int,
    atol: float = PARITY_ATOL,
    batch_sizes: tuple[int, ...] = PROBE_BATCH_SIZES,
    rtol: float = LOGITS_RTOL,
) -> ParityReport:
    """Compare PyTorch with the graph (logits) and with the runtime's own path (probabilities); raise on excess.

    The runtime path tokenizes with `tokenizers` from tokenizer.json and batches by length, so this also
    proves the saved tokenizer and the batcher give the PyTorch tokenizer's answers. When the tokenizer has
    a pair template, text pairs (long+short, short+long, long+long, empty) are checked the same way. A
    tokenizer converted from slow-tokenizer files must first give the original's ids on the same probes.
    """
    session = make_session(model_dir / ONNX_FILE)
    probe_sets: list[tuple[list[str], Pairs]] = [(texts, None)]
    pair_count = 0
    if has_pair_template(checkpoint):
        firsts, seconds = map(list, zip(*pair_probes(max_length)))
        probe_sets.append((firsts, seconds))
        pair_count = len(firsts)
    tokenizer_ids_checked = check_converted_tokenizer(checkpoint, probe_sets)
    logit_diff = logit_share = prob_diff = 0.0
    agreement = []
    scorer = Scorer(model_dir, verify_sha256=False)
    for batch_size in batch_sizes:
        scorer.max_batch_rows = batch_size
        for probe_texts, probe_pairs in probe_sets:
            reference = torch_logits(checkpoint, probe_texts, batch_size, max_length, probe_pairs)
            exported = onnx_logits(checkpoint, session, probe_texts, batch_size, max_length, probe_pairs)
            logit_diff = max(logit_diff, float(np.abs(reference - exported).max()))
            logit_share = max(logit_share, share_of_tolerance(reference, exported, atol, rtol))
            scores = scorer.score(probe_texts, probe_pairs)
            reference_probabilities = activate(reference, activation)
            prob_diff = max(prob_diff, float(np.abs(reference_probabilities - scores.probabilities).max()))
            agreement.append(float(np.mean(reference_probabilities.argmax(axis=1) == scores.label_ids)))
    report = ParityReport(
        atol=atol,
        rtol_logits=rtol,
        max_abs_diff_logits=logit_diff,
        logits_share_of_tolerance=logit_share,
        max_abs_diff_probabilities=prob_diff,
        argmax_agreement=min(agreement),
        texts=len(texts),
        pairs=pair_count,
        batch_sizes=list(batch_sizes),
        tokenizer_converted_from=checkpoint.tokenizer_converted_from,
        tokenizer_ids_checked=tokenizer_ids_checked,
    )
    if logit_share > 1 or prob_diff > atol:
        raise ValidationError(
            f"{type(checkpoint.model).__name__}'s ONNX output differs from PyTorch: max |diff| logits "
            f"{logit_diff:.2e} ({logit_share:.1f}x the tolerance atol {atol:.0e} + rtol {rtol:.0e} x |logit|), "
            f"probabilities {prob_diff:.2e} (tolerance {atol:.0e})"
        )
    return report
