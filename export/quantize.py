"""Dynamic int8 quantization, accepted only when it still agrees with PyTorch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from export.checkpoint import Checkpoint
from export.errors import QuantizationError
from export.validate import torch_logits
from runtime.model.activations import activate
from runtime.model.model_dir import ONNX_FILE, Activation
from runtime.scoring.scorer import Scorer

MIN_ARGMAX_AGREEMENT = 0.99
# Agreement means little when the reference itself answers one class for (almost) every text.
DOMINANT_CLASS_SHARE = 0.95
QUANTIZED_OPS = ("MatMul",)  # int8 embedding tables (Gather) would add error and no speed


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
    reference_class_shares: list[float]

    def as_dict(self) -> dict:
        return asdict(self)


def class_shares(probabilities: np.ndarray) -> list[float]:
    """How often each label is the reference's answer, in label-id order."""
    counts = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])
    return (counts / max(1, len(probabilities))).round(4).tolist()


def dominant_class_warning(agreement: dict, labels: list[str]) -> str | None:
    """A one-line warning when the reference predicts one class for nearly every agreement text."""
    shares = agreement["reference_class_shares"]
    top = int(np.argmax(shares))
    if shares[top] <= DOMINANT_CLASS_SHARE:
        return None
    return (
        f"PyTorch itself predicts {labels[top]!r} for {shares[top]:.1%} of the {agreement['texts']} agreement texts, "
        "so the int8 agreement says little; check the model (an untrained head?) before trusting it"
    )


def quantizable_matmuls(onnx_path: Path) -> list[str]:
    """MatMul nodes with a constant weight, in graph order: the ones dynamic quantization makes int8.

    Graph order is layer order, since every MatMul of one layer feeds all of the next.
    """
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights]


def quantize_int8(source: Path, target: Path, reduce_range: bool | None = None, keep_fp32: Sequence[str] = ()) -> dict:
    """Quantize weights per channel to int8, except the MatMuls in `keep_fp32`; return what the manifest records."""
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # quantize_dynamic warns about pre-processing that does not apply here
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=list(keep_fp32),
        )
    finally:
        root_logger.setLevel(level)
    return {
        "method": "dynamic",
        "weight_type": "int8",
        "per_channel": True,
        "reduce_range": reduce_range,
        "op_types": list(QUANTIZED_OPS),
    }


def quantize_until_agreement(
    checkpoint: Checkpoint,
    model_dir: Path,
    texts: list[str],
    activation: Activation,
    max_length: int,
    min_agreement: float = MIN_ARGMAX_AGREEMENT,
) -> dict:
    """Quantize model_dir's graph in place, keeping as few leading layers fp32 as agreement with PyTorch allows.

    Every MatMul is tried in int8 first. Below the bar, the first layer's MatMuls stay fp32, then the first two,
    up to half the layers: early layers carry the activation outliers that per-tensor int8 handles worst (on
    the demo model, int8 in any one of layers 0-2 flips 1-2% of texts, in layers 3-5 almost none).
    """
    onnx_path = model_dir / ONNX_FILE
    fp32_path = onnx_path.with_name("model.fp32.onnx")
    onnx_path.replace(fp32_path)
    expected = activate(torch_logits(checkpoint, texts, 32, max_length), activation)
    matmuls = quantizable_matmuls(fp32_path)
    layers = checkpoint.model.config.num_hidden_layers
    per_layer = -(-len(matmuls) // layers)
    for fp32_layers in range(layers // 2 + 1):
        keep = matmuls[: fp32_layers * per_layer]
        quantization = quantize_int8(fp32_path, onnx_path, keep_fp32=keep)
        scores = Scorer(model_dir, verify_sha256=False).score(texts)
        report = AgreementReport(
            argmax_agreement=float(np.mean(expected.argmax(axis=1) == scores.label_ids)),
            max_abs_diff_probabilities=float(np.abs(expected - scores.probabilities).max()),
            texts=len(texts),
            min_agreement=min_agreement,
            reference_class_shares=class_shares(expected),
        )
        if report.argmax_agreement >= min_agreement:
            fp32_path.unlink()
            return {
                **quantization,
                "fp32_leading_layers": fp32_layers,
                "int8_matmuls": len(matmuls) - len(keep),
                "fp32_matmuls": len(keep),
                "agreement": report.as_dict(),
            }
    raise QuantizationError(
        f"int8 model agrees with PyTorch on {report.argmax_agreement:.1%} of {len(texts)} texts even with its first "
        f"{fp32_layers} of {layers} layers in fp32, below the {min_agreement:.0%} bar; publish the fp32 model instead"
    )
