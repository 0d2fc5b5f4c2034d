"""OpenVINO on the exported `model.onnx`: the bf16 path, since ONNX Runtime's CPU provider has no bf16 arithmetic on x86.

Installed with the optional `bf16` extra; the scoring host stays torch-free.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from runtime.errors import ConfigurationError

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
    """One compiled model with one single-thread stream per thread: `run_all(feeds)` keeps every stream busy.

    Measured on 2 cores (README "Precision"): two one-thread streams scored 1.2x (f32) to 1.6x (bf16) what one
    two-thread stream did. The precision is explicit both ways: on a bf16-capable CPU OpenVINO picks bf16 even
    for f32 graphs unless told otherwise.
    """

    def __init__(self, onnx_path: Path, precision: Literal["fp32", "bf16"], threads: int) -> None:
        if ov is None:
            raise ConfigurationError(
                f"--precision {precision} needs OpenVINO: pip install 'onnx-batch-scorer[bf16]' (or openvino>=2025)"
            )
        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": threads,
            "INFERENCE_NUM_THREADS": threads,
        }
        self.compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        width = self.compiled.outputs[0].get_partial_shape()[-1]
        self.output_width = width.get_length() if width.is_static else None
        self.requests = [self.compiled.create_infer_request() for _ in range(threads)]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return next(self.run_all([feed]))

    def run_all(self, feeds: Iterable[dict[str, np.ndarray]]) -> Iterator[np.ndarray]:
        """Logits per feed in order: a feed starts on an idle request; the oldest running one is awaited first."""
        idle, running = deque(self.requests), deque()
        for feed in feeds:
            if not idle:
                yield self._finish(running[0])
                idle.append(running.popleft())
            request = idle.popleft()
            request.start_async({name: feed[name] for name in self.input_names})
            running.append(request)
        while running:
            yield self._finish(running.popleft())

    @staticmethod
    def _finish(request: ov.InferRequest) -> np.ndarray:
        """Wait for a request; its logits as float32, copied out of the request's reusable output buffer."""
        request.wait()
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)
