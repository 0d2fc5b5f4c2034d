"""Side-by-side throughput: the PyTorch pipeline, optimum's ORT model, and this project per precision, in one run.

Every figure is read as a ratio within the run (these hosts are shared and their CPUs differ), beside the
machine's MatMul peak of each precision measured in the same run (benchmarks/machine.py). bf16 rows (the
pipeline under bf16 autocast, this project with --precision bf16) run where the CPU has native bf16.
Usage: python -m benchmarks.throughput [--rows N] [--models distilbert-base roberta-base demo] [--skip CONFIG...]
"""

from __future__ import annotations

import argparse
import re
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.corpus import benchmark_texts
from benchmarks.report import write_report
from tests.support.processes import measured_run
from benchmarks.machine import cpu_flags, precision_peaks
from export.first_token import FIRST_TOKEN_LAST_LAYER
from runtime.text.batching import plan_batches
from runtime.model.model_dir import package_versions, read_manifest
from runtime.model.openvino_backend import openvino_version
from runtime.model.precision import host_cpu
from runtime.scoring.scorer import Scorer
from runtime.model.session import default_threads

ROOT = Path(__file__).resolve().parents[1]
BENCH_MODELS = ROOT / "models" / "bench"
BASELINE = "pipeline_bs32"
VERSIONED = ("torch", "transformers", "optimum-onnx", "onnxruntime", "openvino", "tokenizers", "numpy", "pyarrow", "ray")
BF16 = host_cpu().bf16 and openvino_version() is not None  # bf16 rows only where the CPU computes bf16 natively


def precision_of(config: str) -> str:
    """Which peak a configuration is measured against: the arithmetic its MatMuls run in."""
    return next((p for p in ("bf16", "int8") if p in config), "fp32")


class PeakRss:
    """Samples this process's RSS in a thread: peak memory of an in-process run."""

    def __enter__(self) -> PeakRss:
        self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(run: Callable[[], object]) -> tuple[float, float, None]:
    """Seconds and peak RSS (MB) of one in-process run."""
    with PeakRss() as rss:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    return seconds, rss.peak / 2**20, None


