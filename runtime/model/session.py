"""The inference session: providers, threads and graph optimizations live here and nowhere else.

fp32 and int8 graphs run on ONNX Runtime; bf16 runs the same `model.onnx` on OpenVINO (runtime/model/openvino_backend.py),
chosen in `open_backend`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort

from runtime.errors import ModelError
from runtime.model.cache import local_model_dir
from runtime.model.model_dir import MANIFEST_FILE, ONNX_FILE, Manifest, read_manifest
from runtime.model.precision import Backend, Precision, stored_precision


def default_threads() -> int:
    """Every core this process may run on; ONNX Runtime ignores OMP_NUM_THREADS, so we decide."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def make_session(onnx_path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session with explicit thread counts and every graph optimization turned on."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Thread spinning stays on (ORT's default): turning it off halved int8 throughput on an idle host,
    # although it helped on a host overloaded by other jobs. Nightly jobs own their cores.
    return ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])


class OrtBackend:
    """ONNX Runtime on the graph as stored: fp32, or int8 for a `--quantize int8` export."""

    def __init__(self, onnx_path: Path, threads: int) -> None:
        self.session = make_session(onnx_path, threads)
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name
        width = self.session.get_outputs()[0].shape[-1]
        self.output_width = width if isinstance(width, int) else None

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph on the inputs it declares (DistilBERT has no token_type_ids)."""
        return self.session.run([self.output_name], {name: feed[name] for name in self.input_names})[0]

    def run_all(self, feeds: Iterable[dict[str, np.ndarray]]) -> Iterator[np.ndarray]:
        """One batch after another on all threads.

        Two one-thread runs at once beat this by 1.2-1.5x on 2 cores, but only measured with other jobs loading
        the host (README "Precision"); idle, fp32 reaches ~95% of the MatMul peak this way, so it stays.
        """
        return map(self.run, feeds)


def open_backend(onnx_path: Path, precision: Precision, threads: int) -> Backend:
    """The one place that picks the runtime for a (resolved) precision."""
    if precision == "bf16":
        from runtime.model.openvino_backend import OpenVinoBackend  # the optional `bf16` extra

        return OpenVinoBackend(onnx_path, "bf16", threads)
    return OrtBackend(onnx_path, threads)


class OnnxModel:
    """Owns a verified model dir and its backend; model families add pre- and post-processing."""

    def __init__(self, model_dir: str | Path, threads: int | None = None, verify_sha256: bool = True) -> None:
        self.model_dir = local_model_dir(model_dir)  # a path or any URI the CLI's --model takes
        self.manifest: Manifest = read_manifest(self.model_dir, verify_sha256=verify_sha256)
        self.threads = threads or default_threads()
        self.backend: Backend = open_backend(self.model_dir / ONNX_FILE, stored_precision(self.manifest), self.threads)
        self.input_names = self.backend.input_names
        width = self.backend.output_width
        if width is not None and width != len(self.manifest.labels):  # else a shape mismatch mid-run
            raise ModelError(
                f"{self.model_dir / ONNX_FILE} outputs {width} logits but {self.model_dir / MANIFEST_FILE} names "
                f"{len(self.manifest.labels)} labels; re-export the model"
            )

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session (fp32 and int8 backends only)."""
        return self.backend.session  # type: ignore[attr-defined]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.backend.run(feed)
