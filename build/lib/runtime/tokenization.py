"""Text to token ids with the Hugging Face `tokenizers` library, read from the model dir's tokenizer.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


@dataclass
class Encoded:
    """Unpadded ids of a window of texts; padding happens per batch once batches are planned."""

    ids: list[list[int]]
    lengths: np.ndarray
    truncated: np.ndarray


class TextEncoder:
    """Truncates to the model's max length and leaves padding to the batcher."""

    def __init__(self, tokenizer_path: Path, max_length: int, pad_token_id: int) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.pad_token_id = pad_token_id

    def encode(self, texts: list[str]) -> Encoded:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        ids = [encoding.ids for encoding in encodings]
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        truncated = np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(ids))
        return Encoded(ids=ids, lengths=lengths, truncated=truncated)

    def pad(self, ids: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad to `length`, as the PyTorch tokenizer does with padding=True."""
        input_ids = np.full((len(ids), length), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), length), dtype=np.int64)
        for row, token_ids in enumerate(ids):
            input_ids[row, : len(token_ids)] = token_ids
            attention_mask[row, : len(token_ids)] = 1
        return input_ids, attention_mask
