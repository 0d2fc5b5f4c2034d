"""Export the last encoder layer for the first token only: the classifier head reads nothing else.

In the last layer every token still supplies keys and values, but the query, the attention output, the
feed-forward network and both LayerNorms matter for the first token ([CLS], <s>) alone. Skipping them for
the other tokens removes 10/12 of that layer's matrix work (14% of a 6-layer model) and changes no output:
`validate_model_outputs` compares the exported graph with the unmodified PyTorch model.

It is done for heads that read the first token (BERT, RoBERTa, XLM-R and ELECTRA heads, ALBERT's and MPNet's)
with attention whose scores for query 0 need no other query: absolute positions, or MPNet's relative bias,
whose row 0 is sliced like the mask. Other models are exported whole, and the manifest says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

FIRST_TOKEN_LAST_LAYER = "last-layer-first-token"
WHOLE_MODEL = "whole-model"
BERT_LIKE = {
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "ElectraForSequenceClassification",
}
NOT_EXACT = {
    "DebertaV2ForSequenceClassification": "DeBERTa's disentangled attention (position-to-content scores per "
    "query) has no first-token version here",
    "ModernBertForSequenceClassification": "ModernBERT's rotary, sliding-window layers have no first-token "
    "version here (and mean pooling reads every token)",
}

Forward = Callable[..., tuple[torch.Tensor]]


def first_token_context(
    query: nn.Linear,
    key: nn.Linear,
    value: nn.Linear,
    heads: int,
    hidden_states: torch.Tensor,
    additive_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Multi-head attention of the first token over all tokens: [batch, 1, hidden]."""
    batch = hidden_states.shape[0]
    head_size = query.out_features // heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, heads, head_size).transpose(1, 2)

    if additive_mask is not None:  # [batch, 1 or heads, 1 or query, key]: keep query 0
        additive_mask = additive_mask[:, :, :1]
    context = nn.functional.scaled_dot_product_attention(
        split(query(hidden_states[:, :1])), split(key(hidden_states)), split(value(hidden_states)),
        attn_mask=additive_mask,
    )
    return context.transpose(1, 2).reshape(batch, 1, query.out_features)


def distilbert_first_token(block: nn.Module) -> Forward:
    """DistilBERT's TransformerBlock.forward with queries from the first token only."""

    def forward(
        x: torch.Tensor, attn_mask: torch.Tensor | None = None, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor]:
        first = x[:, :1]
        if attn_mask is not None and attn_mask.dim() == 4:  # SDPA's [batch, 1, query, key] mask: keep query 0
            attn_mask = attn_mask[:, :, :1]
        attended = block.attention(query=first, key=x, value=x, mask=attn_mask)[0]
        attended = block.sa_layer_norm(attended + first)
        return (block.output_layer_norm(block.ffn(attended) + attended),)

    return forward


def bert_first_token(layer: nn.Module) -> Forward:
    """BertLayer.forward (and RoBERTa's, XLM-R's, ELECTRA's copies) with queries from the first token only."""
    attention = layer.attention.self

    def forward(
        hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor]:
        context = first_token_context(
            attention.query, attention.key, attention.value, attention.num_attention_heads, hidden_states,
            attention_mask,
        )
        attended = layer.attention.output(context, hidden_states[:, :1])
        return (layer.output(layer.intermediate(attended), attended),)

    return forward


def mpnet_first_token(layer: nn.Module) -> Forward:
    """MPNetLayer.forward with queries from the first token; the relative position bias is added like a mask."""
    attention = layer.attention.attn

    def forward(
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        *args: object,
        **kwargs: object,
    ) -> tuple[torch.Tensor]:
        if position_bias is not None:
            attention_mask = position_bias if attention_mask is None else position_bias + attention_mask
        context = first_token_context(
            attention.q, attention.k, attention.v, attention.num_attention_heads, hidden_states, attention_mask
        )
        attended = layer.attention.LayerNorm(attention.o(context) + hidden_states[:, :1])
        return (layer.output(layer.intermediate(attended), attended),)

    return forward


def albert_first_token(encoder: nn.Module) -> Forward:
    """AlbertTransformer.forward whose last pass through the shared layer computes the first token only.

    ALBERT runs one layer's weights num_hidden_layers times, so it is the encoder's loop that changes.
    """
    config = encoder.config
    layer = encoder.albert_layer_groups[0].albert_layers[0]
    attention = layer.attention

    def forward(
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *args: object,
        return_dict: bool = True,
        **kwargs: object,
    ) -> BaseModelOutput | tuple[torch.Tensor]:
        hidden_states = encoder.embedding_hidden_mapping_in(hidden_states)
        for _ in range(config.num_hidden_layers - 1):
            hidden_states = layer(hidden_states, attention_mask, None)[0]
        context = first_token_context(
            attention.query, attention.key, attention.value, attention.num_attention_heads, hidden_states,
            attention_mask,
        )
        attended = attention.LayerNorm(hidden_states[:, :1] + attention.dense(context))
        hidden_states = layer.full_layer_layer_norm(layer.ff_chunk(attended) + attended)
        return BaseModelOutput(last_hidden_state=hidden_states) if return_dict else (hidden_states,)

    return forward


def absolute_positions(config: object) -> bool:
    return getattr(config, "position_embedding_type", "absolute") == "absolute" and not config.is_decoder


def last_layer_and_forward(model: nn.Module) -> tuple[nn.Module, Forward] | None:
    """The module to replace and its first-token forward, for heads known to read only the first token."""
    config = model.config
    kind = type(model).__name__
    if kind == "DistilBertForSequenceClassification":
        block = model.distilbert.transformer.layer[-1]
        return block, distilbert_first_token(block)
    if kind in BERT_LIKE and absolute_positions(config):
        layer = model.base_model.encoder.layer[-1]
        return layer, bert_first_token(layer)
    if kind == "MPNetForSequenceClassification":
        layer = model.mpnet.encoder.layer[-1]
        return layer, mpnet_first_token(layer)
    if (
        kind == "AlbertForSequenceClassification"
        and absolute_positions(config)
        and config.num_hidden_groups == 1
        and config.inner_group_num == 1
    ):
        return model.albert.encoder, albert_first_token(model.albert.encoder)
    return None


def whole_model_reason(model: nn.Module) -> str:
    """Why the model is exported whole: recorded in the manifest next to the optimizations applied."""
    kind = type(model).__name__
    return f"{WHOLE_MODEL}: {NOT_EXACT.get(kind, f'no first-token last layer for {kind} with this config')}"


@contextmanager
def first_token_last_layer(model: nn.Module, enabled: bool = True) -> Iterator[list[str]]:
    """While open, the model's last layer computes the first token only; yields what the manifest records.

    The model is restored on exit, so PyTorch parity is still checked against the original forward.
    """
    found = last_layer_and_forward(model) if enabled else None
    if found is None:
        yield [whole_model_reason(model) if enabled else f"{WHOLE_MODEL}: first-token last layer turned off"]
        return
    layer, forward = found
    layer.forward = forward  # an instance attribute shadows the class's forward
    try:
        yield [FIRST_TOKEN_LAST_LAYER]
    finally:
        del layer.forward
