"""Where an export may publish: never over its own checkpoint, and over data it did not write only when forced.

Publishing replaces whatever is at --out, so this is decided before the slow export starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from export.source import CheckpointSource
from runtime.errors import ConfigurationError
from runtime.model.model_dir import MANIFEST_FILE


def is_model_dir(path: Path) -> bool:
    """A dir with a readable manifest.json of the kind `python -m export` writes: a format version, and the model's
    identity (format 2) or its graph's sha256 (format 1, so that re-exporting over an old model dir needs no --force)."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest and bool({"identity", "sha256"} & manifest.keys())


def check_destination(out: Path, source: CheckpointSource, force: bool) -> None:
    """Refuse an --out that is, contains or lies inside the checkpoint dir (symlinks resolved), even with --force,
    and an existing --out that is not a model dir this tool wrote unless `force`."""
    if source.is_local_dir:
        checkpoint, target = Path(source.name_or_path).resolve(), out.resolve()
        if target == checkpoint or checkpoint in target.parents or target in checkpoint.parents:
            relation = "is" if target == checkpoint else "lies inside" if checkpoint in target.parents else "contains"
            raise ConfigurationError(
                f"--out {out} {relation} the checkpoint dir {source.name}; choose an --out outside the checkpoint "
                "dir (an export never writes over, into or around its checkpoint, not even with --force)"
            )
    if os.path.lexists(out) and not force and not is_model_dir(out):
        raise ConfigurationError(
            f"--out {out} exists and is not a model dir written by `python -m export` (no manifest.json of ours); "
            "choose another --out, or add --force to replace it"
        )
