"""The committed demo corpus is exactly what its sources and grammar build: distinct, balanced, reproducible."""

from __future__ import annotations

from collections import Counter

from demo.corpus.build import DEFAULT_OUT, PER_LABEL, build_rows
from demo.train import ID2LABEL, load_corpus


def test_committed_tsv_is_the_build_output():
    texts, label_ids = load_corpus(DEFAULT_OUT)
    assert list(zip(texts, (ID2LABEL[i] for i in label_ids))) == build_rows()


def test_corpus_is_distinct_and_balanced():
    texts, label_ids = load_corpus(DEFAULT_OUT)
    assert len(set(texts)) == len(texts) >= 1500
    assert Counter(label_ids) == {0: PER_LABEL, 1: PER_LABEL}