def timed_command(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds (process start included), the child's peak RSS (MB) and its own rows/s after model load."""
    seconds, rss_mb, summary = measured_run(command, cwd=ROOT, env=env)
    steady = re.search(r"([\d,]+) rows/s", summary)
    return seconds, rss_mb, float(steady.group(1).replace(",", ""))


def distilbert_base_checkpoint(path: Path) -> Path:
    """The seed checkpoint's exact shape and cost (default DistilBertConfig), random weights, fixed seed."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    from demo.train import encoder_dir

    torch.manual_seed(0)
    config = DistilBertConfig(num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    DistilBertForSequenceClassification(config).save_pretrained(path)
    DistilBertTokenizerFast(vocab_file=str(encoder_dir() / "vocab.txt"), model_max_length=512).save_pretrained(path)
    return path


def roberta_base_checkpoint(path: Path, texts: list[str]) -> Path:
    """RoBERTa-base's shape and cost (12 layers, 768 wide, 50265 ids, 514 positions), random weights.

    Its byte-level BPE is trained on the benchmark texts (8000 ids), so texts split into about as many tokens
    as with RoBERTa's own 50k vocabulary; `mean_tokens` in the report says how many.
    """
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from tests.support.families import roberta_tokenizer

    torch.manual_seed(0)
    backend, tokenizer_class, kwargs = roberta_tokenizer(texts, vocab_size=8000)
    labels = {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
    config = RobertaConfig(max_position_embeddings=514, type_vocab_size=1, num_labels=2, **labels)  # roberta-base's
    RobertaForSequenceClassification(config).save_pretrained(path)
    tokenizer_class(tokenizer_object=backend, model_max_length=512, **kwargs).save_pretrained(path)
    return path


def model_flops(model: object, token_counts: np.ndarray) -> float:
    """About 2 x non-embedding parameters per token, plus attention scores and mixing (4 x layers x L^2 x d)."""
    config = model.config
    weights = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    layers = getattr(config, "num_hidden_layers", getattr(config, "n_layers", 0))
    hidden = getattr(config, "hidden_size", getattr(config, "dim", 0))
    return float(2 * weights * token_counts.sum() + 4 * layers * hidden * (token_counts.astype(float) ** 2).sum())


def first_token_savings(model: object, lengths: np.ndarray) -> float:
    """FLOPs a first-token last layer skips: every linear but keys and values, and all but one attention query."""
    from torch import nn

    from export.first_token import last_layer_and_forward

    layer, _ = last_layer_and_forward(model)
    skipped = sum(
        module.weight.numel()
        for name, module in layer.named_modules()
        if isinstance(module, nn.Linear) and not name.endswith(("key", "value", "k_lin", "v_lin"))
    )
    hidden = getattr(model.config, "hidden_size", getattr(model.config, "dim", 0))
    lengths = lengths.astype(float)
    return float(2 * skipped * (lengths - 1).sum() + 4 * hidden * (lengths**2 - lengths).sum())


def padded_lengths(lengths: np.ndarray, batches: list[np.ndarray]) -> np.ndarray:
    """Each row's length as computed: its batch's longest row (padding costs as much as text)."""
    padded = np.empty_like(lengths)
    for batch in batches:
        padded[batch] = lengths[batch].max()
    return padded


def batch_plans(lengths: np.ndarray) -> dict[str, list[np.ndarray]]:
    """How each configuration batches the rows: the pipeline in input order, this project length-sorted."""
    in_order = [np.arange(start, min(start + 32, len(lengths))) for start in range(0, len(lengths), 32)]
    sorted_plan = plan_batches(lengths)
    plans = {"pipeline_bs1": [np.array([i]) for i in range(len(lengths))], BASELINE: in_order, "optimum_ort_bs32": in_order}
    plans[f"{BASELINE}_autocast_bf16"] = in_order
    plans.update({f"{how}_{p}": sorted_plan for how in ("scorer", "cli") for p in ("fp32", "int8", "bf16")})
    return plans


def bench_model(
    name: str,
    checkpoint: Path,
    model_dirs: dict[str, Path],
    texts: list[str],
    bs1_rows: int,
    scratch: Path,
    threads: int,
    skip: set[str],
) -> dict:
    """Every configuration on the same texts, one after another in this process; model_dirs maps fp32/int8.

    bf16 scores the fp32 model dir with --precision bf16 (OpenVINO), where the host has bf16.
    """
    import torch
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # DistilBERT takes no token_type_ids
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    precisions = {**{variant: (model_dir, None) for variant, model_dir in model_dirs.items()}}
    if BF16:
        precisions["bf16"] = (model_dirs["fp32"], "bf16")
    scorers = {p: Scorer(model_dir, threads=threads, precision=how) for p, (model_dir, how) in precisions.items()}
    token_counts = scorers["fp32"].preprocess(texts).lengths
    flops_per_text = model_flops(model, token_counts) / len(texts)
    plans = batch_plans(token_counts)
    pruned = read_manifest(model_dirs["fp32"]).graph_optimizations
    src = scratch / f"{name}.parquet"
    pq.write_table(pa.table({"id": np.arange(len(texts)), "text": texts}), src)

    def in_process(rows: int, run: Callable[[list[str]], object]) -> tuple[int, Callable[[], tuple]]:
        return rows, lambda: timed(lambda: run(texts[:rows]))

    def command(config: str, model_dir: Path, engine: str, *extra: str) -> tuple[int, Callable[[], tuple]]:
        out = scratch / f"{name}-{config}.parquet"
        argv = [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(model_dir), "--engine", engine]
        return len(texts), lambda: timed_command([*argv, *extra])

    def autocast_bf16(t: list[str]) -> object:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return classify(t, batch_size=32)

    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    runs = {
        "pipeline_bs1": in_process(bs1_rows, lambda t: classify(t, batch_size=1)),
        BASELINE: in_process(len(texts), lambda t: classify(t, batch_size=32)),
        **({f"{BASELINE}_autocast_bf16": in_process(len(texts), autocast_bf16)} if BF16 else {}),
    }
    if "optimum_ort_bs32" not in skip:  # its export alone takes a minute
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's tracer warnings
            ort_model = ORTModelForSequenceClassification.from_pretrained(  # optimum's own plain export, as users run it
                checkpoint, export=True, session_options=scorers["fp32"].session.get_session_options()
            )
        ort_classify = pipeline("text-classification", model=ort_model, tokenizer=tokenizer, device=-1)
        runs["optimum_ort_bs32"] = in_process(len(texts), lambda t: ort_classify(t, batch_size=32))
    for variant, scorer in scorers.items():
        scorer.score(texts[:32])  # warm the session's memory arena, as a long run would be
        runs[f"scorer_{variant}"] = in_process(len(texts), scorer.score)
    for variant, (model_dir, how) in precisions.items():
        runs[f"cli_{variant}"] = command(f"cli_{variant}", model_dir, "local", *(("--precision", how) if how else ()))
    runs["cli_ray_fp32"] = command("cli_ray_fp32", model_dirs["fp32"], "ray")

    results = {}
    for config, (rows, run) in runs.items():
        if config in skip:
            continue
        seconds, peak_mb, steady_rate = run()
        rate = rows / seconds
        results[config] = {
            "rows": rows,
            "seconds": round(seconds, 3),
            "sentences_per_s": round(rate, 2),
            "tokens_per_s": round(rate * float(token_counts[:rows].mean()), 1),
            "model_gflops": round(rate * flops_per_text / 1e9, 2),
            "peak_rss_mb": round(peak_mb, 1),
        }
        if config in plans:  # what the CPU really computed, padding included (Ray's actors batch on their own)
            padded = padded_lengths(token_counts[:rows], [b for b in plans[config] if b[0] < rows])
            executed = model_flops(model, padded)
            if config.startswith(("scorer", "cli")) and FIRST_TOKEN_LAST_LAYER in pruned:
                executed -= first_token_savings(model, padded)
            results[config]["executed_gflops"] = round(rate * executed / rows / 1e9, 2)
        if steady_rate is not None:
            results[config]["sentences_per_s_after_model_load"] = steady_rate
            results[config]["startup_s"] = round(seconds - rows / steady_rate, 2)  # interpreter, imports, model load
        print(f"  {name:<16} {config:<18} {rate:8.1f} sentences/s  ({seconds:.2f} s, peak RSS {peak_mb:.0f} MB)", flush=True)
    baseline = results[BASELINE]["sentences_per_s"]
    for entry in results.values():
        entry["ratio_vs_pipeline_bs32"] = round(entry["sentences_per_s"] / baseline, 2)
    return {
        "flops_per_text": flops_per_text,
        "mean_tokens": float(token_counts.mean()),
        # Parquet read/write cost: in-memory Scorer vs the CLI's own rate once its model is loaded
        "parquet_io_overhead": {
            variant: round(
                results[f"scorer_{variant}"]["sentences_per_s"] / results[f"cli_{variant}"]["sentences_per_s_after_model_load"] - 1, 3
            )
            for variant in precisions
            if f"cli_{variant}" in results
        },
        "configs": results,
    }


def model_dirs_for(name: str, texts: list[str]) -> tuple[Path, dict[str, Path], dict]:
    """Checkpoint, fp32/int8 model dirs (built when missing) and the int8 export's outcome (fp32 only for RoBERTa)."""
    from export.build import build_model_dir
    from export.errors import QuantizationError

    if name == "demo":
        checkpoint, fp32_dir = ROOT / "models" / "demo-checkpoint", ROOT / "models" / "demo"
        int8_dir = ROOT / "models" / "demo-int8"
    elif name == "roberta-base":
        checkpoint = roberta_base_checkpoint(BENCH_MODELS / "roberta-base-checkpoint", texts)
        fp32_dir, int8_dir = BENCH_MODELS / "roberta-base", None
    else:
        checkpoint = distilbert_base_checkpoint(BENCH_MODELS / "distilbert-base-checkpoint")
        fp32_dir, int8_dir = BENCH_MODELS / "distilbert-base", BENCH_MODELS / "distilbert-base-int8"
    if not fp32_dir.exists():
        build_model_dir(str(checkpoint), fp32_dir)
    dirs = {"fp32": fp32_dir}
    if int8_dir is None:
        return checkpoint, dirs, {"skipped": "fp32 only for this model"}
    try:
        if not int8_dir.exists():
            build_model_dir(str(checkpoint), int8_dir, quantize="int8")
        dirs["int8"] = int8_dir
        int8 = read_manifest(int8_dir).quantization
    except QuantizationError as exc:
        int8 = {"refused": str(exc)}
        print(f"  {name}: int8 export refused: {exc}", flush=True)
    return checkpoint, dirs, int8


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["models"])
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for axis, name in zip(axes[0], models):
        configs = report["models"][name]["configs"]
        ratios = [v["ratio_vs_pipeline_bs32"] for v in configs.values()]
        colors = ["#999999" if k.startswith(("pipeline", "optimum")) else "#1f77b4" for k in configs]
        bars = axis.bar(list(configs), ratios, color=colors)
        axis.bar_label(bars, labels=[f"{r:.2f}x" for r in ratios], fontsize=8)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_title(f"{name}: sentences/s vs pipeline at batch 32")
        axis.tick_params(axis="x", rotation=40, labelsize=8)
    fig.suptitle(f"{report['machine']['cpu']}, {report['machine']['cores']} threads; "
                 + "; MatMul peaks " + ", ".join(f"{p} {m['peak']:.0f}" for p, m in report["matmul_peaks"].items()))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3488, help="texts per run (SST-2 dev repeated 4 times)")
    parser.add_argument("--bs1-rows", type=int, default=436, help="texts for the slow batch-1 pipeline")
    parser.add_argument(
        "--models", nargs="+", default=["distilbert-base", "roberta-base", "demo"],
        choices=["distilbert-base", "roberta-base", "demo"],
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--skip", nargs="*", default=[], help="configurations to leave out, e.g. cli_ray_fp32 pipeline_bs1")
    args = parser.parse_args(argv)
    threads = default_threads()
    base = benchmark_texts()
    # Each repeat gets trailing spaces: the same tokens and the same work, but no exact repeats, so the Scorer's
    # per-window dedup cannot skip them (the pipeline has no dedup; benchmarks/dedup.py measures it on its own).
    texts = [base[i % len(base)] + " " * (i // len(base)) for i in range(args.rows)]
    peaks = precision_peaks(threads, ["fp32", "int8", *(["bf16"] if BF16 else [])])
    for precision, measured in peaks.items():
        print(f"{precision} MatMul peak ({measured['by']}, {threads} threads): {measured['peak']:.0f} G(FL)OP/s", flush=True)
    report = {
        "machine": {"cpu": cpu_flags()["model"], "flags": cpu_flags()["flags"], "cores": threads},
        "threads": {"onnxruntime_intra_op": threads, "onnxruntime_inter_op": 1, "allow_spinning": True, "torch": threads},
        "versions": package_versions(VERSIONED),
        "matmul_peak_gflops": peaks["fp32"]["peak"],
        "matmul_peaks": peaks,
        "texts": "sst2-dev" if len(set(base)) == 872 else "generated",
        "models": {},
    }
    BENCH_MODELS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            if name == "demo" and not (ROOT / "models" / "demo-checkpoint").exists():
                print("  demo: skipped (run `make demo` first to build models/demo)")
                continue
            checkpoint, dirs, int8 = model_dirs_for(name, texts)
            result = bench_model(name, checkpoint, dirs, texts, args.bs1_rows, Path(scratch), threads, set(args.skip))
            result["int8"] = int8
            for config, entry in result["configs"].items():
                peak = peaks[precision_of(config)]["peak"]
                entry["peak_precision"] = precision_of(config)
                entry["fraction_of_matmul_peak"] = round(entry["model_gflops"] / peak, 3)
                if "executed_gflops" in entry:
                    entry["executed_fraction_of_matmul_peak"] = round(entry["executed_gflops"] / peak, 3)
            report["models"][name] = result
    write_report(report, args.out / "throughput.json")
    plot(report, args.out / "throughput.png")
    print(f"wrote {args.out / 'throughput.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
