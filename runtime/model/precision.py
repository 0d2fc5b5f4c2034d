"""Which precision scores: what this host computes natively, and the agreement gate a non-fp32 precision must pass.

fp32 is the pipeline's arithmetic. bf16 (OpenVINO on the same `model.onnx`) and int8 (the `--quantize int8`
export) change answers a little, so each must agree with the fp32 graph on at least MIN_AGREEMENT of the
agreement texts before it scores. bf16 is checked on the scoring host (the export host may lack bf16), and
the measurement is cached per model identity, precision, CPU kind, OpenVINO version and text set.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from runtime.errors import ConfigurationError
from runtime.model.model_dir import Manifest

Precision = Literal["fp32", "bf16", "int8"]
PrecisionChoice = Literal["fp32", "bf16", "int8", "auto"]
PRECISION_CHOICES: tuple[str, ...] = ("fp32", "bf16", "int8", "auto")
MIN_AGREEMENT = 0.99  # the int8 export's bar
# Set to 1 to run as a host without native bf16 (tests of the no-bf16 behaviour on bf16 hosts).
HIDE_BF16_ENV = "SCORER_HIDE_BF16"
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")
# Speed over this project's fp32 by the flag that makes it, DistilBERT-base on SST-2 dev, 2 cores, measured side
# by side (README "Precision"): AMX from issue 23's Xeon, AVX512-BF16 and VNNI from a 2-core EPYC.
EXPECTED_SPEEDUP: dict[str, tuple[tuple[str, float], ...]] = {
    "bf16": (("amx_bf16", 4.4), ("avx512_bf16", 1.8)),
    "int8": (("amx_int8", 3.7), ("avx512_vnni", 2.4)),
}


class Backend(Protocol):
    """What scoring needs of an inference runtime: the graph's input names and logits for feeds."""

    input_names: list[str]
    output_width: int | None  # logits per row, where the graph fixes it

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray: ...

    def run_all(self, feeds: Iterable[dict[str, np.ndarray]]) -> Iterator[np.ndarray]:
        """Logits per feed, in order; a backend with several streams keeps them all busy."""
        ...


@dataclass(frozen=True)
class HostCpu:
    """The CPU model and the flags that decide which precisions run natively."""

    model: str
    flags: tuple[str, ...]

    @property
    def kind(self) -> str:
        """A short, file-name-safe name for this kind of CPU: the cache key of agreement measurements."""
        digest = hashlib.sha256(json.dumps([self.model, self.flags]).encode()).hexdigest()[:12]
        return digest

    @property
    def bf16(self) -> bool:
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def int8(self) -> bool:
        """VNNI or AMX: int8 dot products without AVX2's `reduce_range` workaround."""
        return any(flag in self.flags for flag in INT8_FLAGS)

    def record(self) -> dict[str, object]:
        return {"model": self.model, "flags": list(self.flags)}


def host_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> HostCpu:
    """This host's CPU; with SCORER_HIDE_BF16=1 its bf16 flags are hidden, so it acts as a host without them."""
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
    if os.environ.get(HIDE_BF16_ENV, "") not in ("", "0"):
        flags -= set(BF16_FLAGS)
    return HostCpu(model, tuple(flag for flag in RELEVANT_FLAGS if flag in flags))


def openvino_installed() -> bool:
    from runtime.model.openvino_backend import openvino_version

    return openvino_version() is not None


def stored_precision(manifest: Manifest) -> Precision:
    """What the model dir's graph holds: int8 for a `--quantize int8` export, else fp32."""
    return "int8" if manifest.quantization else "fp32"


def host_precisions(manifest: Manifest, cpu: HostCpu) -> list[Precision]:
    """Precisions this host runs natively for this model dir, fastest first (before any agreement check)."""
    if stored_precision(manifest) == "int8":
        return ["int8"]
    faster = [p for p in ("bf16",) if cpu.bf16 and openvino_installed() and expected_speedup(cpu, p) > 1.0]
    return [*faster, "fp32"]


def host_capabilities(manifest: Manifest, cpu: HostCpu | None = None) -> str:
    """One line for `runtime.verify`: what this host runs for this model dir, and at what expected speed."""
    cpu = cpu or host_cpu()
    flags = " ".join(cpu.flags) or "none of " + " ".join(RELEVANT_FLAGS)
    runs = host_precisions(manifest, cpu)
    speeds = ", ".join(f"{p} (about {expected_speedup(cpu, p):.1f}x fp32)" if p != "fp32" else p for p in runs)
    missing = []
    if stored_precision(manifest) == "fp32" and not cpu.bf16:
        missing.append("bf16 needs avx512_bf16 or amx_bf16")
    elif stored_precision(manifest) == "fp32" and not openvino_installed():
        missing.append("bf16 needs OpenVINO (pip install 'onnx-batch-scorer[bf16]')")
    if stored_precision(manifest) == "fp32":
        missing.append(f"int8 needs the --quantize int8 export{'' if cpu.int8 else ' (AVX2: reduce_range)'}")
    return f"precisions on this host ({cpu.model}; {flags}): {speeds}" + (f"; {'; '.join(missing)}" if missing else "")


def expected_speedup(cpu: HostCpu, precision: Precision) -> float:
    """Measured end-to-end speed of `precision` over fp32 on this kind of CPU (1.0 where none was measured)."""
    return next((factor for flag, factor in EXPECTED_SPEEDUP.get(precision, ()) if flag in cpu.flags), 1.0)


