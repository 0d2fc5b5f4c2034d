"""Tiny models and a padded batch to check that a first-token last layer equals the whole layer on token 0."""

from __future__ import annotations

import torch

from export.first_token import FIRST_TOKEN_LAST_LAYER, first_token_last_layer, last_layer_and_forward

TEXTS_IDS = [[101, 7592, 102], [101, 2023, 3185, 2001, 2428, 2204, 1998, 4569, 102], [101, 102]]


def tiny_model(kind: str, attn_implementation: str, **config_extra: object) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification, DistilBertConfig
    from transformers import DistilBertForSequenceClassification

    torch.manual_seed(0)
    if kind == "distilbert":
        config = DistilBertConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=2, attn_implementation=attn_implementation)
        return DistilBertForSequenceClassification(config).eval()
    config = BertConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        attn_implementation=attn_implementation, **config_extra,
    )
    return BertForSequenceClassification(config).eval()


def padded_batch() -> dict[str, torch.Tensor]:
    """Rows of different lengths, so the mask matters in the pruned layer's attention."""
    width = max(map(len, TEXTS_IDS))
    input_ids = torch.tensor([ids + [0] * (width - len(ids)) for ids in TEXTS_IDS])
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}


def last_layer_lengths(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Logits, and the sequence length the last layer produced."""
    layer, _ = last_layer_and_forward(model)
    seen = []
    handle = layer.register_forward_hook(lambda module, args, output: seen.append(output[0].shape[1]))
    with torch.inference_mode():
        logits = model(**batch).logits
    handle.remove()
    return logits, seen[0]


def assert_first_token_layer_exact(model: torch.nn.Module) -> None:
    """The pruned last layer yields one position and the same logits; leaving the context restores the model."""
    batch = padded_batch()
    reference, full_length = last_layer_lengths(model, batch)
    assert full_length == batch["input_ids"].shape[1]
    with first_token_last_layer(model) as applied:
        pruned, pruned_length = last_layer_lengths(model, batch)
    assert applied == [FIRST_TOKEN_LAST_LAYER]
    assert pruned_length == 1
    torch.testing.assert_close(pruned, reference, atol=1e-5, rtol=0)
    restored, restored_length = last_layer_lengths(model, batch)
    assert restored_length == full_length
    torch.testing.assert_close(restored, reference, atol=0, rtol=0)
