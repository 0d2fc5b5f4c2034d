"""Checkpoint -> validated model dir, published atomically: a failed export leaves nothing at `out`."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from export import DEFAULT_OPSET
from export.checkpoint import Checkpoint, load_checkpoint
from export.onnx_export import export, onnx_opset
from export.probes import agreement_texts, probe_texts, read_agreement_texts
from export.quantize import quantize_until_agreement
from export.source import CheckpointSource
from export.validate import validate_model_outputs
from runtime.files.storage import TEMP_MARKER, durable_exchange, temp_name
from runtime.model.model_dir import ONNX_FILE, Activation, Manifest, package_versions
from runtime.scoring.scorer import Scorer
from runtime.model.session import make_session

VERSIONED_PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers")


def activation_of(checkpoint: Checkpoint) -> Activation:
    """The pipeline's rule: none for regression heads, sigmoid for multi-label or a single logit, else softmax."""
    config = checkpoint.model.config
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def position_offset(checkpoint: Checkpoint) -> int:
    """Positions the model reserves before the first token.

    RoBERTa, XLM-R, CamemBERT, MPNet and their kin number positions from `padding_idx + 1`, which their
    position embedding table marks with a padding index; BERT-style tables start at 0 and have none.
    """
    embeddings = getattr(checkpoint.model.base_model, "embeddings", None)
    table = getattr(embeddings, "position_embeddings", None)
    padding_idx = getattr(table, "padding_idx", None)
    return 0 if padding_idx is None else padding_idx + 1


def max_length_of(checkpoint: Checkpoint) -> int:
    """The tokenizer's limit, capped by the position embeddings (tokenizers often say 1e30 for 'none')."""
    positions = getattr(checkpoint.model.config, "max_position_embeddings", None)
    limits = [checkpoint.tokenizer.model_max_length, positions and positions - position_offset(checkpoint)]
    return int(min(limit for limit in limits if limit and limit < 1_000_000))


def nli_label_ids(checkpoint: Checkpoint) -> tuple[int | None, int | None]:
    """(entailment id, contradiction id) as `pipeline("zero-shot-classification")` picks them, or (None, None).

    The pipeline takes the first label2id name starting with "entail" (any case) and, without looking at names,
    id 0 as contradiction (the last id when entailment is 0); recording its choice keeps the answers equal.
    """
    config = checkpoint.model.config
    entailment = next((int(i) for label, i in config.label2id.items() if label.lower().startswith("entail")), None)
    if entailment is None:
        return None, None
    return entailment, config.num_labels - 1 if entailment == 0 else 0


def build_manifest(checkpoint: Checkpoint, model_dir: Path) -> Manifest:
    config = checkpoint.model.config
    onnx_path = model_dir / ONNX_FILE
    max_length = max_length_of(checkpoint)
    entailment_id, contradiction_id = nli_label_ids(checkpoint)
    return Manifest(
        checkpoint=checkpoint.name,
        model_type=config.model_type,
        labels=[config.id2label[i] for i in range(config.num_labels)],
        activation=activation_of(checkpoint),
        max_length=max_length,
        onnx_inputs=[node.name for node in make_session(onnx_path, threads=1).get_inputs()],
        opset=onnx_opset(onnx_path),
        versions=package_versions(VERSIONED_PACKAGES),
        pad_token_id=int(checkpoint.tokenizer.pad_token_id or 0),
        entailment_id=entailment_id,
        contradiction_id=contradiction_id,
        probes=probe_texts(max_length),
    )


def record_probe_outputs(manifest: Manifest, model_dir: Path) -> None:
    """Store the runtime's own answers and token ids on the probes, so `runtime.verify` can check a new host."""
    scorer = Scorer(model_dir)
    manifest.probe_probabilities = scorer.score(manifest.probes).probabilities.tolist()
    manifest.probe_token_digest = scorer.token_digest(manifest.probes)
    manifest.write(model_dir)


def remove_path(path: Path) -> None:
    """Remove a dir tree, a file or a symlink (not what it points to); nothing if it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_leftovers(out: Path) -> None:
    """Remove the hidden `.OUT.tmp-PID-*` dirs beside `out` whose export process is gone (it was killed).

    Each holds a half-built model or, when the kill came right after the swap, the previous model; without this
    they would pile up unseen. Run only after a successful publish, so no old model is removed before a new one
    is in place; a live export's staging dir (its PID still running) is left alone.
    """
    prefix = f".{out.name}{TEMP_MARKER}"
    for leftover in out.parent.glob(f"{glob.escape(prefix)}*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            remove_path(leftover)


def publish(staging: Path, out: Path) -> None:
    """Swap the finished dir into place in one atomic, durable step: `out` is the old model dir or the new one at
    any moment, a crash included. The old one, now at the staging name, is removed afterwards."""
    durable_exchange(staging, out)
    remove_path(staging)
    remove_leftovers(out)


def build_model_dir(
    checkpoint_name: str | CheckpointSource,
    out: Path,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    agreement_file: Path | None = None,
) -> Manifest:
    """Export, validate against PyTorch, optionally quantize (and check agreement), then publish.

    int8 agreement is judged on the probes plus `agreement_file`'s texts, or generated review-like sentences.
    """
    own_texts = read_agreement_texts(agreement_file) if agreement_file else None  # bad input fails before export
    checkpoint = load_checkpoint(checkpoint_name)
    out = Path(os.path.abspath(out))  # `--out .` has a name (for the staging dir) only once absolute
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(temp_name(out.name))
    try:
        optimizations = export(checkpoint, staging, opset=opset)
        manifest = build_manifest(checkpoint, staging)
        manifest.graph_optimizations = optimizations
        manifest.write(staging)
        report = validate_model_outputs(
            checkpoint, staging, manifest.probes, manifest.activation, manifest.max_length
        )
        manifest.parity = report.as_dict()
        if quantize == "int8":
            manifest.quantization = quantize_until_agreement(
                checkpoint,
                staging,
                agreement_texts(manifest.max_length, own=own_texts),
                manifest.activation,
                manifest.max_length,
            )
            manifest.quantization["agreement_texts"] = str(agreement_file) if agreement_file else "generated"
            manifest.write(staging)
        record_probe_outputs(manifest, staging)
        publish(staging, out)
    finally:
        remove_path(staging)
    return manifest
