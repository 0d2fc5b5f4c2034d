"""Checkpoint -> ONNX graph and tokenizer files, through optimum's exporter (dynamic batch and sequence axes)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
from optimum.exporters.onnx import onnx_export_from_model

from export.checkpoint import Checkpoint
from export.first_token import first_token_last_layer
from runtime.model_dir import ONNX_FILE

DEFAULT_OPSET = 17


def export(checkpoint: Checkpoint, out_dir: Path, opset: int = DEFAULT_OPSET) -> list[str]:
    """Write model.onnx, config.json and the fast tokenizer's files into `out_dir`; validation is separate.

    Returns the graph optimizations applied on the way, for the manifest.
    """
    logging.getLogger("optimum").setLevel(logging.ERROR)
    with warnings.catch_warnings(), first_token_last_layer(checkpoint.model) as optimizations:
        warnings.simplefilter("ignore")  # tracer warnings about constant masks: expected for these models
        onnx_export_from_model(
            checkpoint.model,
            out_dir,
            opset=opset,
            task="text-classification",
            do_validation=False,
        )
    checkpoint.tokenizer.save_pretrained(out_dir)
    onnx.checker.check_model(str(out_dir / ONNX_FILE))
    return optimizations


def onnx_opset(onnx_path: Path) -> int:
    model = onnx.load(str(onnx_path), load_external_data=False)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
