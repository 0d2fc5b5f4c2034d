"""Text (or text pair) to token ids with the Hugging Face `tokenizers` library, read from tokenizer.json."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


@dataclass
class Encoded:
    """Unpadded ids and token types of a window of texts; padding happens per batch once batches are planned."""

    ids: list[list[int]]
    type_ids: list[list[int]]
    lengths: np.ndarray
    truncated: np.ndarray


class TextEncoder:
    """Truncates to the model's max length (longest first, as `truncation=True` does for pairs); no padding."""

    def __init__(self, tokenizer_path: Path, max_length: int, pad_token_id: int) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length, strategy="longest_first")
        self.pad_token_id = pad_token_id

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoded:
        """Encode texts, or (text, pair) items whose token types come from the tokenizer's pair template."""
        inputs = list(texts) if pairs is None else list(zip(texts, pairs))
        encodings = self.tokenizer.encode_batch(inputs, add_special_tokens=True)
        ids = [encoding.ids for encoding in encodings]
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        truncated = np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(ids))
        type_ids = [encoding.type_ids for encoding in encodings]
        return Encoded(ids=ids, type_ids=type_ids, lengths=lengths, truncated=truncated)

    def pad(self, ids: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad to `length`, as the PyTorch tokenizer does with padding=True; also returns the mask."""
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        attention_mask = (np.arange(length) < lengths[:, None]).astype(np.int64)
        return right_pad(ids, length, self.pad_token_id), attention_mask


def right_pad(rows: list[list[int]], length: int, fill: int) -> np.ndarray:
    """Rows of unequal length as one int64 matrix; token types are padded with 0, as every tokenizer does."""
    padded = np.full((len(rows), length), fill, dtype=np.int64)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = row
    return padded