def candidates(requested: PrecisionChoice | None, manifest: Manifest, cpu: HostCpu) -> list[Precision]:
    """The precisions to try in order; the first that passes agreement scores. Refuses what cannot run here."""
    stored = stored_precision(manifest)
    if requested is None:
        return [stored]
    if requested not in PRECISION_CHOICES:
        raise ConfigurationError(f"precision {requested!r} is not one of {', '.join(PRECISION_CHOICES)}")
    if requested == "auto":
        return host_precisions(manifest, cpu)
    if stored == "int8" and requested != "int8":
        raise ConfigurationError(
            f"this model dir holds the --quantize int8 export; --precision {requested} needs the fp32 export "
            "(python -m export without --quantize)"
        )
    if requested == "int8" and stored != "int8":
        raise ConfigurationError(
            "--precision int8 needs the --quantize int8 export of this model (python -m export --quantize int8); "
            "this model dir holds the fp32 graph"
        )
    if requested == "bf16" and not cpu.bf16:
        hidden = f" ({HIDE_BF16_ENV} is set)" if os.environ.get(HIDE_BF16_ENV, "") not in ("", "0") else ""
        raise ConfigurationError(
            f"--precision bf16 needs a CPU with native bf16 (avx512_bf16 or amx_bf16); this {cpu.model} has neither"
            f"{hidden}: use --precision fp32, or auto to take the fastest this host runs"
        )
    return [requested]


@dataclass
class Agreement:
    """A precision's answers against the fp32 graph's on the same texts, on this kind of host."""

    precision: Precision
    label_agreement: float
    max_abs_diff_probabilities: float
    texts: int
    measured_on: str  # "scoring host" or "export" (int8: against PyTorch at export time)
    cpu_kind: str
    speedup: float | None = None  # fp32 seconds / this precision's seconds on the agreement texts

    def passes(self, min_agreement: float) -> bool:
        return self.label_agreement >= min_agreement

    def record(self, min_agreement: float) -> dict[str, object]:
        return {**asdict(self), "min_agreement": min_agreement, "passed": self.passes(min_agreement)}


def compare(
    precision: Precision, reference: np.ndarray, candidate: np.ndarray, cpu: HostCpu, speedup: float | None
) -> Agreement:
    """Label agreement and max probability difference of `candidate` against the fp32 `reference`."""
    return Agreement(
        precision=precision,
        label_agreement=float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1))),
        max_abs_diff_probabilities=float(np.abs(reference - candidate).max()) if len(reference) else 0.0,
        texts=len(reference),
        measured_on="scoring host",
        cpu_kind=cpu.kind,
        speedup=speedup,
    )


def export_agreement(manifest: Manifest, cpu: HostCpu) -> Agreement:
    """int8's agreement as the export measured it: the fp32 graph is not in an int8 model dir to compare here."""
    measured = (manifest.quantization or {}).get("agreement") or {}
    return Agreement(
        precision="int8",
        label_agreement=float(measured.get("argmax_agreement", 0.0)),
        max_abs_diff_probabilities=float(measured.get("max_abs_diff_probabilities", 1.0)),
        texts=int(measured.get("texts", 0)),
        measured_on="export",
        cpu_kind=cpu.kind,
    )


def cache_dir() -> Path:
    """Where agreement measurements persist: $XDG_CACHE_HOME (or ~/.cache)/onnx-batch-scorer/precision."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "onnx-batch-scorer" / "precision"


def texts_digest(texts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()[:16]


def cached_agreement(key: dict[str, str], measure: Callable[[], Agreement]) -> Agreement:
    """The measurement stored under `key`, or a fresh one (then stored). The bar is applied by the caller,
    so a stricter bar never needs a new measurement.
    """
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32] + ".json"
    path = cache_dir() / name
    try:
        return Agreement(**json.loads(path.read_text(encoding="utf-8"))["agreement"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    agreement = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{name}.{os.getpid()}")
        scratch.write_text(json.dumps({"key": key, "agreement": asdict(agreement)}, indent=2), encoding="utf-8")
        os.replace(scratch, path)
    except OSError:
        pass  # a read-only cache costs a re-check next time, never a failed run
    return agreement


def refusal(agreement: Agreement, min_agreement: float) -> str:
    """The one-line reason a precision may not score."""
    return (
        f"--precision {agreement.precision} agrees with fp32 on {agreement.label_agreement:.1%} of "
        f"{agreement.texts} texts (max probability difference {agreement.max_abs_diff_probabilities:.1e}, measured "
        f"on the {agreement.measured_on}), below the {min_agreement:.0%} bar; score with --precision fp32"
    )


def faster_note(chosen: Precision, manifest: Manifest, cpu: HostCpu) -> str | None:
    """One line when this host runs a faster precision than the chosen one, with the expected factor."""
    options = []
    if chosen == "fp32" and cpu.bf16 and expected_speedup(cpu, "bf16") > 1.0:
        options.append(f"--precision bf16 (about {expected_speedup(cpu, 'bf16'):.1f}x)")
    if stored_precision(manifest) == "fp32" and cpu.int8 and expected_speedup(cpu, "int8") > 1.0:
        options.append(f"a --quantize int8 export (about {expected_speedup(cpu, 'int8'):.1f}x)")
    if not options:
        return None
    return f"this host could score faster than {chosen}: {' or '.join(options)}"
