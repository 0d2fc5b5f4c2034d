"""The model-dir format: the contract between `export` (writer) and `runtime` (reader).

A model dir holds `model.onnx`, `tokenizer.json` (plus the tokenizer's config files), the
checkpoint's `config.json` and `manifest.json`. The manifest is the only file the runtime trusts
for labels, activation and limits.

A model is known by its identity: one sha256 over the hashes of the files that decide its outputs
(the graph and the tokenizer) and the manifest fields that do (labels, activation, max length, pad id,
ONNX inputs). Two exports of the same weights with other labels or another tokenizer share a byte-identical
`model.onnx` but not an identity, so caches, `--resume` and footers tell them apart. The reader recomputes
the identity and rehashes every file, so a scoring host never runs a model that is not the one that was
validated at export time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from runtime.errors import ModelError

# Version 2 records `files` and `identity`; dirs of version 1 (known by model.onnx's sha256 alone) are refused
# with the "re-export the model" message.
FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
IDENTITY_FILES = (ONNX_FILE, TOKENIZER_FILE)  # the files the runtime reads to compute outputs
IDENTITY_FIELDS = ("labels", "activation", "max_length", "pad_token_id", "onnx_inputs")  # manifest fields that do
# Fields added later that decide outputs too: they enter the identity only when set, so dirs exported before
# them keep their identity.
OPTIONAL_IDENTITY_FIELDS = ("entailment_id", "contradiction_id")

Activation = Literal["softmax", "sigmoid", "none"]  # the pipeline's default function_to_apply


@dataclass
class Manifest:
    """What the exporter promises about a model dir."""

    checkpoint: str
    model_type: str
    labels: list[str]
    activation: Activation
    max_length: int
    onnx_inputs: list[str]
    opset: int
    versions: dict[str, str]
    pad_token_id: int = 0
    # An NLI head's label ids as the zero-shot pipeline picks them (None when no label starts with "entail").
    entailment_id: int | None = None
    contradiction_id: int | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    graph_optimizations: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    probe_probabilities: list[list[float]] = field(default_factory=list)
    probe_token_digest: str = ""  # sha256 of the probes' token ids: a tokenizer that encodes differently shows
    files: dict[str, str] = field(default_factory=dict)  # sha256 of each of IDENTITY_FILES
    identity: str = ""
    format_version: int = FORMAT_VERSION

    def write(self, model_dir: Path) -> None:
        """Hash the dir's files as they are now and write the manifest: a written manifest always matches its dir."""
        self.files = file_hashes(model_dir)
        self.identity = model_identity(self)
        text = json.dumps(asdict(self), indent=2, sort_keys=True)
        (model_dir / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")


def model_identity(manifest: Manifest) -> str:
    """The model's name everywhere (cache key, --resume, footers): a sha256 over the recorded file hashes and the
    manifest fields that decide outputs. The writer records it and the reader recomputes it, with this function."""
    deciding = {"files": manifest.files, **{name: getattr(manifest, name) for name in IDENTITY_FIELDS}}
    optional = {name: getattr(manifest, name) for name in OPTIONAL_IDENTITY_FIELDS}
    deciding.update({name: value for name, value in optional.items() if value is not None})
    return hashlib.sha256(json.dumps(deciding, sort_keys=True).encode()).hexdigest()


def file_hashes(model_dir: Path) -> dict[str, str]:
    """The sha256 of each file that decides outputs."""
    return {name: sha256_file(Path(model_dir) / name) for name in IDENTITY_FILES}


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `names`; packages that are not installed are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hash in chunks: ONNX files of base-size models are hundreds of MB."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(model_dir: Path, verify_sha256: bool = True) -> Manifest:
    """Read and check a model dir; raise ModelError with a one-line reason when it is not usable.

    The identity is always recomputed (cheap: an edited label fails); `verify_sha256` also rehashes every file
    of the identity (export turns it off while it still rewrites the graph).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(
            f"model dir {model_dir} does not exist; build one with `python -m export --out {model_dir}`"
        )
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelError(f"{manifest_path} is missing; {model_dir} is not a model dir made by `python -m export`")
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{manifest_path} is not readable JSON ({exc}); re-export the model") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path} has format version {version!r}, this runtime reads version {FORMAT_VERSION}; "
            "re-export the model with the matching `python -m export`"
        )
    try:
        manifest = Manifest(**raw)
    except TypeError as exc:
        raise ModelError(f"{manifest_path} does not match format version {FORMAT_VERSION} ({exc})") from None
    for name in IDENTITY_FILES:
        if not (model_dir / name).is_file():
            raise ModelError(f"{model_dir / name} is missing; re-export the model")
    files = manifest.files if isinstance(manifest.files, dict) else {}
    if sorted(files) != sorted(IDENTITY_FILES) or manifest.identity != model_identity(manifest):
        raise ModelError(
            f"{manifest_path} does not match its recorded identity: it was edited after export; re-export the model"
        )
    if verify_sha256:
        for name, actual in file_hashes(model_dir).items():
            if actual != files[name]:
                raise ModelError(
                    f"{model_dir / name} has sha256 {actual[:12]}…, the manifest says {files[name][:12]}…; "
                    "the model was changed after export: re-export it"
                )
    return manifest
