"""Zero-shot classification equals `pipeline("zero-shot-classification")` on the tiny NLI-shaped BERT (labels
contradiction, entailment, neutral), computed in the same test: Python API, CLI, and misuse as one error line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import Scorer
from runtime.errors import ConfigurationError, ModelError
from runtime.model.model_dir import (
    IDENTITY_FIELDS,
    Manifest,
    model_identity,
    read_manifest,
)
from tests.support.cli import assert_clean_error, score, write

TOLERANCE = 1e-4
ZERO_SHOT = "zero-shot-classification"
TEXTS = [
    "I watched the football match last night and the keeper was brilliant.",
    "Parliament passed the budget after a long vote.",
    "The new phone has a faster chip and a better camera.",
    "Rain all week, then sun on Sunday.",
]
LABELS = ["sports", "politics", "technology", "weather", "cooking and recipes for the family"]


@pytest.fixture(scope="module")
def nli(models) -> tuple[Path, Path]:
    """(PyTorch checkpoint, exported model dir) of the NLI-shaped BERT."""
    return models["bert"]


@pytest.fixture(scope="module")
def pipe(nli):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    checkpoint = nli[0]
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    return pipeline(ZERO_SHOT, model=model, tokenizer=AutoTokenizer.from_pretrained(checkpoint))


@pytest.fixture(scope="module")
def scorer(nli) -> Scorer:
    return Scorer(nli[1], task=ZERO_SHOT)


def assert_same(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    """Same sequences, the same labels in the same order, scores within TOLERANCE."""
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        assert mine["sequence"] == reference["sequence"]
        assert mine["labels"] == reference["labels"], (mine, reference)
        np.testing.assert_allclose(mine["scores"], reference["scores"], atol=TOLERANCE, rtol=0)


def spread(answers: list[dict[str, Any]]) -> float:
    """The smallest gap between a text's best and worst label: above TOLERANCE, a mixed-up label would show."""
    return min(answer["scores"][0] - answer["scores"][-1] for answer in answers)


def test_the_manifest_records_the_pipelines_nli_ids(models):
    nli_manifest = read_manifest(models["bert"][1])
    assert (nli_manifest.entailment_id, nli_manifest.contradiction_id) == (1, 0)  # the pipeline's: entail*, then id 0
    sentiment = read_manifest(models["distilbert"][1])
    assert (sentiment.entailment_id, sentiment.contradiction_id) == (None, None)


def test_dirs_exported_before_the_nli_ids_keep_their_identity_and_the_ids_enter_it_when_set():
    manifest = Manifest("c", "bert", ["a", "b"], "softmax", 8, ["input_ids"], 17, {}, files={"model.onnx": "0"})
    before = {"files": manifest.files, **{name: getattr(manifest, name) for name in IDENTITY_FIELDS}}
    assert model_identity(manifest) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    nli = replace(manifest, entailment_id=1, contradiction_id=0)
    assert model_identity(nli) not in (model_identity(manifest), model_identity(replace(nli, entailment_id=0)))


@pytest.mark.parametrize("multi_label", [False, True])
def test_many_labels_equal_the_pipeline(scorer, pipe, multi_label):
    ours = scorer(TEXTS, candidate_labels=LABELS, multi_label=multi_label, batch_size=3)  # pairs of a text split
    theirs = pipe(TEXTS, candidate_labels=LABELS, multi_label=multi_label)
    assert_same(ours, theirs)
    assert spread(theirs) > TOLERANCE
    if not multi_label:
        assert all(abs(sum(answer["scores"]) - 1) < 1e-5 for answer in ours)


def test_one_label_is_entailment_against_contradiction_as_in_the_pipeline(scorer, pipe):
    ours = scorer(TEXTS, candidate_labels=["sports"])
    theirs = pipe(TEXTS, candidate_labels=["sports"])
    assert_same(ours, theirs)
    assert all(answer["scores"][0] < 1 for answer in ours)  # not a softmax over one label, which is always 1


def test_a_single_text_gets_one_dict_and_a_custom_template_and_label_string_are_the_pipelines(scorer, pipe):
    template = "The topic of this text is {}."
    ours = scorer(TEXTS[1], candidate_labels="sports, politics,technology", hypothesis_template=template)
    theirs = pipe(TEXTS[1], candidate_labels="sports, politics,technology", hypothesis_template=template)
    assert isinstance(ours, dict)
    assert_same([ours], [theirs])
    default = scorer(TEXTS[1], candidate_labels=["sports", "politics", "technology"])
    assert default["scores"] != ours["scores"]  # the template reaches the model


