"""Speed-up of the first-token last layer per encoder family, measured side by side in one run.

For each family a seeded model of one shape (6 layers, 384 wide, 12 heads: MiniLM's) with the test suite's
trained tokenizer of its kind is exported
twice, with the last layer computed for the first token only and whole, and the same texts are scored with
each through `Scorer` in paired, alternating rounds. The median ratio is what the optimization buys.
Usage: python -m benchmarks.first_token [--rows N] [--families roberta albert ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.support.corpus import benchmark_texts
from benchmarks.report import write_report
from benchmarks.machine import cpu_flags
from runtime.scoring.scorer import Scorer
from runtime.model.session import default_threads
from tests.support.families import make_family_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FAMILIES_WITH_FIRST_TOKEN = ["roberta", "xlm-roberta", "electra", "albert", "mpnet"]
SHAPE = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6, "num_attention_heads": 12}


def export_both(checkpoint_dir: Path, out: Path) -> dict[str, Path]:
    """model dirs with and without the first-token last layer (unvalidated: speed only; tests prove exactness)."""
    from export.build import build_manifest
    from export.checkpoint import load_checkpoint
    from export.onnx_export import export

    checkpoint = load_checkpoint(str(checkpoint_dir))
    dirs = {}
    for variant, first_token in (("first_token", True), ("whole", False)):
        dirs[variant] = out / variant
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimizations = export(checkpoint, dirs[variant], first_token=first_token)
        manifest = build_manifest(checkpoint, dirs[variant])
        manifest.graph_optimizations = optimizations
        manifest.write(dirs[variant])
    return dirs


def paired_rates(dirs: dict[str, Path], texts: list[str], repeats: int, threads: int) -> dict[str, float]:
    """Median sentences/s per variant and the median of per-round speed-ups.

    Each round runs both variants back to back, in alternating order, so a change in host load between
    rounds hits both alike; the median drops rounds disturbed by other processes.
    """
    scorers = {variant: Scorer(path, threads=threads) for variant, path in dirs.items()}
    for scorer in scorers.values():
        scorer.score(texts[:32])  # warm the session's memory arena
    seconds: dict[str, list[float]] = {variant: [] for variant in scorers}
    for round_index in range(repeats):
        order = list(scorers) if round_index % 2 == 0 else list(reversed(scorers))
        for variant in order:
            start = time.perf_counter()
            scorers[variant].score(texts)
            seconds[variant].append(time.perf_counter() - start)
    speedups = [whole / first for whole, first in zip(seconds["whole"], seconds["first_token"])]
    result = {variant: len(texts) / statistics.median(times) for variant, times in seconds.items()}
    return {**result, "speedup": statistics.median(speedups)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256, help="texts per timed run (SST-2 dev)")
    parser.add_argument("--repeats", type=int, default=15, help="paired rounds; the median is reported")
    parser.add_argument("--families", nargs="+", default=FAMILIES_WITH_FIRST_TOKEN, choices=FAMILIES_WITH_FIRST_TOKEN)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    threads = default_threads()
    base = benchmark_texts()
    texts = [base[i % len(base)] for i in range(args.rows)]
    report = {
        "machine": {"cpu": cpu_flags()["model"], "flags": cpu_flags()["flags"], "cores": threads},
        "load_average_at_start": os.getloadavg(),
        "shape": SHAPE,
        "rows": args.rows,
        "repeats": args.repeats,
        "families": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.families:
            checkpoint = make_family_checkpoint(name, Path(scratch) / name / "checkpoint", SHAPE)
            dirs = export_both(checkpoint, Path(scratch) / name)
            measured = paired_rates(dirs, texts, args.repeats, threads)
            speedup = measured["speedup"]
            report["families"][name] = {key: round(value, 3) for key, value in measured.items()}
            rates = f"whole {measured['whole']:7.1f}/s  first-token {measured['first_token']:7.1f}/s"
            print(f"  {name:<12} {rates}  x{speedup:.3f}", flush=True)
    write_report(report, args.out / "first_token.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
