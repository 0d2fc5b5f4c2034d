"""Loading a checkpoint from a local dir or the Hugging Face cache/hub, with one clear error when it fails."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerFast
from transformers.utils import cached_file

from runtime.errors import InputError
from runtime.model_dir import TOKENIZER_FILE


@dataclass
class Checkpoint:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    # the slow tokenizer's files the fast one was converted from, when the checkpoint has no tokenizer.json
    tokenizer_converted_from: list[str] = field(default_factory=list)

    @property
    def forward_inputs(self) -> set[str]:
        """Inputs the model accepts: a BERT tokenizer on DistilBERT also yields token_type_ids."""
        return set(inspect.signature(self.model.forward).parameters)


def load_checkpoint(name: str) -> Checkpoint:
    """Load model and fast tokenizer; a vocab.txt-only checkpoint gets its tokenizer.json built here."""
    is_local = Path(name).is_dir()
    try:
        config = AutoConfig.from_pretrained(name)
        tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True)
        model = AutoModelForSequenceClassification.from_pretrained(name, config=config)
    except (OSError, ValueError) as exc:
        if is_local:
            reason = str(exc).splitlines()[0]
            raise InputError(f"cannot load checkpoint dir {name}: {reason}") from None
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise InputError(
            f"cannot load checkpoint {name!r}: it is not a local directory and not in the local "
            f"Hugging Face cache, and the hub is not reachable{offline}; pass a local checkpoint "
            "directory with --checkpoint DIR"
        ) from None
    if not tokenizer.is_fast:
        raise InputError(f"checkpoint {name} has no fast tokenizer; the runtime needs tokenizer.json")
    return Checkpoint(
        name=name,
        model=model.eval(),
        tokenizer=tokenizer,
        tokenizer_converted_from=slow_tokenizer_files(name, tokenizer),
    )


def checkpoint_file(name: str, filename: str) -> str | None:
    """Path of `filename` in a local checkpoint dir or the hub cache, None when the checkpoint lacks it."""
    return cached_file(
        name, filename, _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False
    )


def slow_tokenizer_files(name: str, tokenizer: PreTrainedTokenizerFast) -> list[str]:
    """The files transformers built the fast tokenizer from (spiece.model, vocab.json + merges.txt, ...).

    Empty when the checkpoint ships tokenizer.json: nothing was converted. Building tokenizer.json from a
    SentencePiece model needs the `sentencepiece` and `protobuf` packages (the export extra installs them).
    """
    if checkpoint_file(name, TOKENIZER_FILE):
        return []
    files = [file for file in tokenizer.vocab_files_names.values() if file != TOKENIZER_FILE]
    return [file for file in files if checkpoint_file(name, file)]
