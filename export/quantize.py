"""Dynamic int8 quantization, accepted only when it still agrees with PyTorch."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from export.checkpoint import Checkpoint
from export.validate import torch_logits
from runtime.activations import activate
from runtime.model_dir import Activation
from runtime.scorer import Scorer

MIN_ARGMAX_AGREEMENT = 0.99


class QuantizationError(Exception):
    """The int8 model disagrees with PyTorch too often to be published."""


def cpu_has_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """VNNI runs u8 x s8 dot products without the overflow that forces `reduce_range` on plain AVX2."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


@dataclass
class AgreementReport:
    argmax_agreement: float
    max_abs_diff_probabilities: float
    texts: int
    min_agreement: float

    def as_dict(self) -> dict:
        return asdict(self)


def quantize_int8(onnx_path: Path, reduce_range: bool | None = None) -> dict:
    """Quantize weights per channel to int8 in place; return what the manifest records about it."""
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    quantized = onnx_path.with_name(onnx_path.stem + ".int8.onnx")
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # quantize_dynamic warns about pre-processing that does not apply here
    try:
        quantize_dynamic(
            onnx_path,
            quantized,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
        )
    finally:
        root_logger.setLevel(level)
    quantized.replace(onnx_path)
    return {"method": "dynamic", "weight_type": "int8", "per_channel": True, "reduce_range": reduce_range}


def check_agreement(
    checkpoint: Checkpoint,
    model_dir: Path,
    texts: list[str],
    activation: Activation,
    max_length: int,
    min_agreement: float = MIN_ARGMAX_AGREEMENT,
) -> AgreementReport:
    """Argmax agreement and max probability gap of the runtime (int8) against PyTorch (fp32)."""
    expected = activate(torch_logits(checkpoint, texts, 32, max_length), activation)
    scores = Scorer(model_dir, verify_sha256=False).score(texts)
    report = AgreementReport(
        argmax_agreement=float(np.mean(expected.argmax(axis=1) == scores.label_ids)),
        max_abs_diff_probabilities=float(np.abs(expected - scores.probabilities).max()),
        texts=len(texts),
        min_agreement=min_agreement,
    )
    if report.argmax_agreement < min_agreement:
        raise QuantizationError(
            f"int8 model agrees with PyTorch on {report.argmax_agreement:.1%} of {len(texts)} texts, "
            f"below the {min_agreement:.0%} bar; publish the fp32 model instead"
        )
    return report
