"""Side-by-side throughput: the PyTorch pipeline, optimum's ORT model, and this project, in one run.

Every figure is read as a ratio within the run (these hosts are shared and their CPUs differ), beside the
machine's fp32 MatMul peak measured by ONNX Runtime in the same run.
Usage: python -m benchmarks.throughput [--rows N] [--models distilbert-base demo] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.corpus import benchmark_texts
from benchmarks.machine import cpu_flags, matmul_peak_gflops
from runtime.model_dir import read_manifest
from runtime.scorer import Scorer
from runtime.session import default_threads

ROOT = Path(__file__).resolve().parents[1]
BENCH_MODELS = ROOT / "models" / "bench"
BASELINE = "pipeline_bs32"
VERSIONED = ("torch", "transformers", "optimum-onnx", "onnxruntime", "tokenizers", "numpy", "pyarrow", "ray")


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


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one in-process run."""
    with PeakRss() as rss:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    return seconds, rss.peak / 2**20


def timed_command(command: list[str]) -> tuple[float, float]:
    """Wall seconds (process start included) and the child's peak RSS (MB), via a fresh wrapper."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")
    seconds, rss_kb = result.stdout.split()
    return float(seconds), int(rss_kb) / 1024


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


def exported(checkpoint: Path, out: Path, quantize: str | None) -> Path:
    if not out.exists():
        from export.build import build_model_dir

        build_model_dir(str(checkpoint), out, quantize=quantize)
    return out


def model_flops(model: object, token_counts: np.ndarray) -> float:
    """About 2 x non-embedding parameters per token, plus attention scores and mixing (4 x layers x L^2 x d)."""
    config = model.config
    weights = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    layers = getattr(config, "num_hidden_layers", getattr(config, "n_layers", 0))
    hidden = getattr(config, "hidden_size", getattr(config, "dim", 0))
    return float(2 * weights * token_counts.sum() + 4 * layers * hidden * (token_counts.astype(float) ** 2).sum())


def bench_model(name: str, checkpoint: Path, fp32_dir: Path, int8_dir: Path, texts: list[str], bs1_rows: int, scratch: Path, threads: int) -> dict:
    import torch
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # DistilBERT takes no token_type_ids
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    scorer = Scorer(fp32_dir, threads=threads)
    token_counts = scorer.preprocess(texts).lengths
    flops_per_text = model_flops(model, token_counts) / len(texts)

    src = scratch / f"{name}.parquet"
    pq.write_table(pa.table({"id": np.arange(len(texts)), "text": texts}), src)
    runs: dict[str, tuple[int, Callable[[], tuple[float, float]]]] = {}

    def in_process(rows: int, run: Callable[[list[str]], object]) -> tuple[int, Callable[[], tuple[float, float]]]:
        return rows, lambda: timed(lambda: run(texts[:rows]))

    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    runs["pipeline_bs1"] = in_process(bs1_rows, lambda t: classify(t, batch_size=1))
    runs["pipeline_bs32"] = in_process(len(texts), lambda t: classify(t, batch_size=32))
    options = scorer.session.get_session_options()
    ort_model = ORTModelForSequenceClassification.from_pretrained(fp32_dir, session_options=options)
    ort_classify = pipeline("text-classification", model=ort_model, tokenizer=tokenizer, device=-1)
    runs["optimum_ort_bs32"] = in_process(len(texts), lambda t: ort_classify(t, batch_size=32))
    int8_scorer = Scorer(int8_dir, threads=threads)
    runs["scorer_fp32"] = in_process(len(texts), scorer.score)
    runs["scorer_int8"] = in_process(len(texts), int8_scorer.score)
    engines = (("cli_fp32", fp32_dir, "local"), ("cli_int8", int8_dir, "local"), ("cli_ray_fp32", fp32_dir, "ray"))
    for config, model_dir, engine in engines:
        command = [
            sys.executable, "-m", "runtime.score", str(src), str(scratch / f"{name}-{config}.parquet"),
            "--model", str(model_dir), "--engine", engine,
        ]
        runs[config] = (len(texts), lambda command=command: timed_command(command))

    results = {}
    for config, (rows, run) in runs.items():
        seconds, peak_mb = run()
        rate = rows / seconds
        results[config] = {
            "rows": rows,
            "seconds": round(seconds, 3),
            "sentences_per_s": round(rate, 2),
            "tokens_per_s": round(rate * float(token_counts[:rows].mean()), 1),
            "model_gflops": round(rate * flops_per_text / 1e9, 2),
            "peak_rss_mb": round(peak_mb, 1),
        }
        print(f"  {name:<16} {config:<18} {rate:8.1f} sentences/s  ({seconds:.2f} s, peak RSS {peak_mb:.0f} MB)", flush=True)
    baseline = results[BASELINE]["sentences_per_s"]
    for entry in results.values():
        entry["ratio_vs_pipeline_bs32"] = round(entry["sentences_per_s"] / baseline, 2)
    results["_parquet_io_overhead"] = {
        variant: round(results[f"scorer_{variant}"]["sentences_per_s"] / results[f"cli_{variant}"]["sentences_per_s"] - 1, 3)
        for variant in ("fp32", "int8")
    }
    return {
        "flops_per_text": flops_per_text,
        "mean_tokens": float(token_counts.mean()),
        "int8": read_manifest(int8_dir).quantization,
        "configs": results,
    }


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["models"])
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for axis, name in zip(axes[0], models):
        configs = {k: v for k, v in report["models"][name]["configs"].items() if not k.startswith("_")}
        ratios = [v["ratio_vs_pipeline_bs32"] for v in configs.values()]
        colors = ["#999999" if k.startswith(("pipeline", "optimum")) else "#1f77b4" for k in configs]
        bars = axis.bar(list(configs), ratios, color=colors)
        axis.bar_label(bars, labels=[f"{r:.2f}x" for r in ratios], fontsize=8)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_title(f"{name}: sentences/s vs pipeline at batch 32")
        axis.tick_params(axis="x", rotation=40, labelsize=8)
    fig.suptitle(f"{report['machine']['cpu']}, {report['machine']['cores']} threads; MatMul peak {report['matmul_peak_gflops']:.0f} GFLOP/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1744, help="texts per run (SST-2 dev repeated)")
    parser.add_argument("--bs1-rows", type=int, default=436, help="texts for the slow batch-1 pipeline")
    parser.add_argument("--models", nargs="+", default=["distilbert-base", "demo"], choices=["distilbert-base", "demo"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    threads = default_threads()
    base = benchmark_texts()
    texts = [base[i % len(base)] for i in range(args.rows)]
    peak, peak_by_shape = matmul_peak_gflops(threads)
    print(f"fp32 MatMul peak (ONNX Runtime, {threads} threads): {peak:.0f} GFLOP/s {peak_by_shape}", flush=True)
    report = {
        "machine": {"cpu": cpu_flags()["model"], "flags": cpu_flags()["flags"], "cores": threads},
        "threads": {"onnxruntime_intra_op": threads, "onnxruntime_inter_op": 1, "allow_spinning": False, "torch": threads},
        "versions": {name: _version(name) for name in VERSIONED},
        "matmul_peak_gflops": round(peak, 1),
        "matmul_gflops_by_shape_mkn": peak_by_shape,
        "texts": "sst2-dev" if len(set(base)) == 872 else "generated",
        "models": {},
    }
    BENCH_MODELS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            if name == "demo":
                checkpoint = ROOT / "models" / "demo-checkpoint"
                fp32_dir, int8_dir = ROOT / "models" / "demo", ROOT / "models" / "demo-int8"
                if not (checkpoint.exists() and fp32_dir.exists()):
                    print("  demo: skipped (run `make demo` first to build models/demo)")
                    continue
            else:
                checkpoint = distilbert_base_checkpoint(BENCH_MODELS / "distilbert-base-checkpoint")
                fp32_dir = BENCH_MODELS / "distilbert-base"
                int8_dir = BENCH_MODELS / "distilbert-base-int8"
            exported(checkpoint, fp32_dir, None)
            exported(checkpoint, int8_dir, "int8")
            result = bench_model(name, checkpoint, fp32_dir, int8_dir, texts, args.bs1_rows, Path(scratch), threads)
            for entry in result["configs"].values():
                if "model_gflops" in entry:
                    entry["fraction_of_matmul_peak"] = round(entry["model_gflops"] / peak, 3)
            report["models"][name] = result
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "throughput.png")
    print(f"wrote {args.out / 'throughput.json'} and {args.out / 'throughput.png'}")
    return 0


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
