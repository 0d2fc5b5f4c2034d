"""Model dirs at a URI (s3://, gs://, hdfs://, abfs://, file://), copied into a local cache keyed by identity.

Scoring hosts need no shared filesystem for the model: each copies it once, under the identity its manifest
records, so two model dirs that share a `model.onnx` but not their labels or tokenizer get two entries. An
entry is verified (every file rehashed, the identity recomputed) each time it is used, so an entry damaged
on disk, or torn by a power loss before its rename reached the disk, is fetched again instead of being trusted;
that is also why the cache needs no fsync.

It reads the store through pyarrow.fs itself: the model layer sits below runtime/files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from runtime.errors import ConfigurationError, ModelError, StorageError, first_line
from runtime.model.model_dir import MANIFEST_FILE, read_manifest

URI_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
SHA256 = re.compile(r"[0-9a-f]{64}")


def model_cache_root() -> Path:
    """Where model dirs fetched from a URI are kept: $XDG_CACHE_HOME (default ~/.cache)/onnx-batch-scorer/models."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "onnx-batch-scorer" / "models"


def local_model_dir(model: str | os.PathLike[str]) -> Path:
    """The model dir on this host: a path as given, or a model at a URI fetched into the cache.

    Why a str is looked at before Path(): Path("s3://bucket/m") is "s3:/bucket/m", a local path.
    """
    return cached_model_dir(model)[0] if isinstance(model, str) and URI_SCHEME.match(model) else Path(model)


def open_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot open {uri} ({first_line(exc)}); check the URI and the store's credentials") from None
    return filesystem, path.rstrip("/")


def recorded_identity(filesystem: pafs.FileSystem, path: str, uri: str) -> str:
    """The identity the manifest at the URI records: the cache key, read without fetching the rest."""
    manifest_uri = f"{uri.rstrip('/')}/{MANIFEST_FILE}"
    try:
        with filesystem.open_input_stream(f"{path}/{MANIFEST_FILE}") as stream:
            identity = json.loads(stream.read()).get("identity", "")
    except FileNotFoundError:
        raise ModelError(
            f"{manifest_uri} does not exist; {uri} is not a model dir made by `python -m export`"
        ) from None
    except (OSError, pa.ArrowException, ValueError, AttributeError) as exc:
        raise StorageError(f"{manifest_uri} is not readable ({first_line(exc)})") from None
    if not isinstance(identity, str) or not SHA256.fullmatch(identity):
        raise ModelError(f"{manifest_uri} records no model identity; re-export the model with `python -m export`")
    return identity


def damage(entry: Path, identity: str) -> str | None:
    """Why the cached entry cannot be used (None: it is whole and is the model it is filed under)."""
    try:
        found = read_manifest(entry).identity
    except ModelError as exc:
        return first_line(exc)
    return None if found == identity else f"it holds model {found[:12]}, not {identity[:12]}"


def evict(entry: Path) -> None:
    """Move a damaged entry out of its key in one step, then delete it."""
    aside = entry.with_name(f".{entry.name}.evicted-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(entry, aside)
    except FileNotFoundError:  # another run evicted it first
        return
    shutil.rmtree(aside, ignore_errors=True)


def cached_model_dir(uri: str) -> tuple[Path, bool]:
    """The model dir at URI in the local cache, copied there if needed; (dir, whether the cache already held it).

    A copy is verified before it is renamed into the cache. A cached entry that fails verification is fetched
    again, once, with one `warning:` line on stderr; the source is not to blame for a damaged cache.
    """
    filesystem, path = open_uri(uri)
    identity = recorded_identity(filesystem, path, uri)
    target = model_cache_root() / identity
    if target.exists():
        reason = damage(target, identity)
        if reason is None:
            return target, True
        print(f"warning: cached model {target} is damaged ({reason}); fetching {uri} again", file=sys.stderr)
        evict(target)
    return fetch(filesystem, path, uri, target), False


def fetch(filesystem: pafs.FileSystem, path: str, uri: str, target: Path) -> Path:
    """Copy the model dir into a hidden staging dir, verify it, and rename it to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        pafs.copy_files(path, str(staging), source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem())
        reason = damage(staging, target.name)
        if reason is not None:
            raise ModelError(f"model {uri}: {reason}")
        try:
            os.replace(staging, target)
        except OSError:
            if damage(target, target.name) is not None:  # else another run cached it first: use that one
                raise
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"could not copy model {uri} into {target.parent} ({first_line(exc)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
