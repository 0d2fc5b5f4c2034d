"""Tiny seeded checkpoints of each encoder family, with a tokenizer of the family's own kind.

Each tokenizer is trained here with `tokenizers` on the project's own text (the demo corpus and the export
probes): byte-level BPE for RoBERTa and ModernBERT, SentencePiece-style Unigram for XLM-R, ALBERT and
DeBERTa, WordPiece for ELECTRA and MPNet. Special tokens, their ids and the pad id are the family's.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from export.probes import pair_probes, probe_texts

ROOT = Path(__file__).resolve().parents[2]
VOCAB_SIZE = 800
MAX_LENGTH = 128
LABELS = ["negative", "neutral", "positive"]
TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def corpus() -> Iterator[str]:
    """The demo corpus and the probes (odd scripts and emoji included), so every probe tokenizes."""
    with open(ROOT / "demo" / "corpus" / "sentiment.tsv", encoding="utf-8") as handle:
        yield from (row["text"] for row in csv.DictReader(handle, delimiter="\t"))
    yield from probe_texts(8)
    for first, second in pair_probes(8):
        yield first
        yield second


def template(cls: str, sep: str, pair_sep: str, ids: dict[str, int], second_type: int) -> processors.TemplateProcessing:
    """`CLS A SEP` for one text; `CLS A SEP [pair_sep] B SEP` for a pair, B typed `second_type`."""
    middle = f"{pair_sep}:{second_type} " if pair_sep else ""
    pair = f"{cls} $A:0 {sep}:0 {middle}$B:{second_type} {sep}:{second_type}"
    return processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=pair, special_tokens=[(cls, ids[cls]), (sep, ids[sep])]
    )


def byte_level_bpe(
    specials: list[str], specials_last: bool = False, texts: Iterable[str] | None = None, vocab_size: int = VOCAB_SIZE
) -> Tokenizer:
    """GPT-2-style byte-level BPE; ModernBERT (OLMo's vocabulary) appends its specials after the merges."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[] if specials_last else specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus() if texts is None else texts, trainer)
    if specials_last:
        tokenizer.add_special_tokens(specials)
    return tokenizer


def unigram(specials: list[str], unk: str, lowercase: bool = False) -> Tokenizer:
    """SentencePiece-style Unigram: NFKC, `▁` for spaces, as XLM-R, ALBERT and DeBERTa-v3 ship it."""
    tokenizer = Tokenizer(models.Unigram())
    steps = [normalizers.NFKC(), normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    tokenizer.normalizer = normalizers.Sequence(steps + ([normalizers.Lowercase()] if lowercase else []))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=specials, unk_token=unk, show_progress=False
    )
    tokenizer.train_from_iterator(corpus(), trainer)
    return tokenizer


def wordpiece(specials: list[str], unk: str) -> Tokenizer:
    """BERT's WordPiece: lowercased, split on whitespace and punctuation, `##` continuations."""
    tokenizer = Tokenizer(models.WordPiece(unk_token=unk))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(corpus(), trainer)
    return tokenizer


def ids_of(tokenizer: Tokenizer, tokens: list[str]) -> dict[str, int]:
    return {token: tokenizer.token_to_id(token) for token in tokens}


@dataclass
class Family:
    """How to build one family: its tokenizer (backend + transformers class kwargs) and its model."""

    name: str
    tokenizer_kind: str
    build_tokenizer: Callable[[], tuple[Tokenizer, type, dict]]
    build_model: Callable[[int, dict[str, int], dict[str, int]], torch.nn.Module]


def roberta_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = VOCAB_SIZE) -> tuple[Tokenizer, type, dict]:
    from transformers import RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = byte_level_bpe(specials, texts=texts, vocab_size=vocab_size)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    return tokenizer, RobertaTokenizerFast, {}


def templated(
    train: Callable[[list[str]], Tokenizer],
    specials: list[str],
    class_name: str,
    second_type: int,
    pair_sep: str = "",
    **kwargs: object,
) -> Callable[[], tuple[Tokenizer, type, dict]]:
    """A builder: train with the family's specials, then add its `CLS A SEP [pair_sep] B SEP` template."""
    cls, sep = (token for token in specials if token in ("<s>", "</s>", "[CLS]", "[SEP]"))

    def build() -> tuple[Tokenizer, type, dict]:
        import transformers

        tokenizer = train(specials)
        tokenizer.post_processor = template(cls, sep, pair_sep, ids_of(tokenizer, specials), second_type)
        return tokenizer, getattr(transformers, class_name), kwargs

    return build


