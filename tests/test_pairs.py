"""Sentence pairs and the pipeline's output options: the answers PyTorch gives for `tokenizer(texts, pairs)`."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from runtime import Scorer
from runtime.model.activations import sigmoid, softmax
from runtime.model.model_dir import read_manifest
from tests.support.cli import score, write
from tests.support.models import export_model, make_checkpoint
from tests.support.torch_reference import torch_logits, torch_probabilities

TOLERANCE = 1e-4
LONG = " ".join(["wonderful", "plot", "never", "again"] * 200)  # 800 words: past 512 tokens on its own
SHORT = "a quiet film"
PAIR_PROBES = [
    ("A man is sleeping.", "Someone rests."),
    ("The cast is great.", "The acting is awful and the plot is dull."),
    (LONG, SHORT),  # long + short: longest first cuts the first text only
    (SHORT, LONG),  # short + long
    (LONG, LONG + " extra words"),  # long + long: both are cut, the longer one first
    ("", ""),
    ("", "only the pair has words"),
    ("😊 这部电影很好看", "هذا المنتج سيء"),
]
TEXTS = [text for text, _ in PAIR_PROBES]
PAIRS = [pair for _, pair in PAIR_PROBES]


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A 1-logit BERT cross-encoder: the pipeline applies sigmoid to a single logit."""
    base = tmp_path_factory.mktemp("cross-encoder")
    checkpoint = make_checkpoint("cross-encoder", base / "checkpoint")
    return checkpoint, export_model(checkpoint, base / "onnx")


@pytest.mark.parametrize("batch_size", [1, 2, 17])
def test_nli_pairs_match_pytorch(models, batch_size):
    checkpoint, model_dir = models["bert"]
    expected = torch_probabilities(checkpoint, TEXTS, PAIRS)
    scores = Scorer(model_dir, max_batch_rows=batch_size).score(TEXTS, PAIRS)
    assert np.abs(scores.probabilities - expected).max() <= TOLERANCE
    assert (scores.label_ids == expected.argmax(axis=1)).all()
    assert scores.truncated == 3


def test_cross_encoder_pairs_match_pytorch(cross_encoder):
    checkpoint, model_dir = cross_encoder
    expected = torch_probabilities(checkpoint, TEXTS, PAIRS)
    scorer = Scorer(model_dir)
    assert scorer.function_to_apply == "sigmoid" and expected.shape == (len(TEXTS), 1)
    scores = scorer.score(TEXTS, PAIRS)
    assert np.abs(scores.probabilities - expected).max() <= TOLERANCE
    answers = scorer([{"text": text, "text_pair": pair} for text, pair in PAIR_PROBES])
    assert [answer["score"] for answer in answers] == pytest.approx(expected[:, 0].tolist(), abs=TOLERANCE)


def test_token_types_come_from_the_tokenizer(models):
    """The second segment gets token type 1, as transformers' tokenizer gives; zeros would change the answers."""
    checkpoint, model_dir = models["bert"]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    reference = [tokenizer(text, pair, truncation=True) for text, pair in PAIR_PROBES]  # per item, as the pipeline
    encoded = Scorer(model_dir).preprocess(TEXTS, PAIRS)
    assert encoded.ids == [item["input_ids"] for item in reference]
    assert encoded.type_ids == [item["token_type_ids"] for item in reference]
    assert all(1 in types for types, pair in zip(encoded.type_ids, PAIRS) if pair)  # "" is no pair


def test_pipeline_input_shapes(models):
    _, model_dir = models["bert"]
    scorer = Scorer(model_dir)
    pair = {"text": TEXTS[0], "text_pair": PAIRS[0]}
    assert scorer(pair) == scorer([pair])[0]  # one dict in, one dict out: the pipeline's shape
    assert scorer({"text": TEXTS[0]}) == scorer(TEXTS[0])[0]
    assert scorer(pair) != scorer(TEXTS[0])[0]
    with pytest.raises(ValueError, match="text_pair"):
        scorer([pair, {"text": "no pair"}])
    with pytest.raises(ValueError, match="mix"):
        scorer([pair, "plain"])


@pytest.mark.parametrize("function_to_apply", ["softmax", "sigmoid", "none"])
def test_function_to_apply_overrides_the_manifest(models, function_to_apply):
    checkpoint, model_dir = models["bert"]
    logits = torch_logits(checkpoint, TEXTS)
    expected = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}[function_to_apply](logits)
    scores = Scorer(model_dir, function_to_apply=function_to_apply).score(TEXTS)
    assert np.abs(scores.probabilities - expected).max() <= TOLERANCE
    assert np.abs(scores.logits - logits).max() <= TOLERANCE
    with pytest.raises(ValueError, match="softmax, sigmoid, none"):
        Scorer(model_dir, function_to_apply="relu")


