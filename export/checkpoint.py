"""Loading a checkpoint from a local dir or the Hugging Face cache/hub, with one clear error when it fails."""

from __future__ import annotations

import inspect
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerFast
from transformers.utils import cached_file

from runtime.errors import InputError
from runtime.model_dir import TOKENIZER_FILE

DEFAULT_HUB = "https://huggingface.co"
HUB_PROBE_SECONDS = 3.0


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


def looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else a user types is a path on this machine."""
    return (
        name.startswith((".", "/", "~"))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or Path(name).exists()
    )


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """One TCP connect to the hub, bounded in time (name resolution included): no retry storms offline."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or DEFAULT_HUB)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    reachable = threading.Event()

    def connect() -> None:
        try:
            socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
            reachable.set()
        except OSError:
            pass

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout)
    return reachable.is_set()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def load_checkpoint(name: str) -> Checkpoint:
    """Load model and fast tokenizer from a local dir, else from the hub or its local cache.

    Without a reachable hub, only the local cache is asked (`local_files_only`): huggingface_hub would
    otherwise retry for half a minute before failing.
    """
    is_local = Path(name).expanduser().is_dir()
    if not is_local and looks_like_path(name):
        raise InputError(f"checkpoint dir {name} does not exist (no such directory); pass a checkpoint directory")
    if is_local:
        name_or_path, local_only = str(Path(name).expanduser()), True
    else:
        name_or_path, local_only = name, offline() or not hub_reachable()
    try:
        config = AutoConfig.from_pretrained(name_or_path, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, config=config, local_files_only=local_only
        )
    except (OSError, ValueError) as exc:
        if is_local:
            reason = str(exc).splitlines()[0]
            raise InputError(f"cannot load checkpoint dir {name}: {reason}") from None
        if not local_only:
            raise InputError(f"cannot load checkpoint {name!r} from the hub: {str(exc).splitlines()[0]}") from None
        why = "HF_HUB_OFFLINE is set" if offline() else "the hub is not reachable"
        raise InputError(
            f"cannot load checkpoint {name!r}: it is not a local directory and not in the local Hugging Face "
            f"cache, and {why}; pass a local checkpoint directory with --checkpoint DIR"
        ) from None
    if not tokenizer.is_fast:
        raise InputError(f"checkpoint {name} has no fast tokenizer; the runtime needs tokenizer.json")
    converted_from = slow_tokenizer_files(name_or_path, tokenizer, local_only)
    return Checkpoint(name=name, model=model.eval(), tokenizer=tokenizer, tokenizer_converted_from=converted_from)


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
    files = [file for key, file in tokenizer.vocab_files_names.items() if file != TOKENIZER_FILE]
    return [file for file in files if checkpoint_file(name, file, local_only)]
