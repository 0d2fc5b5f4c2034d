"""Loading a checkpoint from a local dir or the Hugging Face cache/hub, with one clear error when it fails."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerFast

from runtime.errors import InputError


@dataclass
class Checkpoint:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast

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
    return Checkpoint(name=name, model=model.eval(), tokenizer=tokenizer)
