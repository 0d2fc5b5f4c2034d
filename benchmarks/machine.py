"""What the machine can do: its CPU flags and its MatMul peak per precision, measured in the same run.

fp32 and int8 as ONNX Runtime reaches them (int8: its dynamic quantization, as the `--quantize int8` export runs),
bf16 as the best of OpenVINO's bf16 MatMul (the runtime's bf16 path) and torch's bf16 GEMM (what autocast gets).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runtime.model.precision import host_cpu
from runtime.model.session import make_session

def cpu_flags() -> dict[str, object]:
    """CPU model and the SIMD flags that decide fp32, bf16 and int8 speed, as the runtime's precision choice sees them."""
    return host_cpu().record()


def matmul_graph(path: Path, m: int, k: int, n: int) -> None:
    """One fp32 MatMul of an [m, k] input by a constant [k, n] weight: the FFN shape of a base model."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul_peak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        initializer=[weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


PEAK_SHAPES = ((4096, 768, 3072), (4096, 3072, 768), (2048, 2048, 2048), (1024, 768, 768))


def best_seconds(run: Callable[[], object], repeats: int = 12) -> float:
    """Best-of-N wall seconds after one warm-up run."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def compiled_matmul(path: Path, how: str, threads: int) -> Callable[[np.ndarray], object]:
    """The MatMul graph at `path` as run by: ort (fp32), ort-int8 (dynamic int8), openvino-bf16."""
    if how == "ort-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = path.with_name("matmul.int8.onnx")
        quantize_dynamic(path, quantized, weight_type=QuantType.QInt8, per_channel=True)
        path = quantized
    if how == "openvino-bf16":
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}
        request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
        return lambda x: request.infer({"x": x})
    session = make_session(path, threads)
    return lambda x: session.run(None, {"x": x})


def matmul_gflops(threads: int, m: int, k: int, n: int, how: str = "ort") -> float:
    """Best-of-N GFLOP/s (GOP/s for int8) of one large MatMul on all cores."""
    x = np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)
    if how == "torch-bf16":
        import torch

        torch.set_num_threads(threads)
        a, b = torch.from_numpy(x).bfloat16(), torch.randn(k, n, dtype=torch.bfloat16)
        return 2 * m * k * n / best_seconds(lambda: a @ b) / 1e9
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "matmul.onnx"
        matmul_graph(path, m, k, n)
        run = compiled_matmul(path, how, threads)
        return 2 * m * k * n / best_seconds(lambda: run(x)) / 1e9


def matmul_peak_gflops(threads: int, how: str = "ort") -> tuple[float, dict[str, float]]:
    """The machine's limit as `how` reaches it: the best of a few transformer-sized shapes."""
    by_shape = {"x".join(map(str, shape)): round(matmul_gflops(threads, *shape, how=how), 1) for shape in PEAK_SHAPES}
    return max(by_shape.values()), by_shape


PEAK_RUNNERS = {"fp32": ("ort",), "int8": ("ort-int8",), "bf16": ("openvino-bf16", "torch-bf16")}


def precision_peaks(threads: int, precisions: list[str]) -> dict[str, dict[str, object]]:
    """Per precision: its peak (the best runner's) and every runner's best shape, in one run."""
    peaks = {}
    for precision in precisions:
        by_runner = {how: matmul_peak_gflops(threads, how) for how in PEAK_RUNNERS[precision]}
        best = max(by_runner, key=lambda how: by_runner[how][0])
        peaks[precision] = {
            "peak": round(by_runner[best][0], 1),
            "by": best,
            "runners": {how: {"peak": round(peak, 1), "by_shape_mkn": shapes} for how, (peak, shapes) in by_runner.items()},
        }
    return peaks
