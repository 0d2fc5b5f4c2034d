"""Zero-shot classification as `pipeline("zero-shot-classification")` does it, on an exported NLI model.

Each text is the premise of one (text, hypothesis) pair per candidate label, the hypothesis being the template
filled with the label. All pairs of a window go through the scorer's own length-sorted, deduplicated batches as raw
logits; the entailment logits then become scores: a softmax across the labels (single-label), or per label a
softmax of [contradiction, entailment] (multi-label, and always with one label), as the pipeline computes them.

Texts past the max length lose tokens from the text, never the hypothesis: the scorer cuts the longest side first,
which for a hypothesis shorter than half the max length is what the pipeline's `only_first` cuts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from runtime.errors import ConfigurationError, ModelError
from runtime.model.model_dir import Manifest

if TYPE_CHECKING:  # scorer.py imports this module
    from runtime.scoring.scorer import Scores

Task = Literal["text-classification", "zero-shot-classification"]
TASKS: tuple[Task, ...] = ("text-classification", "zero-shot-classification")
ZERO_SHOT: Task = "zero-shot-classification"
DEFAULT_TEMPLATE = "This example is {}."


@dataclass(frozen=True)
class NliIds:
    """Which logits of the model are entailment and contradiction (the manifest's record of the pipeline's pick)."""

    entailment: int
    contradiction: int

    @classmethod
    def of(cls, manifest: Manifest, model_dir: object) -> NliIds:
        """The model's NLI ids, or a ModelError: a model with no entailment label cannot answer zero-shot."""
        if manifest.entailment_id is None or manifest.contradiction_id is None:
            raise ModelError(
                f"model {model_dir} has no entailment label (its labels are {', '.join(manifest.labels)}); zero-shot "
                "classification needs an NLI model whose labels name entailment (re-export it if they do)"
            )
        return cls(manifest.entailment_id, manifest.contradiction_id)


@dataclass(frozen=True)
class ZeroShot:
    """The question asked of every text: its candidate labels, the hypothesis template and multi-label or not."""

    candidate_labels: tuple[str, ...]
    hypothesis_template: str = DEFAULT_TEMPLATE
    multi_label: bool = False

    @classmethod
    def of(cls, candidate_labels: str | Sequence[str] | None, hypothesis_template: str, multi_label: bool) -> ZeroShot:
        """Checked as the pipeline checks it: a string is comma-separated labels; no labels, or a template that
        the labels do not change (no `{}`), is a ConfigurationError."""
        if isinstance(candidate_labels, str):
            candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
        labels = tuple(candidate_labels or ())
        if not labels or not all(isinstance(label, str) for label in labels):
            raise ConfigurationError(f"zero-shot needs at least one candidate label (strings), not {candidate_labels!r}")
        try:
            filled = hypothesis_template.format(labels[0])
        except (IndexError, KeyError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"hypothesis template {hypothesis_template!r} cannot be filled ({exc})") from None
        if filled == hypothesis_template:
            raise ConfigurationError(
                f"hypothesis template {hypothesis_template!r} has no {{}} for the label, e.g. {DEFAULT_TEMPLATE!r}"
            )
        return cls(labels, hypothesis_template, bool(multi_label))

    @property
    def hypotheses(self) -> list[str]:
        return [self.hypothesis_template.format(label) for label in self.candidate_labels]


def label_scores(logits: np.ndarray, nli: NliIds, multi_label: bool) -> np.ndarray:
    """[texts, labels, model labels] logits -> [texts, labels] scores, by the pipeline's rule (one label counts as
    multi-label). The max is taken out before exp: equal to the pipeline's where its exp does not overflow."""
    if multi_label or logits.shape[1] == 1:
        chosen = logits[..., [nli.contradiction, nli.entailment]]
        return softmax(chosen)[..., 1]
    return softmax(logits[..., nli.entailment])


def softmax(values: np.ndarray) -> np.ndarray:
    exp = np.exp(values - values.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def best_first(scores: np.ndarray) -> np.ndarray:
    """Label positions per row, best first, ordered exactly as the pipeline orders them: its ascending argsort,
    reversed, so tied labels come last-given first."""
    return np.argsort(scores, axis=-1)[..., ::-1]


def merged_hypotheses(hypotheses: list[str], token_ids: list[list[int]]) -> list[str]:
    """Hypotheses that tokenize alike (labels differing only in case, for an uncased tokenizer) as one string.

    The pipeline gives such labels bit-equal scores, a tie it orders by position; as one string they are one pair
    to the scorer's dedup, so they tie here too (and are scored once).
    """
    first: dict[tuple[int, ...], str] = {}
    return [first.setdefault(tuple(ids), hypothesis) for hypothesis, ids in zip(hypotheses, token_ids)]


def score_zero_shot(
    score: Callable[..., Scores],
    nli: NliIds,
    texts: Sequence[str | None],
    hypotheses: list[str],
    multi_label: bool,
    on_rows: Callable[[int], None] | None = None,
    batch_rows: int | None = None,
) -> Scores:
    """Scores of a window of texts (None: no answer) against one hypothesis per candidate label: `probabilities`
    are each label's score in the order given, `logits` its entailment logit, `label_ids` the best label's position;
    `truncated` counts texts cut with at least one hypothesis. `score` is the scorer's own `score`, so the pairs
    share its batches and dedup."""
    n_labels = len(hypotheses)
    present = [i for i, text in enumerate(texts) if text is not None]
    done = [0, 0]  # pairs finished, rows reported

    def pairs_done(pairs: int) -> None:
        done[0] += pairs
        if on_rows is not None and done[0] // n_labels > done[1]:
            on_rows(done[0] // n_labels - done[1])
            done[1] = done[0] // n_labels

    premises = [texts[i] for i in present for _ in range(n_labels)]
    grid = score(premises, hypotheses * len(present), on_rows=pairs_done, function_to_apply="none", batch_rows=batch_rows)
    logits = grid.logits.reshape(len(present), n_labels, grid.logits.shape[1])
    valid = np.zeros(len(texts), dtype=bool)
    valid[present] = True
    probabilities = np.zeros((len(texts), n_labels), dtype=np.float32)
    probabilities[present] = label_scores(logits, nli, multi_label)
    entailment = np.zeros_like(probabilities)
    entailment[present] = logits[..., nli.entailment]
    cut = np.zeros(len(texts), dtype=bool)
    cut[present] = grid.truncated_rows.reshape(len(present), n_labels).any(axis=1)
    if on_rows is not None and len(present) < len(texts):
        on_rows(len(texts) - len(present))
    return replace(
        grid,
        label_ids=best_first(probabilities)[:, 0],
        probabilities=probabilities,
        logits=entailment,
        valid=valid,
        truncated=int(cut.sum()),
        truncated_rows=cut,
        chunks=valid.astype(np.int32),
        deduplicated=len(present) - len({texts[i] for i in present}),
    )


def answers(texts: Sequence[str | None], scores: Scores, question: ZeroShot) -> list[dict[str, Any] | None]:
    """The pipeline's dicts, one per text (None for a None text): the sequence, its labels best first, their scores."""
    order = best_first(scores.probabilities)
    labels = question.candidate_labels
    return [
        {
            "sequence": text,
            "labels": [labels[i] for i in order[row]],
            "scores": [float(scores.probabilities[row, i]) for i in order[row]],
        }
        if scores.valid[row]
        else None
        for row, text in enumerate(texts)
    ]
