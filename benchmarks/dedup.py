"""Speed-up from scoring each distinct text of a window once, at 0%, 30% and 60% exact repeats, in one run.

The table: 2048 rows, a quarter of the CLI's 8192-row window (dedup works within a window, so the share of
repeats decides the speed-up, not the window's length; a quarter keeps a run to minutes). A share of the rows
is drawn, Zipf-like, from a head of short generic texts ("great", "thanks", "not working", ...), the rest is a
long tail of distinct SST-2 sentences. 30% is the
headline: an assumption for a review or ticket table in which about a third of the rows are such short generic
texts; 0% shows what dedup itself costs and 60% a table dominated by them. The baseline scores the very same rows
with every repeat made distinct by trailing spaces (same tokens, same work, but no exact repeats to skip); the
two run back to back, three times, and the median ratio is reported, beside the padded tokens the model runs
with and without dedup (noise-free: repeats of short texts save less work than their share of the rows).
Usage: python -m benchmarks.dedup [--model models/demo] [--out benchmarks/results/dedup.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.report import write_report
from tests.support.corpus import benchmark_texts
from benchmarks.machine import cpu_flags
from runtime.text.batching import plan_batches
from runtime.scoring.scorer import Scorer, Scores

TABLE_ROWS = 2048
PAIRS = 3
SHARES = (0.0, 0.3, 0.6)
HEAD = [
    "great", "thanks", "love it", "five stars", "ok", "good", "works fine", "not working", "bad", "excellent",
    "thank you!", "perfect", "as described", "terrible", "refund please", "awesome", "fine", "nice", "too slow",
    "highly recommend", "does not work", "waste of money", "very good", "works as expected", "happy with it",
    "poor quality", "fast shipping", "broken", "love this", "meh",
]


def window(share: float, tail: list[str], rng: np.random.Generator) -> list[str]:
    """TABLE_ROWS texts: `share` of them drawn from HEAD with weights 1/rank, the rest distinct tail texts."""
    weights = 1.0 / np.arange(1, len(HEAD) + 1)
    heads = rng.choice(len(HEAD), size=TABLE_ROWS, p=weights / weights.sum())
    from_head = rng.random(TABLE_ROWS) < share
    return [HEAD[heads[i]] if from_head[i] else f"{tail[i % len(tail)]} ({i})" for i in range(TABLE_ROWS)]


def without_repeats(texts: list[str]) -> list[str]:
    """The same texts, each repeat padded with trailing spaces: tokenized identically, but no longer equal."""
    seen: dict[str, int] = {}
    padded = []
    for text in texts:
        padded.append(text + " " * seen.get(text, 0))
        seen[text] = seen.get(text, 0) + 1
    return padded


def padded_tokens(scorer: Scorer, texts: list[str]) -> int:
    """The model's work for TEXTS after dedup: rows x longest row, summed over the scorer's batches (no noise)."""
    lengths = scorer.preprocess(list(dict.fromkeys(texts))).lengths
    batches = plan_batches(lengths, scorer.max_batch_rows, scorer.max_batch_tokens)
    return int(sum(len(batch) * lengths[batch].max() for batch in batches))


def timed(run: Callable[[], Scores]) -> tuple[float, Scores]:
    started = time.perf_counter()
    scores = run()
    return time.perf_counter() - started, scores


def paired(texts: list[str], plain: list[str], scorer: Scorer, pairs: int = PAIRS) -> tuple[float, float, float, Scores]:
    """Medians of (seconds without dedup, with dedup, their ratio) over back-to-back pairs of runs.

    The host is shared: runs side by side see the same load, so the ratio of each pair is steadier than
    either time alone.
    """
    baselines, dedups, ratios = [], [], []
    for _ in range(pairs):
        baseline, plain_scores = timed(lambda: scorer.score(plain))
        seconds, scores = timed(lambda: scorer.score(texts))
        assert plain_scores.deduplicated == 0 and (plain_scores.label_ids == scores.label_ids).all()
        baselines.append(baseline)
        dedups.append(seconds)
        ratios.append(baseline / seconds)
    return statistics.median(baselines), statistics.median(dedups), statistics.median(ratios), scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/demo"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dedup.json"))
    args = parser.parse_args(argv)
    if not args.model.is_dir():
        print(f"error: model dir {args.model} does not exist; run `make demo` first or pass --model", file=sys.stderr)
        return 2
    scorer = Scorer(args.model)
    tail, rng = benchmark_texts(), np.random.default_rng(0)
    scorer.score(tail[:64])  # warm the session
    results = {}
    for share in SHARES:
        texts = window(share, tail, rng)
        plain = without_repeats(texts)
        baseline, with_dedup, speedup, scores = paired(texts, plain, scorer)
        repeats = scores.deduplicated
        work_ratio = padded_tokens(scorer, plain) / padded_tokens(scorer, texts)
        results[f"{share:.0%}"] = {
            "repeated_rows": repeats,
            "repeated_share": round(repeats / TABLE_ROWS, 3),
            "seconds_without_dedup": round(baseline, 3),
            "seconds_with_dedup": round(with_dedup, 3),
            "speedup": round(speedup, 2),
            "padded_tokens_ratio": round(work_ratio, 3),  # the work saved, free of the host's noise
        }
        print(f"{share:.0%} repeats ({repeats} rows): {baseline:.2f} s -> {with_dedup:.2f} s, {speedup:.2f}x (padded tokens {work_ratio:.2f}x)", flush=True)
    report = {"model": str(args.model), "rows": TABLE_ROWS, "machine": cpu_flags(), "results": results}
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
