"""Loading a checkpoint from a local dir or the Hugging Face cache/hub, with one clear error when it fails."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.utils import cached_file

from export.source import CheckpointSource, locate_checkpoint
from runtime.errors import ModelError
from runtime.model.model_dir import TOKENIZER_FILE


@dataclass
class Checkpoint:
    source: CheckpointSource
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    # the slow tokenizer's files the fast one was converted from, when the checkpoint has no tokenizer.json
    tokenizer_converted_from: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The checkpoint as the user named it, for messages and the manifest."""
        return self.source.name

    @property
    def forward_inputs(self) -> set[str]:
        """Inputs the model accepts: a BERT tokenizer on DistilBERT also yields token_type_ids."""
        return set(inspect.signature(self.model.forward).parameters)

    def slow_tokenizer(self) -> PreTrainedTokenizerBase:
        """The original (slow) tokenizer, loaded from where the fast one was and under the same offline rule."""
        where, local_only = self.source.name_or_path, self.source.local_only
        return AutoTokenizer.from_pretrained(where, use_fast=False, local_files_only=local_only)


def load_checkpoint(name: str | CheckpointSource) -> Checkpoint:
    """Load model and fast tokenizer from a local dir, else from the hub or (without one) its local cache."""
    source = name if isinstance(name, CheckpointSource) else locate_checkpoint(name)
    where, local_only = source.name_or_path, source.local_only
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(where, use_fast=True, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(where, config=config, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        if source.is_local_dir:
            raise ModelError(f"cannot load checkpoint dir {source.name}: {reason}") from None
        raise ModelError(f"cannot load checkpoint {source.name!r}: {reason}") from None
    if not tokenizer.is_fast:
        raise ModelError(f"checkpoint {source.name} has no fast tokenizer; the runtime needs tokenizer.json")
    converted_from = slow_tokenizer_files(where, tokenizer, local_only)
    return Checkpoint(
        source=source,
        model=model.eval(),
        tokenizer=tokenizer,
        tokenizer_converted_from=converted_from,
    )


def checkpoint_file(name: str, filename: str, local_only: bool) -> str | None:
    """Path of `filename` in a local checkpoint dir or the hub cache, None when the checkpoint lacks it."""
    return cached_file(
        name,
        filename,
        local_files_only=local_only,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )


def slow_tokenizer_files(name: str, tokenizer: PreTrainedTokenizerFast, local_only: bool) -> list[str]:
    """The files transformers built the fast tokenizer from (spiece.model, vocab.json + merges.txt, ...).

    Empty when the checkpoint ships tokenizer.json: nothing was converted. Building tokenizer.json from a
    SentencePiece model needs the `sentencepiece` and `protobuf` packages (the export extra installs them).
    """
    if checkpoint_file(name, TOKENIZER_FILE, local_only):
        return []
    files = [file for file in tokenizer.vocab_files_names.values() if file != TOKENIZER_FILE]
    return [file for file in files if checkpoint_file(name, file, local_only)]
