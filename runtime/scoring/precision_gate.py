"""Choosing the precision a model scores in: the candidates this host runs, each gated by agreement with fp32."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from runtime.errors import ModelError
from runtime.model.model_dir import ONNX_FILE
from runtime.model.openvino_backend import openvino_version
from runtime.model.precision import (
    Agreement,
    Backend,
    HostCpu,
    Precision,
    PrecisionChoice,
    cached_agreement,
    candidates,
    compare,
    export_agreement,
    faster_note,
    host_cpu,
    refusal,
    texts_digest,
)
from runtime.model.session import OnnxModel, open_backend


@dataclass
class ChosenPrecision:
    """The precision that scores, the agreement that let it, and the host it was judged on."""

    precision: Precision
    requested: PrecisionChoice | None
    agreement: Agreement | None  # None for fp32: it is the reference
    min_agreement: float
    cpu: HostCpu
    note: str | None  # a faster precision this host runs, with the expected factor

    def record(self) -> dict[str, object]:
        """What each output's footer says about the arithmetic that made it."""
        return {
            "precision": self.precision,
            "agreement": self.agreement.record(self.min_agreement) if self.agreement else None,
            "cpu": self.cpu.record(),
        }


def timed(run: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def measure(
    precision: Precision,
    model: OnnxModel,
    candidate_backend: Backend,
    texts: Sequence[str],
    probabilities: Callable[[Sequence[str]], np.ndarray],
    cpu: HostCpu,
) -> Agreement:
    """`candidate_backend` against the model's fp32 backend on `texts`, both warmed up first and timed.

    The model ends on its fp32 backend.
    """
    reference_backend = model.backend
    probabilities(texts[:2])
    reference, reference_seconds = timed(lambda: probabilities(texts))
    model.backend = candidate_backend
    try:
        probabilities(texts[:2])
        candidate, candidate_seconds = timed(lambda: probabilities(texts))
    finally:
        model.backend = reference_backend
    return compare(precision, reference, candidate, cpu, round(reference_seconds / candidate_seconds, 2))


def choose_precision(
    model: OnnxModel,
    requested: PrecisionChoice | None,
    texts: Sequence[str],
    min_agreement: float,
    probabilities: Callable[[Sequence[str]], np.ndarray],
) -> ChosenPrecision:
    """Try the candidates fastest first; the first whose agreement passes scores (fp32 always does).

    An explicit non-fp32 precision that fails agreement is refused with one line; `auto` moves on to the next.
    `probabilities(texts)` scores with the model's current backend.
    """
    cpu = host_cpu()
    for precision in candidates(requested, model.manifest, cpu):
        if precision == "fp32":
            return ChosenPrecision("fp32", requested, None, min_agreement, cpu, faster_note("fp32", model.manifest, cpu))
        candidate_backend: Backend | None = None
        if precision == "int8":
            agreement = export_agreement(model.manifest, cpu)
        else:
            if not texts:
                raise ModelError(f"{model.model_dir} records no probe texts to check bf16 agreement on; re-export it")
            key = {
                "model_identity": model.manifest.identity,
                "precision": precision,
                "cpu_kind": cpu.kind,
                "openvino": openvino_version() or "",
                "texts": texts_digest(texts),
            }
            candidate_backend = open_backend(model.model_dir / ONNX_FILE, precision, model.threads)
            agreement = cached_agreement(
                key, lambda: measure(precision, model, candidate_backend, texts, probabilities, cpu)
            )
        if agreement.passes(min_agreement):
            if candidate_backend is not None:
                model.backend = candidate_backend
            return ChosenPrecision(precision, requested, agreement, min_agreement, cpu, None)
        if requested != "auto":
            raise ModelError(refusal(agreement, min_agreement))
    raise AssertionError("fp32 is always the last candidate of auto")
