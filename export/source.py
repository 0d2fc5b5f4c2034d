"""Where a checkpoint comes from (a local dir, the Hugging Face cache, or the hub), decided before any heavy import.

A mistyped path or an unreachable hub is known in a second; importing torch and transformers alone takes longer.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from runtime.errors import ConfigurationError

DEFAULT_CHECKPOINT = "distilbert-base-uncased-finetuned-sst-2-english"
DEFAULT_HUB = "https://huggingface.co"
HUB_PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class CheckpointSource:
    """What to hand transformers' `from_pretrained`, and whether it may only look on this machine."""

    name: str
    name_or_path: str
    is_local_dir: bool
    local_only: bool


def looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else a user types is a path on this machine."""
    return name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1 or Path(name).exists()


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


def in_local_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def locate_checkpoint(name: str) -> CheckpointSource:
    """A local dir as is; a hub id from the hub when it answers, else from the local cache only.

    Without a reachable hub (or with HF_HUB_OFFLINE), huggingface_hub would retry for half a minute before
    failing, so the cache is asked first and a miss is one line at once.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return CheckpointSource(name, str(path), is_local_dir=True, local_only=True)
    if looks_like_path(name):
        raise ConfigurationError(f"checkpoint dir {name} does not exist (no such directory); pass a checkpoint directory")
    local_only = offline() or not hub_reachable()
    if local_only and not in_local_cache(name):
        why = "HF_HUB_OFFLINE is set" if offline() else "the hub is not reachable"
        raise ConfigurationError(
            f"cannot load checkpoint {name!r}: it is not a local directory and not in the local Hugging Face "
            f"cache, and {why}; pass a local checkpoint directory with --checkpoint DIR"
        )
    return CheckpointSource(name, name, is_local_dir=False, local_only=local_only)