def test_ties_are_ordered_as_the_pipeline_orders_them(scorer, pipe):
    """A template that shows no label makes every hypothesis the same: all labels tie, and the pipeline lists
    tied labels last-given first (its ascending argsort, reversed)."""
    template = "This example is {:.0}."
    for labels in (["a", "b", "c"], ["zebra", "apple", "mango", "kiwi"]):
        ours = scorer(TEXTS[:2], candidate_labels=labels, hypothesis_template=template)
        theirs = pipe(TEXTS[:2], candidate_labels=labels, hypothesis_template=template)
        assert_same(ours, theirs)
        assert ours[0]["labels"] == labels[::-1]


def test_labels_that_tokenize_alike_tie_as_in_the_pipeline(scorer, pipe):
    """The uncased tokenizer reads "Sports" and "sports" (and "café"/"cafe") alike: the pipeline's scores tie."""
    labels = ["Sports", "politics", "sports", "café", "cafe", "SPORTS"]
    ours = scorer(TEXTS, candidate_labels=labels)
    theirs = pipe(TEXTS, candidate_labels=labels)
    assert_same(ours, theirs)
    for answer in ours:  # each tie together, the label given last first
        for tied in (["SPORTS", "sports", "Sports"], ["cafe", "café"]):
            first = answer["labels"].index(tied[0])
            assert answer["labels"][first : first + len(tied)] == tied


def test_a_long_text_loses_its_own_tokens_as_in_the_pipeline(scorer, pipe):
    long_text = " ".join(["the match went on and on"] * 150)  # about 900 tokens: cut to the max length
    assert_same(scorer([long_text], candidate_labels=LABELS[:3]), pipe([long_text], candidate_labels=LABELS[:3]))


def test_null_texts_answer_none_and_empty_texts_are_scored_as_the_pair_the_tokenizer_makes(scorer, pipe):
    """The pipeline refuses an empty text; we score ("", hypothesis) as its tokenizer encodes it, checked against
    the PyTorch model through the pipeline's own forward and postprocess."""
    import torch

    with pytest.raises(ValueError):
        pipe("", candidate_labels=LABELS)
    ours = scorer([None, "", TEXTS[0]], candidate_labels=LABELS)
    assert ours[0] is None
    assert_same([ours[2]], [pipe(TEXTS[0], candidate_labels=LABELS)])
    outputs = []
    with torch.no_grad():
        for index, label in enumerate(LABELS):
            encoded = pipe.tokenizer([["", f"This example is {label}."]], return_tensors="pt", truncation="only_first")
            step = {"candidate_label": label, "sequence": "", "is_last": index == len(LABELS) - 1, **encoded}
            outputs.append(pipe._forward(step))
    assert_same([ours[1]], [pipe.postprocess(outputs)])
    assert scorer(None, candidate_labels=LABELS) is None


def test_misuse_is_a_clear_error(nli, models, scorer):
    with pytest.raises(ModelError, match="no entailment label"):
        Scorer(models["distilbert"][1], task=ZERO_SHOT)
    with pytest.raises(ConfigurationError, match="at least one candidate label"):
        scorer(TEXTS, candidate_labels=[])
    with pytest.raises(ConfigurationError, match="at least one candidate label"):
        scorer(TEXTS, candidate_labels=" , ")
    with pytest.raises(ConfigurationError, match="has no {}"):
        scorer(TEXTS, candidate_labels=LABELS, hypothesis_template="This example is about it.")
    with pytest.raises(ConfigurationError, match="task='zero-shot-classification'"):
        Scorer(nli[1])(TEXTS, candidate_labels=LABELS)
    with pytest.raises(ConfigurationError, match="drop top_k"):
        scorer(TEXTS, candidate_labels=LABELS, top_k=1)
    with pytest.raises(ConfigurationError, match="task must be one of"):
        Scorer(nli[1], task="summarization")
    with pytest.raises(ConfigurationError, match="chunk mode"):
        Scorer(nli[1], task=ZERO_SHOT, long_text="chunk")(TEXTS, candidate_labels=LABELS)


def footer_of(path: Path) -> dict[str, Any]:
    return json.loads(pq.read_metadata(path).metadata[b"runtime.score"])


