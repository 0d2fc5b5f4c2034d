"""Text (or text pair) to token ids with the Hugging Face `tokenizers` library, read from tokenizer.json.

Long texts are either truncated to the model's max length (the pipeline's behaviour) or, in chunk mode, cut
into overlapping windows exactly as the fast tokenizer's `return_overflowing_tokens=True, stride=N` makes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

# A token rarely spans more than this many characters: a text is cut (at a space) to the characters its kept
# windows can need before it is tokenized, so a 10-million-character row costs what its kept windows cost.
CHARS_PER_TOKEN = 8
SPACE = re.compile(r"\s")


@dataclass
class Encoded:
    """Unpadded windows of a window of rows; padding happens per batch once batches are planned.

    A row has one window unless chunk mode split it: `ids`, `type_ids`, `lengths` and `rows` are per window
    (`rows` names each window's row), `chunks` and `truncated` per row.
    """

    ids: list[list[int]]
    type_ids: list[list[int]]
    lengths: np.ndarray
    rows: np.ndarray
    chunks: np.ndarray
    truncated: np.ndarray


class TextEncoder:
    """Truncates to the model's max length (longest first, as `truncation=True` does for pairs); no padding.

    With `max_windows` > 1 (chunk mode), a text past the max length yields up to `max_windows` windows that
    overlap by `stride` tokens, each with the special tokens; what lies past the last window is dropped and the
    row counted as truncated.
    """

    def __init__(self, tokenizer_path: Path, max_length: int, pad_token_id: int) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.max_length = max_length
        self.pad_token_id = pad_token_id
        special = self.tokenizer.post_processor.num_special_tokens_to_add(False) if self.tokenizer.post_processor else 0
        self.window_tokens = max_length - special  # text tokens per window
        self.use_windows(stride=0, max_windows=1)

    def use_windows(self, stride: int, max_windows: int) -> None:
        """Keep up to `max_windows` windows of a long text, overlapping by `stride` tokens (1: truncate).

        Why a setter: the stride a long-text policy picks depends on `window_tokens`, known once loaded.
        """
        self.tokenizer.enable_truncation(self.max_length, stride=stride, strategy="longest_first")
        self.max_windows = max_windows
        # Characters the kept windows can need: the first window, then (window - stride) new tokens per window.
        kept_tokens = self.window_tokens + (max_windows - 1) * (self.window_tokens - stride)
        self.char_budget = (kept_tokens + 1) * CHARS_PER_TOKEN

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoded:
        """Encode texts, or (text, pair) items whose token types come from the tokenizer's pair template.

        An empty pair is no pair, as in the pipeline: transformers' tokenizer drops a falsy `text_pair` (`""`
        would otherwise add a second separator and change the answer).
        """
        if pairs is None:
            encodings = [self.encode_long(text, encoding) for text, encoding in zip(texts, self.encode_cut(texts))]
        elif self.tokenizer.post_processor is not None:
            encodings = self.encode_pairs(texts, pairs)
        else:  # no template to join parts with: the pair's token types come only from encoding it whole
            items = [(text, pair) if pair else text for text, pair in zip(texts, pairs)]
            encodings = self.tokenizer.encode_batch(items, add_special_tokens=True)
        windows = [[encoding, *encoding.overflowing[: self.max_windows - 1]] for encoding in encodings]
        chunks = np.fromiter((len(row) for row in windows), dtype=np.int32, count=len(windows))
        truncated = np.fromiter(
            (len(e.overflowing) >= self.max_windows for e in encodings), dtype=bool, count=len(encodings)
        )
        flat = [window for row in windows for window in row]
        return Encoded(
            ids=[window.ids for window in flat],
            type_ids=[window.type_ids for window in flat],
            lengths=np.fromiter((len(window.ids) for window in flat), dtype=np.int64, count=len(flat)),
            rows=np.repeat(np.arange(len(windows)), chunks),
            chunks=chunks,
            truncated=truncated,
        )

    def encode_pairs(self, texts: Sequence[str], pairs: Sequence[str]) -> list[Encoding]:
        """Each distinct text and pair tokenized once, then joined (and truncated) by the tokenizer's own pair
        template, which is what encoding each pair whole does: a zero-shot window repeats every text once per
        candidate label and every hypothesis once per text."""
        distinct = list(dict.fromkeys([*texts, *(pair for pair in pairs if pair)]))
        parts = dict(zip(distinct, self.encode_parts(distinct)))
        return [self.tokenizer.post_process(parts[text], parts[pair] if pair else None) for text, pair in zip(texts, pairs)]

    def encode_parts(self, texts: Sequence[str]) -> list[Encoding]:
        """Texts as the parts of a pair: no special tokens and not truncated (the joined pair is)."""
        truncation = self.tokenizer.truncation
        self.tokenizer.no_truncation()
        try:
            return self.tokenizer.encode_batch(texts, add_special_tokens=False)
        finally:
            self.tokenizer.enable_truncation(**truncation)

    def encode_cut(self, texts: Sequence[str]) -> list[Encoding]:
        return self.tokenizer.encode_batch([cut_at_space(text, self.char_budget) for text in texts])

    def encode_long(self, text: str, encoding: Encoding) -> Encoding:
        """The encoding of `text` as if it had not been cut: exact as long as the kept windows end before the cut.

        Windows are built from whole words before the cut (cut at a space, where every pre-tokenizer splits).
        When the cut text did not even fill the kept windows (a text of very long tokens), encode more of it.
        """
        budget = self.char_budget
        while len(text) > budget and len(encoding.overflowing) < self.max_windows:
            budget *= 4
            encoding = self.tokenizer.encode(cut_at_space(text, budget))
        return encoding

    def pad(self, ids: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad to `length`, as the PyTorch tokenizer does with padding=True; also returns the mask."""
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        attention_mask = (np.arange(length) < lengths[:, None]).astype(np.int64)
        return right_pad(ids, length, self.pad_token_id), attention_mask


def cut_at_space(text: str, budget: int) -> str:
    """`text` up to the first whitespace at or after `budget` characters (all of it when shorter).

    A text with no whitespace there (CJK, a base64 blob) is cut at twice the budget: only the last tokens before
    the cut can differ, and they lie past the windows that are kept.
    """
    if len(text) <= budget:
        return text
    space = SPACE.search(text, budget, 2 * budget)
    return text[: space.start() if space else 2 * budget]


def right_pad(rows: list[list[int]], length: int, fill: int) -> np.ndarray:
    """Rows of unequal length as one int64 matrix; token types are padded with 0, as every tokenizer does."""
    padded = np.full((len(rows), length), fill, dtype=np.int64)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = row
    return padded
