"""Text classification on an exported model dir: preprocess -> _forward -> postprocess."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.activations import activate
from runtime.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS, plan_batches
from runtime.model_dir import TOKENIZER_FILE
from runtime.session import OnnxModel
from runtime.tokenization import Encoded, TextEncoder

# The pipeline without `top_k` returns one dict per text; with any `top_k` (even 1) a list per text.
LEGACY_TOP_K = object()


@dataclass
class Scores:
    """Scores for a window of texts, in input order; rows whose text was None have `valid` False."""

    label_ids: np.ndarray
    probabilities: np.ndarray
    valid: np.ndarray
    truncated: int

    @property
    def best(self) -> np.ndarray:
        """The chosen label's probability per row."""
        return self.probabilities[np.arange(len(self.label_ids)), self.label_ids]


class Scorer(OnnxModel):
    """A drop-in for `pipeline("sentiment-analysis")` that runs an exported model with ONNX Runtime.

    >>> Scorer("models/demo")(["I love it"])
    [{'label': 'POSITIVE', 'score': 0.99...}]
    """

    def __init__(
        self,
        model_dir: str | Path,
        threads: int | None = None,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        verify_sha256: bool = True,
    ) -> None:
        super().__init__(model_dir, threads=threads, verify_sha256=verify_sha256)
        self.labels = self.manifest.labels
        self.max_batch_rows = max_batch_rows
        self.max_batch_tokens = max_batch_tokens
        self.encoder = TextEncoder(
            self.model_dir / TOKENIZER_FILE, self.manifest.max_length, self.manifest.pad_token_id
        )

    def __call__(
        self, inputs: str | None | Sequence[str | None], top_k: int | None | object = LEGACY_TOP_K
    ) -> list[Any]:
        """The pipeline's output shapes: one `{"label", "score"}` per text, or with `top_k` a sorted list per text.

        Unlike the pipeline, which raises on None, a None text gives None in its place (as the CLI writes
        nulls), so results stay aligned with the inputs of a batch job.
        """
        single = isinstance(inputs, str) or inputs is None
        texts = [inputs] if single else list(inputs)
        scores = self.score(texts)
        ranked = [self.ranked_labels(scores, row) if valid else None for row, valid in enumerate(scores.valid)]
        if top_k is LEGACY_TOP_K:
            return [labels[0] if labels else None for labels in ranked]
        cut = [labels[:top_k] if labels and top_k is not None else labels for labels in ranked]
        return cut[0] if single else cut

    def ranked_labels(self, scores: Scores, row: int) -> list[dict[str, Any]]:
        """Every label of one row, best first, as the pipeline's `top_k=None` lists them."""
        probabilities = scores.probabilities[row]
        order = np.argsort(-probabilities, kind="stable")
        return [{"label": self.labels[i], "score": float(probabilities[i])} for i in order]

    def score(self, texts: Sequence[str | None]) -> Scores:
        """Score a window of texts; sorting by length happens inside the window, results come back in order."""
        valid = np.fromiter((text is not None for text in texts), dtype=bool, count=len(texts))
        probabilities = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        present = np.flatnonzero(valid)
        encoded = self.preprocess([texts[i] for i in present])
        for batch in plan_batches(encoded.lengths, self.max_batch_rows, self.max_batch_tokens):
            logits = self._forward(encoded, batch)
            probabilities[present[batch]] = self.postprocess(logits)
        return Scores(
            label_ids=probabilities.argmax(axis=1),
            probabilities=probabilities,
            valid=valid,
            truncated=int(encoded.truncated.sum()),
        )

    def preprocess(self, texts: list[str]) -> Encoded:
        return self.encoder.encode(texts)

    def _forward(self, encoded: Encoded, batch: np.ndarray) -> np.ndarray:
        input_ids, attention_mask = self.encoder.pad(
            [encoded.ids[i] for i in batch], int(encoded.lengths[batch].max())
        )
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:  # BERT takes them (one segment: zeros), DistilBERT does not
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return self.run(feed)

    def postprocess(self, logits: np.ndarray) -> np.ndarray:
        return activate(logits, self.manifest.activation)
