"""Speed-up from scoring each distinct text of a window once, at 0%, 30% and 60% exact repeats, in one run.

The table: one 8192-row window (the CLI's). A share of the rows is drawn, Zipf-like, from a head of short generic
texts ("great", "thanks", "not working", ...), the rest is a long tail of distinct SST-2 sentences. 30% is the
headline: an assumption for a review or ticket table in which about a third of the rows are such short generic
texts; 0% shows what dedup itself costs and 60% a table dominated by them. The baseline scores the very same rows
with every repeat made distinct by trailing spaces (same tokens, same work, but no exact repeats to skip).
Usage: python -m benchmarks.dedup [--model models/demo] [--out benchmarks/results/dedup.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.corpus import benchmark_texts
from benchmarks.machine import cpu_flags
from runtime.scorer import Scorer

WINDOW_ROWS = 8192
SHARES = (0.0, 0.3, 0.6)
HEAD = [
    "great", "thanks", "love it", "five stars", "ok", "good", "works fine", "not working", "bad", "excellent",
    "thank you!", "perfect", "as described", "terrible", "refund please", "awesome", "fine", "nice", "too slow",
    "highly recommend", "does not work", "waste of money", "very good", "works as expected", "happy with it",
    "poor quality", "fast shipping", "broken", "love this", "meh",
]


def window(share: float, tail: list[str], rng: np.random.Generator) -> list[str]:
    """WINDOW_ROWS texts: `share` of them drawn from HEAD with weights 1/rank, the rest distinct tail texts."""
    weights = 1.0 / np.arange(1, len(HEAD) + 1)
    heads = rng.choice(len(HEAD), size=WINDOW_ROWS, p=weights / weights.sum())
    from_head = rng.random(WINDOW_ROWS) < share
    return [HEAD[heads[i]] if from_head[i] else f"{tail[i % len(tail)]} ({i})" for i in range(WINDOW_ROWS)]


def without_repeats(texts: list[str]) -> list[str]:
    """The same texts, each repeat padded with trailing spaces: tokenized identically, but no longer equal."""
    seen: dict[str, int] = {}
    padded = []
    for text in texts:
        padded.append(text + " " * seen.get(text, 0))
        seen[text] = seen.get(text, 0) + 1
    return padded


def best_seconds(run: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


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
        assert scorer.score(plain).deduplicated == 0
        repeats = scorer.score(texts).deduplicated
        with_dedup = best_seconds(lambda: scorer.score(texts))
        baseline = best_seconds(lambda: scorer.score(plain))
        results[f"{share:.0%}"] = {
            "repeated_rows": repeats,
            "repeated_share": round(repeats / WINDOW_ROWS, 3),
            "seconds_without_dedup": round(baseline, 3),
            "seconds_with_dedup": round(with_dedup, 3),
            "speedup": round(baseline / with_dedup, 2),
        }
        print(f"{share:.0%} repeats ({repeats} rows): {baseline:.2f} s -> {with_dedup:.2f} s, {baseline / with_dedup:.2f}x")
    report = {"model": str(args.model), "window_rows": WINDOW_ROWS, "machine": cpu_flags(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
