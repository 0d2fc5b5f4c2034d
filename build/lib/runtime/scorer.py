"""Text classification on an exported model dir: preprocess -> _forward -> postprocess."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.activations import FunctionToApply, activate, checked_function
from runtime.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS, plan_batches
from runtime.model_dir import TOKENIZER_FILE
from runtime.session import OnnxModel
from runtime.tokenization import Encoded, TextEncoder, right_pad

PipelineInput = str | Mapping[str, str]

# The pipeline without `top_k` returns one dict per text; with any `top_k` (even 1) a list per text.
LEGACY_TOP_K = object()


@dataclass
class Scores:
    """Scores for a window of texts, in input order; rows whose text (or pair) was None have `valid` False.

    `probabilities` are the logits after the scorer's function_to_apply (the raw logits when it is "none").
    """

    label_ids: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray
    valid: np.ndarray
    truncated: int
    deduplicated: int = 0  # rows whose item repeated an earlier one of the window: scored once, result copied

    @property
    def best(self) -> np.ndarray:
        """The chosen label's probability per row."""
        return self.probabilities[np.arange(len(self.label_ids)), self.label_ids]


def texts_and_pairs(
    inputs: PipelineInput | None | Sequence[PipelineInput | None],
) -> tuple[list[str | None], list[str | None] | None]:
    """The pipeline's inputs: a text, a `{"text", "text_pair"}` dict, or a list of either (not mixed); None is missing."""
    items = [inputs] if inputs is None or isinstance(inputs, (str, Mapping)) else list(inputs)
    dicts = [item for item in items if item is not None]
    if not any(isinstance(item, Mapping) for item in dicts):
        return items, None
    if not all(isinstance(item, Mapping) and "text" in item for item in dicts):
        raise ValueError('mix of plain texts and dicts: pass every item as {"text": ..., "text_pair": ...}')
    if all("text_pair" not in item for item in dicts):
        return [item and item["text"] for item in items], None
    if not all("text_pair" in item for item in dicts):
        raise ValueError('some items have a "text_pair" and some do not: score pairs and single texts apart')
    return [item and item["text"] for item in items], [item and item["text_pair"] for item in items]


def distinct(keys: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """(position of each distinct key's first occurrence, for every key the number of its distinct key)."""
    numbers: dict[Hashable, int] = {}
    copies = np.fromiter((numbers.setdefault(key, len(numbers)) for key in keys), dtype=np.int64, count=len(keys))
    _, firsts = np.unique(copies, return_index=True)
    return firsts, copies


class Scorer(OnnxModel):
    """A drop-in for `pipeline("text-classification")` that runs an exported model with ONNX Runtime.

    `function_to_apply` (softmax, sigmoid or none) overrides the manifest's, as the pipeline's parameter does.

    >>> Scorer("models/demo")(["I love it"])
    [{'label': 'POSITIVE', 'score': 0.99...}]
    >>> Scorer("models/nli")([{"text": "A man sleeps.", "text_pair": "Someone rests."}])
    [{'label': 'entailment', 'score': 0.9...}]
    """

    def __init__(
        self,
        model_dir: str | Path,
        threads: int | None = None,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        verify_sha256: bool = True,
        function_to_apply: FunctionToApply | None = None,
    ) -> None:
        super().__init__(model_dir, threads=threads, verify_sha256=verify_sha256)
        self.function_to_apply = checked_function(function_to_apply or self.manifest.activation)
        self.labels = self.manifest.labels
        self.max_batch_rows = max_batch_rows
        self.max_batch_tokens = max_batch_tokens
        self.encoder = TextEncoder(
            self.model_dir / TOKENIZER_FILE, self.manifest.max_length, self.manifest.pad_token_id
        )

    def __call__(
        self, inputs: PipelineInput | None | Sequence[PipelineInput | None], top_k: int | None | object = LEGACY_TOP_K
    ) -> list[Any] | dict[str, Any]:
        """The pipeline's output shapes: one `{"label", "score"}` per item, or with `top_k` a sorted list per item.

        Items are texts or `{"text", "text_pair"}` dicts. Unlike the pipeline, which raises on None, a None item
        (or a None text or pair) gives None in its place, as the CLI writes nulls, so answers stay aligned with
        the inputs of a batch job.
        """
        scores = self.score(*texts_and_pairs(inputs))
        ranked = [self.ranked_labels(scores, row) if valid else None for row, valid in enumerate(scores.valid)]
        if top_k is LEGACY_TOP_K:
            answers = [labels[0] if labels else None for labels in ranked]
            return answers[0] if isinstance(inputs, Mapping) else answers  # the pipeline's own quirk
        cut = [labels[:top_k] if labels and top_k is not None else labels for labels in ranked]
        return cut[0] if inputs is None or isinstance(inputs, (str, Mapping)) else cut

    def ranked_labels(self, scores: Scores, row: int) -> list[dict[str, Any]]:
        """Every label of one row, best first, as the pipeline's `top_k=None` lists them."""
        probabilities = scores.probabilities[row]
        order = np.argsort(-probabilities, kind="stable")
        return [{"label": self.labels[i], "score": float(probabilities[i])} for i in order]

    def score(
        self,
        texts: Sequence[str | None],
        pairs: Sequence[str | None] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> Scores:
        """Score a window of texts (or text pairs); sorting by length happens inside, results come back in order.

        Each distinct item is scored once and its result copied to its repeats (review and ticket tables repeat
        short texts a lot). `on_rows` hears how many of the window's rows each model batch finished.
        """
        present_pairs = pairs if pairs is not None else [""] * len(texts)
        valid = np.fromiter(
            (text is not None and pair is not None for text, pair in zip(texts, present_pairs)),
            dtype=bool,
            count=len(texts),
        )
        present = np.flatnonzero(valid)
        firsts, copies = distinct([(texts[i], present_pairs[i]) for i in present])
        unique = present[firsts]
        encoded = self.preprocess(
            [texts[i] for i in unique], None if pairs is None else [pairs[i] for i in unique]
        )
        repeats = np.bincount(copies, minlength=len(unique))
        unique_logits = np.zeros((len(unique), len(self.labels)), dtype=np.float32)
        for batch in plan_batches(encoded.lengths, self.max_batch_rows, self.max_batch_tokens):
            unique_logits[batch] = self._forward(encoded, batch)
            if on_rows is not None:
                on_rows(int(repeats[batch].sum()))
        if on_rows is not None and len(present) < len(texts):
            on_rows(len(texts) - len(present))
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        logits[present] = unique_logits[copies]
        probabilities = self.postprocess(logits)
        probabilities[~valid] = 0.0
        return Scores(
            label_ids=probabilities.argmax(axis=1),
            probabilities=probabilities,
            logits=logits,
            valid=valid,
            truncated=int(encoded.truncated[copies].sum()),
            deduplicated=len(present) - len(unique),
        )

    def preprocess(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        return self.encoder.encode(texts, pairs)

    def _forward(self, encoded: Encoded, batch: np.ndarray) -> np.ndarray:
        length = int(encoded.lengths[batch].max())
        input_ids, attention_mask = self.encoder.pad([encoded.ids[i] for i in batch], length)
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:  # from the tokenizer: the second segment of a pair gets 1
            feed["token_type_ids"] = right_pad([encoded.type_ids[i] for i in batch], length, 0)
        return self.run(feed)

    def postprocess(self, logits: np.ndarray) -> np.ndarray:
        return activate(logits, self.function_to_apply)
