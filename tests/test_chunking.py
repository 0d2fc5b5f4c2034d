"""Chunk mode: a long text is scored as the tokenizer's overflow windows, aggregated, compared with PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from runtime import Scorer
from tests.support.cli import assert_clean_error, score, write

STRIDE = 64
MAX_LENGTH = 512  # the test models' max length
TOLERANCE = 1e-4
WORDS = ["great", "awful", "plot", "movie", "never", "again", "wonderful", "boring", "the", "ending"]


def text_of(tokens: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), tokens))


# 1 to 6 windows of 510 text tokens overlapping by 64: a window adds 446 new tokens
LONG_TEXTS = [text_of(n, seed) for seed, n in enumerate([3, 300, 700, 1200, 1700, 2100, 2500])]


def torch_windows(checkpoint, texts: list[str], stride: int, sigmoid: bool) -> list[np.ndarray]:
    """Per text, PyTorch's probabilities on each of the tokenizer's overflow windows."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    inputs = tokenizer(
        texts, truncation=True, max_length=MAX_LENGTH, stride=stride, return_overflowing_tokens=True,
        padding=True, return_tensors="pt",
    )
    sample = inputs.pop("overflow_to_sample_mapping").numpy()
    with torch.inference_mode():
        logits = model(**inputs).logits
    probabilities = (logits.sigmoid() if sigmoid else logits.softmax(-1)).numpy()
    return [probabilities[sample == row] for row in range(len(texts))]


@pytest.mark.parametrize(
    "kind, aggregate", [("bert", "mean"), ("bert", "max"), ("multilabel", "max")], ids=["bert-mean", "bert-max", "sigmoid-max"]
)
def test_windows_match_pytorch(models, kind, aggregate):
    checkpoint, model_dir = models[kind]
    windows = torch_windows(checkpoint, LONG_TEXTS, STRIDE, sigmoid=kind == "multilabel")
    scorer = Scorer(model_dir, long_text="chunk", chunk_stride=STRIDE, chunk_aggregate=aggregate, max_batch_rows=5)
    scores = scorer.score(LONG_TEXTS)
    assert scores.chunks.tolist() == [len(w) for w in windows]
    assert sorted(set(scores.chunks.tolist())) == [1, 2, 3, 4, 5, 6]
    expected = np.stack([w.mean(axis=0) if aggregate == "mean" else w.max(axis=0) for w in windows])
    assert np.abs(scores.probabilities - expected).max() <= TOLERANCE
    assert (scores.label_ids == expected.argmax(axis=1)).all()
    assert scores.truncated == 0


def test_short_texts_give_what_truncate_mode_gives(models):
    _, model_dir = models["bert"]
    texts = [text_of(n, seed) for seed, n in enumerate([1, 5, 40, 200, 509])] + ["", "😊 这部电影很好看"]
    truncated = Scorer(model_dir).score(texts)
    chunked = Scorer(model_dir, long_text="chunk").score(texts)
    assert (chunked.label_ids == truncated.label_ids).all()
    assert np.abs(chunked.probabilities - truncated.probabilities).max() <= 1e-6
    assert chunked.chunks.tolist() == [1] * len(texts)


def test_windows_past_the_cap_are_dropped_and_counted(models):
    checkpoint, model_dir = models["bert"]
    text = LONG_TEXTS[-1]  # 6 windows
    windows = torch_windows(checkpoint, [text], STRIDE, sigmoid=False)[0]
    scores = Scorer(model_dir, long_text="chunk", chunk_stride=STRIDE, max_chunks=2).score([text, "short"])
    assert scores.chunks.tolist() == [2, 1] and scores.truncated == 1
    assert np.abs(scores.probabilities[0] - windows[:2].mean(axis=0)).max() <= TOLERANCE


def test_a_huge_row_is_cut_before_tokenizing(models):
    """Ten million characters: only what the capped windows need is tokenized, and the answer is the same."""
    _, model_dir = models["distilbert"]
    head = text_of(3000, 7)
    huge = head + " filler" * 1_500_000
    assert len(huge) > 10_000_000
    scorer = Scorer(model_dir, long_text="chunk", max_chunks=3)
    cut, whole = scorer.score([huge, head]), scorer.score([head])
    assert cut.chunks.tolist() == [3, 3] and cut.truncated == 2
    assert np.abs(cut.probabilities - whole.probabilities[0]).max() <= 1e-6


def test_cli_chunk_column_and_footer(models, tmp_path):
    checkpoint, model_dir = models["bert"]
    texts = [LONG_TEXTS[3], None, "short and sweet"]
    src = write(tmp_path / "in.parquet", pa.table({"id": [1, 2, 3], "text": texts}))
    result = score(model_dir, src, tmp_path / "out.parquet", "--long-text", "chunk", "--chunk-stride", str(STRIDE))
    assert result.returncode == 0, result.stderr
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names == ["id", "text", "label", "score", "probabilities", "chunks"]
    assert out.schema.field("chunks").type == pa.int32()
    windows = torch_windows(checkpoint, [texts[0]], STRIDE, sigmoid=False)[0]
    assert out.column("chunks").to_pylist() == [len(windows), None, 1]
    assert np.abs(np.array(out.column("probabilities")[0].as_py()) - windows.mean(axis=0)).max() <= TOLERANCE
    record = json.loads(pq.read_metadata(tmp_path / "out.parquet").metadata[b"runtime.score"])
    assert record["long_text"] == "chunk" and record["chunk_stride"] == STRIDE
    assert record["long_text_policy"] == {"mode": "chunk", "stride": STRIDE, "aggregate": "mean", "max_chunks": 256}
    assert record["chunked_rows"] == 1 and record["truncated_rows"] == 0


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--long-text", "chunk", "--chunk-stride", "510"], "chunk stride 510"),
        (["--long-text", "chunk", "--chunk-stride", "-1"], "--chunk-stride"),
        (["--long-text", "chunk", "--chunk-stride", "ten"], "--chunk-stride"),
        (["--long-text", "window"], "--long-text"),
        (["--long-text", "chunk", "--chunk-aggregate", "median"], "--chunk-aggregate"),
        (["--long-text", "chunk", "--max-chunks", "0"], "--max-chunks"),
        (["--long-text", "chunk", "--text-pair-column", "text"], "--text-pair-column"),
    ],
)
def test_bad_chunk_options_are_one_line(models, tmp_path, options, fragment):
    _, model_dir = models["bert"]
    src = write(tmp_path / "in.parquet", pa.table({"text": ["x"]}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet", *options), fragment)
    assert not (tmp_path / "out.parquet").exists()
