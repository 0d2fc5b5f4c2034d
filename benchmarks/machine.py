"""What the machine can do: its CPU flags and ONNX Runtime's fp32 MatMul peak, measured in the same run."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runtime.model.session import make_session

RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """CPU model and the SIMD flags that decide fp32 and int8 speed (VNNI, AMX, AVX-512)."""
    model, flags = "unknown", set()
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [flag for flag in RELEVANT_FLAGS if flag in flags]}


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


def matmul_gflops(threads: int, m: int, k: int, n: int, repeats: int = 12) -> float:
    """Best-of-N GFLOP/s of one large MatMul on all cores, with the scorer's own session settings."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "matmul.onnx"
        matmul_graph(path, m, k, n)
        session = make_session(path, threads)
        x = np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)
        session.run(None, {"x": x})
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(None, {"x": x})
            best = min(best, time.perf_counter() - start)
    return 2 * m * k * n / best / 1e9


def matmul_peak_gflops(threads: int) -> tuple[float, dict[str, float]]:
    """The machine's fp32 limit as ONNX Runtime reaches it: the best of a few transformer-sized shapes."""
    by_shape = {"x".join(map(str, shape)): round(matmul_gflops(threads, *shape), 1) for shape in PEAK_SHAPES}
    return max(by_shape.values()), by_shape
