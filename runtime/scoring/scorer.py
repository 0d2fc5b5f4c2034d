"""Text classification on an exported model dir: preprocess -> _forward -> postprocess."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.model.activations import FunctionToApply, activate, checked_function
from runtime.text.batching import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BATCH_TOKENS, plan_batches
from runtime.text.chunking import DEFAULT_MAX_CHUNKS, ChunkAggregate, LongText, LongTextPolicy, aggregate_windows
from runtime.errors import ConfigurationError
from runtime.model.model_dir import TOKENIZER_FILE
from runtime.model.precision import MIN_AGREEMENT, PrecisionChoice
from runtime.scoring.precision_gate import choose_precision
from runtime.model.session import OnnxModel
from runtime.text.tokenization import Encoded, TextEncoder, right_pad
from runtime.scoring.zero_shot import (
    DEFAULT_TEMPLATE,
    TASKS,
    ZERO_SHOT,
    NliIds,
    Task,
    ZeroShot,
    answers,
    merged_hypotheses,
    score_zero_shot,
)

PipelineInput = str | Mapping[str, str]
Truncation = bool | str

# The pipeline without `top_k` returns one dict per text; with any `top_k` (even 1) a list per text.
LEGACY_TOP_K = object()
# The pipeline's `truncation` values: what we always do (cut the longest side first), or never cut.
TRUNCATE = (True, "longest_first")
DO_NOT_TRUNCATE = (False, "do_not_truncate")
# Chunk mode tokenizes and scores a window's rows in groups of about this many characters, so a window of
# very long rows holds a bounded number of token windows at a time.
GROUP_CHARS = 4 << 20


@dataclass
class Scores:
    """Scores for a window of texts, in input order; rows whose text (or pair) was None have `valid` False.

    `probabilities` are the logits after the scorer's function_to_apply (the raw logits when it is "none");
    in chunk mode both are aggregated over the row's `chunks` windows (0 for a None row).
    """

    label_ids: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray
    valid: np.ndarray
    truncated: int
    chunks: np.ndarray
    truncated_rows: np.ndarray  # per row: tokens were lost (past the max length, or past max_chunks); a cache keeps it
    deduplicated: int = 0  # rows whose item repeated an earlier one of the window: scored once, result copied
    cached: int = 0  # rows whose outputs came from a score cache, not the model

    @property
    def best(self) -> np.ndarray:
        """The chosen label's probability per row."""
        return self.probabilities[np.arange(len(self.label_ids)), self.label_ids]


def texts_and_pairs(
    inputs: PipelineInput | None | Sequence[PipelineInput | None],
) -> tuple[list[str | None], list[str | None] | None]:
    """The pipeline's inputs: a text, a `{"text", "text_pair"}` dict, or a list of either (not mixed); None is missing.

    Anything else is a TypeError naming the first item that is not a text, by index and type.
    """
    single = inputs is None or isinstance(inputs, (str, Mapping)) or not isinstance(inputs, Iterable)
    items = [inputs] if single else list(inputs)
    check_texts(items, "", (str, Mapping))
    dicts = [item for item in items if item is not None]
    if not any(isinstance(item, Mapping) for item in dicts):
        return items, None
    if not all(isinstance(item, Mapping) and "text" in item for item in dicts):
        raise ValueError('mix of plain texts and dicts: pass every item as {"text": ..., "text_pair": ...}')
    texts = check_texts([item and item["text"] for item in items], "'s text")
    if all("text_pair" not in item for item in dicts):
        return texts, None
    if not all("text_pair" in item for item in dicts):
        raise ValueError('some items have a "text_pair" and some do not: score pairs and single texts apart')
    return texts, check_texts([item and item["text_pair"] for item in items], "'s text_pair")


def check_texts(values: list[Any], what: str, allowed: tuple[type, ...] = (str,)) -> list[Any]:
    """`values` if each is None or of an allowed type; else a TypeError naming the first that is not."""
    for index, value in enumerate(values):
        if value is not None and not isinstance(value, allowed):
            raise TypeError(
                f"item {index}{what} is of type {type(value).__name__}, not str: pass texts as str "
                '(or items as {"text": ..., "text_pair": ...} dicts of str)'
            )
    return values


