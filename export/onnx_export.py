"""Checkpoint -> ONNX graph and tokenizer files, through optimum's exporter (dynamic batch and sequence axes)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
from optimum.exporters.onnx import onnx_export_from_model
from optimum.exporters.tasks import TasksManager

from export import DEFAULT_OPSET
from export.checkpoint import Checkpoint
from export.first_token import first_token_last_layer
from runtime.errors import ModelError, first_line
from runtime.model.model_dir import ONNX_FILE



def export(checkpoint: Checkpoint, out_dir: Path, opset: int = DEFAULT_OPSET, first_token: bool = True) -> list[str]:
    """Write model.onnx, config.json and the fast tokenizer's files into `out_dir`; validation is separate.

    Returns the graph optimizations applied on the way, for the manifest. `first_token=False` exports the
    whole last layer (the benchmark's baseline for the first-token speed-up).
    """
    logging.getLogger("optimum").setLevel(logging.ERROR)
    architecture = type(checkpoint.model).__name__
    check_exportable(checkpoint.model.config.model_type, architecture)
    with warnings.catch_warnings(), first_token_last_layer(checkpoint.model, enabled=first_token) as optimizations:
        warnings.simplefilter("ignore")  # tracer warnings about constant masks: expected for these models
        try:
            onnx_export_from_model(
                checkpoint.model,
                out_dir,
                opset=opset,
                task="text-classification",
                do_validation=False,
            )
        except Exception as exc:  # the tracer's and optimum's reasons vary by architecture; keep the first line
            raise ModelError(f"cannot export {architecture}: the ONNX export failed ({first_line(exc)})") from exc
    checkpoint.tokenizer.save_pretrained(out_dir)
    onnx.checker.check_model(str(out_dir / ONNX_FILE))
    return optimizations


def check_exportable(model_type: str, architecture: str) -> None:
    """Refuse, in one line, a model type optimum's ONNX exporter has no text-classification config for."""
    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(model_type, "onnx", library_name="transformers")
    except KeyError:
        tasks = {}
    if "text-classification" not in tasks:
        raise ModelError(
            f"cannot export {architecture}: optimum's ONNX exporter does not support model type {model_type!r} "
            "for text classification (BERT, DistilBERT, RoBERTa, XLM-RoBERTa, DeBERTa-v2/v3, ALBERT, ELECTRA, "
            "MPNet and ModernBERT are tested)"
        )


def onnx_opset(onnx_path: Path) -> int:
    model = onnx.load(str(onnx_path), load_external_data=False)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
