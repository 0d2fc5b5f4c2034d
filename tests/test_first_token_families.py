"""The first-token last layer for every family whose head reads the first token and whose attention allows it."""

from __future__ import annotations

import pytest
import torch

from export.first_token import WHOLE_MODEL, first_token_last_layer
from tests.support.families import FAMILIES
from tests.support.first_token import assert_first_token_layer_exact, padded_batch

EXACT = ["roberta", "xlm-roberta", "electra", "albert", "mpnet"]
WHOLE = ["deberta-v2", "modernbert"]
VOCAB_SIZE = 8000  # padded_batch's ids are bert-base-uncased ids


def family_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    ids = {"[PAD]": 0, "[CLS]": 101, "[SEP]": 102}  # ModernBERT's special ids, here BERT's
    return FAMILIES[name].build_model(VOCAB_SIZE, ids).eval()


@pytest.mark.parametrize("name", EXACT)
def test_first_token_layer_matches_full_layer(name: str) -> None:
    assert_first_token_layer_exact(family_model(name))


@pytest.mark.parametrize("name", WHOLE)
def test_families_without_an_exact_first_token_layer_stay_whole(name: str) -> None:
    model = family_model(name)
    with torch.inference_mode():
        reference = model(**padded_batch()).logits
        with first_token_last_layer(model) as applied:
            logits = model(**padded_batch()).logits
    assert len(applied) == 1 and applied[0].startswith(f"{WHOLE_MODEL}: ")
    torch.testing.assert_close(logits, reference, atol=0, rtol=0)