def distinct(keys: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """(position of each distinct key's first occurrence, for every key the number of its distinct key)."""
    numbers: dict[Hashable, int] = {}
    copies = np.fromiter((numbers.setdefault(key, len(numbers)) for key in keys), dtype=np.int64, count=len(keys))
    _, firsts = np.unique(copies, return_index=True)
    return firsts, copies


class Scorer(OnnxModel):
    """A drop-in for `pipeline("text-classification")` that runs an exported model with ONNX Runtime.

    `function_to_apply` (softmax, sigmoid or none) overrides the manifest's, as the pipeline's parameter does;
    `top_k` sets the answers' shape as the pipeline's constructor argument does (a call's `top_k` overrides it).
    `long_text="chunk"` scores texts past the max length as windows overlapping by `chunk_stride` tokens
    (default: a quarter of a window), aggregated by `chunk_aggregate` (mean or max), at most `max_chunks` each.
    `precision` (fp32, bf16, int8 or auto; default: the graph's own) scores only once it agrees with fp32 on at
    least `min_agreement` of the probes plus `agreement_texts` (runtime/model/precision.py).
    `task="zero-shot-classification"` (an NLI model) answers as that pipeline does (runtime/scoring/zero_shot.py).

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
        long_text: LongText = "truncate",
        chunk_stride: int | None = None,
        chunk_aggregate: ChunkAggregate = "mean",
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        top_k: int | None | object = LEGACY_TOP_K,
        precision: PrecisionChoice | None = None,
        agreement_texts: Sequence[str] = (),
        min_agreement: float = MIN_AGREEMENT,
        task: Task = "text-classification",
    ) -> None:
        super().__init__(model_dir, threads=threads, verify_sha256=verify_sha256)
        if task not in TASKS:
            raise ConfigurationError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
        self.nli = NliIds.of(self.manifest, model_dir) if task == ZERO_SHOT else None
        self.top_k = top_k
        self.function_to_apply = checked_function(function_to_apply or self.manifest.activation)
        self.labels = self.manifest.labels
        self.max_batch_rows = max_batch_rows
        self.max_batch_tokens = max_batch_tokens
        self.encoder = TextEncoder(self.model_dir / TOKENIZER_FILE, self.manifest.max_length, self.manifest.pad_token_id)
        self.long_text = LongTextPolicy(long_text, chunk_stride, chunk_aggregate, max_chunks).for_model(
            self.encoder.window_tokens
        )
        self.encoder.use_windows(self.long_text.stride, self.long_text.max_chunks)
        self.chosen_precision = choose_precision(
            self, precision, [*self.manifest.probes, *agreement_texts], min_agreement, self.model_probabilities
        )

    def __call__(
        self,
        inputs: PipelineInput | None | Sequence[PipelineInput | None],
        top_k: int | None | object = LEGACY_TOP_K,
        function_to_apply: FunctionToApply | None = None,
        truncation: Truncation = True,
        batch_size: int | None = None,
        *,
        candidate_labels: str | Sequence[str] | None = None,
        hypothesis_template: str = DEFAULT_TEMPLATE,
        multi_label: bool = False,
    ) -> list[Any] | dict[str, Any]:
        """The pipeline's output shapes: one `{"label", "score"}` per item, or with `top_k` a sorted list per item.

        Items are texts or `{"text", "text_pair"}` dicts. Unlike the pipeline, which raises on None, a None item
        (or a None text or pair) gives None in its place, as the CLI writes nulls, so answers stay aligned with
        the inputs of a batch job. The pipeline's call arguments mean what they mean there: `function_to_apply`
        for this call, `batch_size` rows per model run. Texts past the max length are always cut as the
        pipeline's `truncation=True` (or "longest_first") cuts them; `truncation=False` (or "do_not_truncate")
        asks that nothing be cut, so such a text is a ValueError naming it (the pipeline fails in the model).
        With task="zero-shot-classification", `candidate_labels`, `hypothesis_template` and `multi_label` ask the
        zero-shot pipeline's question and the answers are its `{"sequence", "labels", "scores"}` dicts.
        """
        if self.nli is not None:
            if top_k is not LEGACY_TOP_K or function_to_apply is not None or truncation not in TRUNCATE:
                raise ConfigurationError("zero-shot answers every label, scored its own way: drop top_k, "
                                         "function_to_apply and truncation")
            question = ZeroShot.of(candidate_labels, hypothesis_template, multi_label)
            return self.classify_zero_shot(inputs, question, batch_size)
        if candidate_labels is not None:
            raise ConfigurationError("candidate_labels ask a zero-shot question: load with task='zero-shot-classification'")
        texts, pairs = texts_and_pairs(inputs)
        if truncation in DO_NOT_TRUNCATE:
            self.refuse_truncation(texts, pairs)
        elif truncation not in TRUNCATE:
            raise ValueError(
                f"truncation must be True, 'longest_first', False or 'do_not_truncate', not {truncation!r}"
            )
        if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
            raise ValueError(f"batch_size must be a whole number of rows above 0, not {batch_size!r}")
        scores = self.score(texts, pairs, function_to_apply=function_to_apply, batch_rows=batch_size)
        ranked = [self.ranked_labels(scores, row) if valid else None for row, valid in enumerate(scores.valid)]
        given = top_k is not LEGACY_TOP_K
        top_k = top_k if given else self.top_k
        if top_k is LEGACY_TOP_K:
            answers = [labels[0] if labels else None for labels in ranked]
            return answers[0] if isinstance(inputs, Mapping) else answers  # the pipeline's own quirk
        cut = [labels[:top_k] if labels and top_k is not None else labels for labels in ranked]
        # The pipeline's quirk again: a text with the constructor's top_k (not the call's) gets a list of one list.
        single = inputs is None or isinstance(inputs, Mapping) or (isinstance(inputs, str) and given)
        return cut[0] if single else cut

    def classify_zero_shot(
        self, inputs: str | None | Sequence[str | None], question: ZeroShot, batch_size: int | None = None
    ) -> Any:
        """One dict for a text, a list for a list of texts, as the zero-shot pipeline answers (None for None)."""
        single = inputs is None or isinstance(inputs, str)
        texts = [inputs] if single else check_texts(list(inputs), "")
        found = answers(texts, self.score_zero_shot(texts, question, batch_rows=batch_size), question)
        return found[0] if single else found

    def score_zero_shot(
        self,
        texts: Sequence[str | None],
        question: ZeroShot,
        on_rows: Callable[[int], None] | None = None,
        batch_rows: int | None = None,
    ) -> Scores:
        """A window of texts against the question's candidate labels (runtime/scoring/zero_shot.py)."""
        if self.nli is None:
            raise ConfigurationError("zero-shot needs the scorer loaded with task='zero-shot-classification'")
        if self.long_text.chunked:
            raise ConfigurationError("chunk mode scores single texts; zero-shot scores pairs: use long_text='truncate'")
        hypotheses = question.hypotheses
        hypotheses = merged_hypotheses(hypotheses, [part.ids for part in self.encoder.encode_parts(hypotheses)])
        return score_zero_shot(self.score, self.nli, texts, hypotheses, question.multi_label, on_rows, batch_rows)

    def refuse_truncation(self, texts: Sequence[str | None], pairs: Sequence[str | None] | None) -> None:
        """A ValueError naming the first item that would lose tokens (past the max length, or past max_chunks)."""
        present = [i for i, text in enumerate(texts) if text is not None and (pairs is None or pairs[i] is not None)]
        encoded = self.preprocess([texts[i] for i in present], None if pairs is None else [pairs[i] for i in present])
        cut = np.flatnonzero(encoded.truncated)
        if len(cut):
            limit = f"{self.encoder.max_length} tokens" + (
                f" in {self.long_text.max_chunks} windows" if self.long_text.chunked else ""
            )
            raise ValueError(
                f"item {present[cut[0]]} is longer than the model's {limit} and truncation=False; "
                "pass truncation=True to cut it as the pipeline's tokenizer does"
            )

    def token_digest(self, texts: Sequence[str]) -> str:
        """sha256 of the token ids (and types) that `texts` reach the model as: recorded at export for the probes
        and compared by `runtime.verify`, so a tokenizer that encodes differently on a host is caught."""
        encoded = self.preprocess(list(texts))
        return hashlib.sha256(json.dumps([encoded.ids, encoded.type_ids]).encode()).hexdigest()

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
        *,
        function_to_apply: FunctionToApply | None = None,
        batch_rows: int | None = None,
    ) -> Scores:
        """Score a window of texts (or text pairs); sorting by length happens inside, results come back in order.

        Each distinct item is scored once and its result copied to its repeats (review and ticket tables repeat
        short texts a lot). `on_rows` hears how many of the window's rows each model batch finished.
        `function_to_apply` and `batch_rows` override the scorer's own for this window.
        """
        function = checked_function(function_to_apply or self.function_to_apply)
        if pairs is not None and self.long_text.chunked:
            raise ConfigurationError("chunk mode scores single texts; score text pairs with long_text='truncate'")
        present_pairs = pairs if pairs is not None else [""] * len(texts)
        valid = np.fromiter(
            (text is not None and pair is not None for text, pair in zip(texts, present_pairs)),
            dtype=bool,
            count=len(texts),
        )
        present = np.flatnonzero(valid)
        firsts, copies = distinct([(texts[i], present_pairs[i]) for i in present])
        unique = present[firsts]
        repeats = np.bincount(copies, minlength=len(unique))
        logits = np.zeros((len(unique), len(self.labels)), dtype=np.float32)
        probabilities = np.zeros_like(logits)
        chunks = np.zeros(len(unique), dtype=np.int32)
        truncated = np.zeros(len(unique), dtype=bool)
        for group in self.row_groups(texts, unique):
            rows = unique[group]
            encoded = self.preprocess([texts[i] for i in rows], None if pairs is None else [pairs[i] for i in rows])
            window_logits = np.empty((len(encoded.ids), len(self.labels)), dtype=np.float32)
            last_window = np.r_[encoded.rows[1:] != encoded.rows[:-1], True]
            batches = plan_batches(encoded.lengths, batch_rows or self.max_batch_rows, self.max_batch_tokens)
            feeds = (self.feed(encoded, batch) for batch in batches)  # padded lazily, while earlier batches run
            for batch, batch_logits in zip(batches, self.backend.run_all(feeds)):
                window_logits[batch] = batch_logits
                if on_rows is not None:
                    on_rows(int(repeats[group[encoded.rows[batch[last_window[batch]]]]].sum()))
            logits[group], probabilities[group] = self.postprocess(window_logits, encoded.rows, len(group), function)
            chunks[group] = encoded.chunks
            truncated[group] = encoded.truncated
        if on_rows is not None and len(present) < len(texts):
            on_rows(len(texts) - len(present))
        return Scores(
            label_ids=scatter(probabilities, present, copies, len(texts)).argmax(axis=1),
            probabilities=scatter(probabilities, present, copies, len(texts)),
            logits=scatter(logits, present, copies, len(texts)),
            valid=valid,
            truncated=int(truncated[copies].sum()),
            chunks=scatter(chunks, present, copies, len(texts)),
            truncated_rows=scatter(truncated, present, copies, len(texts)),
            deduplicated=len(present) - len(unique),
        )

    def row_groups(self, texts: Sequence[str | None], rows: np.ndarray) -> list[np.ndarray]:
        """Positions in `rows`: all at once, or in chunk mode groups of about GROUP_CHARS characters each."""
        if not self.long_text.chunked:
            return [np.arange(len(rows))]
        sizes = np.fromiter((min(len(texts[i]), self.encoder.char_budget) for i in rows), dtype=np.int64, count=len(rows))
        group_of_row = (np.cumsum(sizes) - sizes) // GROUP_CHARS
        return [np.flatnonzero(group_of_row == group) for group in np.unique(group_of_row)]

    def model_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities under the model's own activation, whatever `function_to_apply` the caller chose."""
        return activate(self.score(texts).logits, self.manifest.activation)

    def preprocess(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        return self.encoder.encode(texts, pairs)

    def feed(self, encoded: Encoded, batch: np.ndarray) -> dict[str, np.ndarray]:
        """One batch's padded model inputs."""
        length = int(encoded.lengths[batch].max())
        input_ids, attention_mask = self.encoder.pad([encoded.ids[i] for i in batch], length)
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:  # from the tokenizer: the second segment of a pair gets 1
            feed["token_type_ids"] = right_pad([encoded.type_ids[i] for i in batch], length, 0)
        return feed

    def postprocess(
        self, window_logits: np.ndarray, rows: np.ndarray, n_rows: int, function: FunctionToApply
    ) -> tuple[np.ndarray, np.ndarray]:
        """(logits, probabilities) per row: the windows' values, aggregated per row in chunk mode."""
        how = self.long_text.aggregate
        window_probabilities = activate(window_logits, function)
        return aggregate_windows(window_logits, rows, n_rows, how), aggregate_windows(
            window_probabilities, rows, n_rows, how
        )


def scatter(values: np.ndarray, present: np.ndarray, copies: np.ndarray, n_rows: int) -> np.ndarray:
    """Per-distinct-item values back to every row of the window (zeros where the row had no text)."""
    result = np.zeros((n_rows, *values.shape[1:]), dtype=values.dtype)
    result[present] = values[copies]
    return result