modernbert_tokenizer = templated(
    lambda specials: byte_level_bpe(specials, specials_last=True),
    ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"], "PreTrainedTokenizerFast", second_type=0,
    unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
    model_input_names=["input_ids", "attention_mask"],
)
xlm_roberta_tokenizer = templated(
    lambda specials: unigram(specials, "<unk>"), ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    "XLMRobertaTokenizerFast", second_type=0, pair_sep="</s>",
)
albert_tokenizer = templated(
    lambda specials: unigram(specials, "<unk>", lowercase=True), ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"],
    "AlbertTokenizerFast", second_type=1,
)
deberta_tokenizer = templated(
    lambda specials: unigram(specials, "[UNK]"), ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
    "DebertaV2TokenizerFast", second_type=1,
)
electra_tokenizer = templated(
    lambda specials: wordpiece(specials, "[UNK]"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "ElectraTokenizerFast", second_type=1,
)
mpnet_tokenizer = templated(
    lambda specials: wordpiece(specials, "[UNK]"), ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"],
    "MPNetTokenizerFast", second_type=0, pair_sep="</s>",
)


def with_labels(config: object) -> object:
    """Three labels, and weights 25x wider than pretraining's init, so a random model's answers vary by text."""
    config.initializer_range = 0.5
    config.num_labels = len(LABELS)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {label: i for i, label in enumerate(LABELS)}
    return config


def classifier(prefix: str, vocab_size: int, shape: dict[str, int], **config: object) -> torch.nn.Module:
    """transformers' `{prefix}ForSequenceClassification` from a `{prefix}Config` of this shape."""
    import transformers

    config = getattr(transformers, f"{prefix}Config")(vocab_size=vocab_size, **{**shape, **config})
    return getattr(transformers, f"{prefix}ForSequenceClassification")(with_labels(config))


def roberta_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    return classifier("Roberta", vocab_size, shape, max_position_embeddings=MAX_LENGTH + 2, type_vocab_size=1)


def xlm_roberta_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    return classifier("XLMRoberta", vocab_size, shape, max_position_embeddings=MAX_LENGTH + 2, type_vocab_size=1)


def deberta_v3_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    """DeBERTa-v3's config: relative attention (c2p, p2c), no absolute positions, no token types."""
    return classifier(
        "DebertaV2", vocab_size, shape, max_position_embeddings=MAX_LENGTH, type_vocab_size=0,
        relative_attention=True, position_buckets=32, max_relative_positions=-1, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True, pad_token_id=0,
    )


def albert_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    return classifier(
        "Albert", vocab_size, shape, embedding_size=16, max_position_embeddings=MAX_LENGTH, pad_token_id=0,
        bos_token_id=ids["[CLS]"], eos_token_id=ids["[SEP]"],
    )


def electra_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    return classifier("Electra", vocab_size, shape, embedding_size=16, max_position_embeddings=MAX_LENGTH)


def mpnet_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    return classifier("MPNet", vocab_size, shape, max_position_embeddings=MAX_LENGTH + 2, pad_token_id=1)


def modernbert_model(vocab_size: int, ids: dict[str, int], shape: dict[str, int] = TINY) -> torch.nn.Module:
    """One more layer than the others, so both kinds run: global attention (layer 0) and sliding-window local."""
    return classifier(
        "ModernBert", vocab_size, shape, num_hidden_layers=shape["num_hidden_layers"] + 1,
        max_position_embeddings=MAX_LENGTH, local_attention=16, global_attn_every_n_layers=3,
        pad_token_id=ids["[PAD]"], cls_token_id=ids["[CLS]"], sep_token_id=ids["[SEP]"],
        bos_token_id=ids["[CLS]"], eos_token_id=ids["[SEP]"], classifier_pooling="cls", reference_compile=False,
    )


FAMILIES = {
    family.name: family
    for family in [
        Family("roberta", "byte-level BPE", roberta_tokenizer, roberta_model),
        Family("xlm-roberta", "Unigram", xlm_roberta_tokenizer, xlm_roberta_model),
        Family("deberta-v2", "Unigram", deberta_tokenizer, deberta_v3_model),
        Family("albert", "Unigram", albert_tokenizer, albert_model),
        Family("electra", "WordPiece", electra_tokenizer, electra_model),
        Family("mpnet", "WordPiece", mpnet_tokenizer, mpnet_model),
        Family("modernbert", "byte-level BPE", modernbert_tokenizer, modernbert_model),
    ]
}


def make_family_checkpoint(name: str, path: Path, shape: dict[str, int] = TINY) -> Path:
    """Save a seeded tiny model of family `name` and its trained tokenizer as a hub-style checkpoint dir."""
    family = FAMILIES[name]
    backend, tokenizer_class, kwargs = family.build_tokenizer()
    tokenizer = tokenizer_class(tokenizer_object=backend, model_max_length=MAX_LENGTH, **kwargs)
    ids = backend.get_vocab()
    torch.manual_seed(0)
    model = family.build_model(backend.get_vocab_size(), ids, shape)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
