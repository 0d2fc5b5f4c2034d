"""OpenVINO on the exported `model.onnx`: the bf16 path, since ONNX Runtime's CPU provider has no bf16 arithmetic on x86.

Installed with the optional `bf16` extra; the scoring host stays torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from runtime.errors import InputError

try:
    import openvino as ov
except ImportError:  # pragma: no cover - depends on the installed extras
    ov = None

OpenVinoPrecision = Literal["f32", "bf16"]
PRECISION_HINTS: dict[str, OpenVinoPrecision] = {"fp32": "f32", "bf16": "bf16"}


def openvino_version() -> str | None:
    """OpenVINO's version, or None where the `bf16` extra is not installed."""
    return None if ov is None else ov.get_version()


class OpenVinoBackend:
    """One compiled model and one infer request: `run(feed) -> logits`, like the ONNX Runtime backend.

    The precision is explicit both ways: OpenVINO on a bf16-capable CPU picks bf16 even for an f32 request
    unless told otherwise.
    """

    def __init__(self, onnx_path: Path, precision: Literal["fp32", "bf16"], threads: int) -> None:
        if ov is None:
            raise InputError(
                f"--precision {precision} needs OpenVINO: pip install 'onnx-batch-scorer[bf16]' (or openvino>=2025)"
            )
        core = ov.Core()
        model = core.read_model(str(onnx_path))
        config = {
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": threads,
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self.request = self.compiled.create_infer_request()

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Logits as float32, copied out of the request's reusable output buffer."""
        outputs = self.request.infer({name: feed[name] for name in self.input_names})
        return np.array(outputs[0], dtype=np.float32)
