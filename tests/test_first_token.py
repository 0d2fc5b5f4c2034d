"""The last layer computed for the first token only gives PyTorch's logits, and is undone on exit."""

from __future__ import annotations

import pytest
import torch

from export.first_token import FIRST_TOKEN_LAST_LAYER, first_token_last_layer
from runtime.model.model_dir import read_manifest
from tests.support.first_token import assert_first_token_layer_exact, padded_batch, tiny_model

@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", ["distilbert", "bert"])
def test_first_token_layer_matches_full_layer(kind: str, attn_implementation: str) -> None:
    assert_first_token_layer_exact(tiny_model(kind, attn_implementation))


def test_relative_position_bert_is_left_whole() -> None:
    """Relative position scores need every query position: such a model is exported unchanged."""
    model = tiny_model("bert", "eager", position_embedding_type="relative_key")
    with torch.inference_mode():
        reference = model(**padded_batch()).logits
        with first_token_last_layer(model) as applied:
            logits = model(**padded_batch()).logits
    assert applied == ["whole-model: no first-token last layer for BertForSequenceClassification with this config"]
    torch.testing.assert_close(logits, reference, atol=0, rtol=0)


def test_manifest_records_the_pruned_last_layer(models) -> None:
    for kind in ("distilbert", "bert", "multilabel"):
        assert read_manifest(models[kind][1]).graph_optimizations == [FIRST_TOKEN_LAST_LAYER]
