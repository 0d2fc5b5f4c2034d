"""Two nights with --score-cache, side by side in one run: night 1 scores N distinct rows cold (and fills the cache),
night 2 scores 90% of the same rows plus 10% new ones. Reports the night-1/night-2 time ratio, the cache's size on
disk per million entries, the lookup cost per row, and how far cached outputs are from freshly scored ones.

Both nights run the CLI's own code (`runtime.score.main`) in this process, each as a nightly job would, with the
model load excluded (the summary's `seconds - load_seconds`). Texts are SST-2 dev sentences made distinct by a
row number. The model: --model DIR, or the tests' tiny DistilBERT (built here) when none is given: the tiny model
scores far faster than a real one, so its ratio is a floor (the cache's own costs weigh more against it).
Usage: python -m benchmarks.score_cache [--rows 100000] [--model models/demo] [--out benchmarks/results/score_cache.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.machine import cpu_flags
from benchmarks.report import write_report
from runtime.files.score_cache import ScoreCache, cache_stats, row_keys
from runtime.files.storage import Location
from runtime.score import main as score_main
from runtime.scoring.scorer import Scorer
from tests.support.corpus import benchmark_texts

NEW_SHARE = 0.1


def nightly_rows(rows: int, night: int) -> list[str]:
    """Night 1: rows 0..N; night 2: the last 90% of those plus 10% new (a table that gained and lost rows)."""
    corpus = benchmark_texts()
    first = int(rows * NEW_SHARE) * (night - 1)
    return [f"{corpus[i % len(corpus)]} ({i})" for i in range(first, first + rows)]


def run_night(workdir: Path, model: Path, night: int, rows: int) -> dict:
    source = workdir / f"night{night}.parquet"
    pq.write_table(pa.table({"id": range(rows), "text": nightly_rows(rows, night)}), source)
    summary = workdir / f"night{night}.json"
    args = [str(source), str(workdir / f"out{night}.parquet"), "--model", str(model), "--progress-every", "0"]
    if score_main([*args, "--score-cache", str(workdir / "cache"), "--summary-json", str(summary)]) != 0:
        raise SystemExit(f"night {night} failed")
    record = json.loads(summary.read_text())
    return {
        "rows": record["rows"],
        "cached_rows": record["cached_rows"],
        "scoring_seconds": round(record["seconds"] - record["load_seconds"], 3),
    }


def lookup_cost(workdir: Path, model: Path, rows: int) -> float:
    """Seconds per row to key and look up night 2's rows in 8192-row windows, as the CLI does (no scoring)."""
    cache = ScoreCache(Location.local(workdir / "cache"), Scorer(model))
    texts = nightly_rows(rows, 2)
    started = time.perf_counter()
    for start in range(0, rows, 8192):
        window = texts[start : start + 8192]
        cache.lookup(row_keys(cache.space, window, None, np.arange(len(window))))
    return (time.perf_counter() - started) / rows


def max_differences(workdir: Path, model: Path, rows: int, sample: int = 5000) -> dict[str, float]:
    """The largest probability difference of night 2's cached rows from the same rows scored cold batched otherwise
    (7 rows a batch), beside that of two cold scorings batched apart: the cache adds nothing to batching's own."""
    cached = np.array(pq.read_table(workdir / "out2.parquet").column("probabilities").to_pylist()[:sample])
    scorer, texts = Scorer(model), nightly_rows(rows, 2)[: len(cached)]
    small, default = scorer.score(texts, batch_rows=7).probabilities, scorer.score(texts).probabilities
    return {"cached_vs_cold": float(np.abs(cached - small).max()), "cold_vs_cold": float(np.abs(default - small).max())}


def tiny_model(workdir: Path) -> Path:
    from tests.support.models import export_model, make_checkpoint

    return export_model(make_checkpoint("distilbert", workdir / "checkpoint"), workdir / "model")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: the tests' tiny DistilBERT)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/score_cache.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        model = args.model or tiny_model(workdir)
        nights = [run_night(workdir, model, night, args.rows) for night in (1, 2)]
        stats = cache_stats(Location.local(workdir / "cache"))
        report = {
            "model": str(args.model) if args.model else "tests' tiny DistilBERT (tests/support/models.py)",
            "rows_per_night": args.rows,
            "night1": nights[0],
            "night2": nights[1],
            "night2_speedup": round(nights[0]["scoring_seconds"] / nights[1]["scoring_seconds"], 2),
            "cache_entries": stats.entries,
            "cache_parts": stats.parts,
            "cache_mib_per_million_entries": round(stats.bytes / stats.entries * 1e6 / (1 << 20), 1),
            "lookup_microseconds_per_row": round(lookup_cost(workdir, model, args.rows) * 1e6, 2),
            "max_probability_difference": max_differences(workdir, model, args.rows),
            "cpu": cpu_flags(),
        }
    print(json.dumps(report, indent=2))
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
