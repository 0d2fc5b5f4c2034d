"""The committed demo corpus is exactly what its written sentence files build: distinct, reproducible, with a
held-out split that shares no sentence with the training split and nothing copied from the SST-2 dev set."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.corpus import SST2_DEV, sst2_dev
from demo.corpus.build import DEFAULT_OUT, HELDOUT, TRAIN, build_rows, sst_style
from demo.train import load_corpus

NGRAM = 8  # a shared run of eight words is not a coincidence of phrasing


def test_committed_tsv_is_the_build_output():
    lines = DEFAULT_OUT.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text\tlabel\tsplit"
    assert lines[1:] == ["\t".join(row) for row in build_rows()]


def test_corpus_is_distinct_and_both_splits_hold_both_labels():
    texts, label_ids = load_corpus(DEFAULT_OUT, TRAIN)
    heldout, heldout_ids = load_corpus(DEFAULT_OUT, HELDOUT)
    assert len(set(texts + heldout)) == len(texts) + len(heldout)
    train_counts, heldout_counts = Counter(label_ids), Counter(heldout_ids)
    assert min(train_counts.values()) >= 0.9 * max(train_counts.values())
    assert min(heldout_counts.values()) >= 100


def test_no_heldout_sentence_is_a_restyled_training_sentence():
    """A held-out sentence and its treebank-style copy must not be split across training and held-out."""
    train_forms = {sst_style(text) for text in load_corpus(DEFAULT_OUT, TRAIN)[0]}
    heldout_forms = {sst_style(text) for text in load_corpus(DEFAULT_OUT, HELDOUT)[0]}
    assert train_forms.isdisjoint(heldout_forms)


def ngrams(text: str) -> set[tuple[str, ...]]:
    words = sst_style(text).split()
    return {tuple(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)} or {tuple(words)}


@pytest.mark.skipif(not SST2_DEV.exists(), reason=f"SST-2 dev set not found at {SST2_DEV} (../shared is absent)")
def test_corpus_shares_no_sentence_or_eight_word_run_with_sst2_dev():
    """The corpus is written for the project: no dev sentence, and no run of eight words of one, appears in it.
    Dev sentences shorter than eight words count whole."""
    corpus = set().union(*(ngrams(text) for text in load_corpus(DEFAULT_OUT)[0]))
    shared = [text for text in sst2_dev()[0] if ngrams(text) & corpus]
    assert shared == []