def test_the_cli_writes_the_pipelines_answers_and_records_the_question(nli, pipe, tmp_path):
    texts = [TEXTS[0], None, TEXTS[1], TEXTS[0], TEXTS[2]]
    src = write(tmp_path / "in.parquet", pa.table({"id": list(range(len(texts))), "text": texts}))
    dst = tmp_path / "out.parquet"
    labels = "sports,politics,technology"
    result = score(nli[1], src, dst, "--candidate-labels", labels, "--multi-label")
    assert result.returncode == 0, result.stderr
    assert "(1 null, 0 truncated, 1 deduplicated)" in result.stdout
    table = pq.read_table(dst)
    assert table.column_names == ["id", "text", "label", "score", "labels", "scores"]
    assert table.schema.field("labels").type == pa.list_(pa.string())
    assert table.schema.field("scores").type == pa.list_(pa.float32())
    rows = table.to_pylist()
    assert rows[1]["label"] is None and rows[1]["labels"] is None and rows[1]["scores"] is None
    for row in rows:
        if row["text"] is None:
            continue
        reference = pipe(row["text"], candidate_labels=labels, multi_label=True)
        assert_same([{"sequence": row["text"], "labels": row["labels"], "scores": row["scores"]}], [reference])
        assert row["label"] == reference["labels"][0] and row["score"] == row["scores"][0]
    footer = footer_of(dst)
    assert footer["candidate_labels"] == ["sports", "politics", "technology"]
    assert footer["hypothesis_template"] == "This example is {}." and footer["multi_label"] is True
    assert footer["distribution"]["labels"] == ["sports", "politics", "technology"]
    assert footer["distribution"]["scored_rows"] == 4


def test_resume_trusts_an_output_only_for_the_same_question(nli, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    dst = tmp_path / "out.parquet"
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("sports\n\npolitics\n")
    first = score(nli[1], src, dst, "--candidate-labels-file", str(labels_file))
    assert first.returncode == 0, first.stderr
    again = score(nli[1], src, dst, "--candidate-labels", "sports,politics", "--resume")
    assert again.returncode == 0 and "1 file(s) already done" in again.stdout, again.stdout
    other = score(nli[1], src, dst, "--candidate-labels", "sports,politics", "--resume", "--hypothesis-template", "{}!")
    assert other.returncode == 0 and "already done" not in other.stdout
    assert footer_of(dst)["hypothesis_template"] == "{}!"


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--candidate-labels", " , "], ["at least one candidate label"]),
        (["--candidate-labels", "a,b", "--hypothesis-template", "no slot"], ["has no {}"]),
        (["--candidate-labels", "a,b", "--long-text", "chunk"], ["--long-text chunk", "zero-shot"]),
        (["--candidate-labels", "a,b", "--logits"], ["--logits", "zero-shot"]),
        (["--candidate-labels", "a,b", "--text-pair-column", "text"], ["--text-pair-column"]),
        (["--candidate-labels", "a", "--candidate-labels-file", "x.txt"], ["not allowed with"]),
        (["--hypothesis-template", "It is {}."], ["--hypothesis-template", "only apply with --candidate-labels"]),
        (["--multi-label"], ["--multi-label", "only apply with --candidate-labels"]),
    ],
)
def test_cli_misuse_is_one_error_line(nli, tmp_path, extra, fragments):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    result = score(nli[1], src, tmp_path / "out.parquet", *extra)
    assert_clean_error(result, *fragments)
    assert not (tmp_path / "out.parquet").exists()


def test_cli_refuses_a_model_without_entailment_in_one_line(models, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    result = score(models["distilbert"][1], src, tmp_path / "out.parquet", "--candidate-labels", "a,b")
    assert_clean_error(result, "no entailment label", "NEGATIVE, POSITIVE")


def test_pairs_tokenized_by_parts_equal_pairs_tokenized_whole(scorer):
    """Texts and hypotheses are tokenized once each and joined by the tokenizer's template; long texts, empty texts,
    an empty pair and a hypothesis long enough to be cut too must give the ids and types of encoding each pair."""
    texts = [text for text in [*TEXTS, "", " ".join(["word"] * 700)] for _ in range(4)]
    pairs = ["This example is sports.", "", "It is {}.", " ".join(["label"] * 400)] * (len(texts) // 4)
    encoded = scorer.encoder.encode(texts, pairs)
    whole = scorer.encoder.tokenizer.encode_batch([(text, pair) if pair else text for text, pair in zip(texts, pairs)])
    assert encoded.ids == [encoding.ids for encoding in whole]
    assert encoded.type_ids == [encoding.type_ids for encoding in whole]
    assert encoded.truncated.tolist() == [bool(encoding.overflowing) for encoding in whole]
    assert encoded.truncated.sum() > 2