def test_cli_pairs_logits_and_nulls(models, tmp_path):
    """A null in either column gives null outputs and keeps its row; --logits adds the raw outputs."""
    checkpoint, model_dir = models["bert"]
    texts = [*TEXTS, None, "a text whose pair is missing"]
    pairs = [*PAIRS, "a pair whose text is missing", None]
    table = pa.table({"id": list(range(len(texts))), "premise": texts, "hypothesis": pairs})
    src = write(tmp_path / "in.parquet", table)
    dst = tmp_path / "out.parquet"
    result = score(
        model_dir, src, dst, "--text-column", "premise", "--text-pair-column", "hypothesis",
        "--function-to-apply", "sigmoid", "--logits",
    )
    assert result.returncode == 0, result.stderr
    table = pq.read_table(dst)
    assert table.column_names == ["id", "premise", "hypothesis", "label", "score", "probabilities", "logits"]
    assert table.schema.field("probabilities").metadata == {b"function_to_apply": b"sigmoid"}
    record = json.loads(table.schema.metadata[b"runtime.score"])
    assert record["activation"] == "sigmoid" and record["text_pair_column"] == "hypothesis"
    logits = torch_logits(checkpoint, TEXTS, PAIRS)
    rows = table.to_pylist()
    assert np.abs(np.array([row["logits"] for row in rows[: len(TEXTS)]]) - logits).max() <= TOLERANCE
    assert np.abs(np.array([row["probabilities"] for row in rows[: len(TEXTS)]]) - sigmoid(logits)).max() <= TOLERANCE
    for row in rows[len(TEXTS) :]:
        assert row["label"] is row["score"] is row["probabilities"] is row["logits"] is None


def test_cli_missing_pair_column_is_bad_input(models, tmp_path):
    from tests.support.cli import assert_clean_error

    _, model_dir = models["bert"]
    src = write(tmp_path / "in.parquet", pa.table({"text": ["a"]}))
    result = score(model_dir, src, tmp_path / "out.parquet", "--text-pair-column", "hypothesis")
    assert_clean_error(result, "hypothesis", "--text-pair-column")
    assert not (tmp_path / "out.parquet").exists()


EMPTY_PAIR_PROBES = [("good movie", ""), ("", ""), ("good movie", " "), ("good movie", "a dull plot")]


def test_an_empty_pair_is_no_pair_as_in_the_pipeline(models, tmp_path):
    """The pipeline's tokenizer drops a falsy text_pair: ("good movie", "") is scored as "good movie" alone, not as
    `[CLS] good movie [SEP] [SEP]`; a blank pair (" ") stays a pair. Scorer and CLI give the pipeline's answers."""
    import torch
    from transformers import AutoModelForSequenceClassification, pipeline

    checkpoint, model_dir = models["bert"]
    classifier = pipeline("text-classification", model=str(checkpoint), device="cpu", top_k=None)
    labels = read_manifest(model_dir).labels
    items = [{"text": text, "text_pair": pair} for text, pair in EMPTY_PAIR_PROBES]
    answers = [{answer["label"]: answer["score"] for answer in classifier(item)} for item in items]
    expected = np.array([[answer[label] for label in labels] for answer in answers])
    with torch.inference_mode():  # the second [SEP] a batched tokenizer call keeps must change the answer here
        kept = AutoTokenizer.from_pretrained(checkpoint)(["good movie"], [""], return_tensors="pt")
        with_sep = AutoModelForSequenceClassification.from_pretrained(checkpoint)(**kept).logits.softmax(-1)
    assert np.abs(with_sep.numpy()[0] - expected[0]).max() > 2 * TOLERANCE

    texts, pairs = map(list, zip(*EMPTY_PAIR_PROBES))
    assert np.abs(Scorer(model_dir).score(texts, pairs).probabilities - expected).max() <= TOLERANCE
    top = [max(answer.items(), key=lambda entry: entry[1]) for answer in answers]
    scored = Scorer(model_dir)(items)
    assert [answer["label"] for answer in scored] == [label for label, _ in top]
    assert [answer["score"] for answer in scored] == pytest.approx([score for _, score in top], abs=TOLERANCE)

    src = write(tmp_path / "in.parquet", pa.table({"text": texts, "pair": pairs}))
    result = score(model_dir, src, tmp_path / "out.parquet", "--text-pair-column", "pair")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "out.parquet")
    assert np.abs(np.array(table.column("probabilities").to_pylist()) - expected).max() <= TOLERANCE
    assert table.column("label").to_pylist() == [label for label, _ in top]
