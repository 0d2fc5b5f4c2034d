"""Long texts side by side: the pipeline at its best batch size vs this project, and chunk mode on documents.

Two runs on a DistilBERT-base-shaped model: texts of 64-510 tokens (where attention's L^2 term counts),
and documents of 2,000-10,000 tokens in chunk mode. GFLOP/s include attention and are read against the
fp32 MatMul peak measured in the same run.
Usage: python -m benchmarks.long_text [--texts 96] [--documents 12] [--out benchmarks/results/long_text.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.report import write_report
from tests.support.corpus import benchmark_texts
from benchmarks.machine import cpu_flags, matmul_peak_gflops
from benchmarks.throughput import BENCH_MODELS, distilbert_base_checkpoint, first_token_savings, model_flops, padded_lengths, timed
from export.first_token import FIRST_TOKEN_LAST_LAYER
from runtime.text.batching import plan_batches
from runtime.model.model_dir import read_manifest
from runtime.scoring.scorer import Scorer
from runtime.model.session import default_threads

PIPELINE_BATCH_SIZES = (1, 8, 32)


def texts_of_tokens(targets: np.ndarray, tokenizer: object) -> list[str]:
    """Benchmark sentences joined until each text reaches its target token count (then cut to it)."""
    sentences = benchmark_texts()
    texts, cursor = [], 0
    for target in targets:
        ids: list[int] = []
        while len(ids) < target:
            ids += tokenizer(sentences[cursor % len(sentences)], add_special_tokens=False)["input_ids"]
            cursor += 1
        texts.append(tokenizer.decode(ids[:target]))
    return texts


def rate_and_peak(seconds: float, rows: int, flops: float, peak: float) -> dict:
    return {
        "rows_per_s": round(rows / seconds, 2),
        "gflops": round(flops / seconds / 1e9, 1),
        "fraction_of_matmul_peak": round(flops / seconds / 1e9 / peak, 3),
    }


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from export.build import build_model_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=96, help="texts of 64-510 tokens")
    parser.add_argument("--documents", type=int, default=12, help="documents of 2,000-10,000 tokens (chunk mode)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_text.json"))
    args = parser.parse_args(argv)
    threads = default_threads()
    torch.set_num_threads(threads)
    peak, _ = matmul_peak_gflops(threads)
    checkpoint = distilbert_base_checkpoint(BENCH_MODELS / "distilbert-base-checkpoint")
    model_dir = BENCH_MODELS / "distilbert-base"
    if not model_dir.exists():
        build_model_dir(str(checkpoint), model_dir)
    pruned = FIRST_TOKEN_LAST_LAYER in read_manifest(model_dir).graph_optimizations
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    rng = np.random.default_rng(0)
    texts = texts_of_tokens(rng.integers(62, 509, args.texts), tokenizer)  # + [CLS] and [SEP]: 64-510
    documents = texts_of_tokens(rng.integers(2000, 10_001, args.documents), tokenizer)

    scorer = Scorer(model_dir, threads=threads)
    scorer.score(texts[:8])  # warm the session's arena
    lengths = scorer.preprocess(texts).lengths
    useful = model_flops(model, lengths)
    report: dict = {
        "machine": {"cpu": cpu_flags()["model"], "flags": cpu_flags()["flags"], "cores": threads},
        "matmul_peak_gflops": round(peak, 1),
        "model": "distilbert-base shape (random weights)",
        "long_texts": {"rows": len(texts), "mean_tokens": round(float(lengths.mean()), 1), "configs": {}},
    }
    configs = report["long_texts"]["configs"]
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    for batch_size in PIPELINE_BATCH_SIZES:
        seconds, _, _ = timed(lambda: classify(texts, batch_size=batch_size, truncation=True))
        in_order = [np.arange(s, min(s + batch_size, len(texts))) for s in range(0, len(texts), batch_size)]
        configs[f"pipeline_bs{batch_size}"] = {
            **rate_and_peak(seconds, len(texts), useful, peak),
            "executed_fraction_of_matmul_peak": round(model_flops(model, padded_lengths(lengths, in_order)) / seconds / 1e9 / peak, 3),
        }
        print(f"  pipeline bs{batch_size}: {configs[f'pipeline_bs{batch_size}']}", flush=True)
    seconds, _, _ = timed(lambda: scorer.score(texts))
    padded = padded_lengths(lengths, plan_batches(lengths))
    executed = model_flops(model, padded) - (first_token_savings(model, padded) if pruned else 0.0)
    configs["scorer_fp32"] = {
        **rate_and_peak(seconds, len(texts), useful, peak),
        "executed_fraction_of_matmul_peak": round(executed / seconds / 1e9 / peak, 3),
    }
    best = max((c for c in configs if c.startswith("pipeline")), key=lambda c: configs[c]["rows_per_s"])
    configs["scorer_fp32"]["ratio_vs_best_pipeline"] = round(configs["scorer_fp32"]["rows_per_s"] / configs[best]["rows_per_s"], 2)
    report["long_texts"]["best_pipeline"] = best
    print(f"  scorer: {configs['scorer_fp32']} (best pipeline: {best})", flush=True)

    chunker = Scorer(model_dir, threads=threads, long_text="chunk", max_chunks=64)
    encoded = chunker.preprocess(documents)
    padded = padded_lengths(encoded.lengths, plan_batches(encoded.lengths))
    executed = model_flops(model, padded) - (first_token_savings(model, padded) if pruned else 0.0)
    seconds, peak_rss, _ = timed(lambda: chunker.score(documents))
    report["documents_chunk_mode"] = {
        "rows": len(documents),
        "mean_tokens": round(float(encoded.lengths.sum() / len(documents)), 1),
        "windows": int(encoded.chunks.sum()),
        "stride": chunker.long_text.stride,
        **rate_and_peak(seconds, len(documents), model_flops(model, encoded.lengths), peak),
        "executed_fraction_of_matmul_peak": round(executed / seconds / 1e9 / peak, 3),
        "peak_rss_mb": round(peak_rss, 1),
    }
    print(f"  chunk mode: {report['documents_chunk_mode']}", flush=True)
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
