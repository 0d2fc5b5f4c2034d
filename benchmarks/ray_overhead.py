"""`--engine ray` against the local engine on this machine: the fixed start cost and the steady rows/s, apart.

Each engine scores the same Parquet file at two sizes through the CLI, as a user runs it; with wall time
t(n) = fixed + n / steady, the two sizes give both numbers. Sizes alternate between engines within one run, so
both see the same machine; read the ratio, not the absolute figures.
Usage: python -m benchmarks.ray_overhead [--rows 50000] [--small-rows 5000] [--model models/demo] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


from benchmarks.overhead import fit, print_fits, run_conditions, write_distinct_rows
from benchmarks.report import write_report
from benchmarks.throughput import ROOT, timed_command

ENGINES = ("local", "ray")
GOAL = 0.85  # Ray's rows/s as a share of the local engine's, start included, on the big input




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--small-rows", type=int, default=5_000)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "demo")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    walls: dict[str, dict[int, float]] = {engine: {} for engine in ENGINES}
    with tempfile.TemporaryDirectory() as scratch:
        for rows in (args.small_rows, args.rows):
            src = write_distinct_rows(Path(scratch) / f"in-{rows}.parquet", rows, 10_000)
            for engine in ENGINES:
                out = Path(scratch) / f"out-{engine}-{rows}.parquet"
                command = [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(args.model)]
                seconds, _, _ = timed_command([*command, "--engine", engine])
                walls[engine][rows] = round(seconds, 2)
                print(f"{engine:5s} {rows:6d} rows: {seconds:6.1f} s wall", flush=True)
    engines = {
        engine: {
            "wall_s": walls[engine],
            **fit((args.small_rows, walls[engine][args.small_rows]), (args.rows, walls[engine][args.rows])),
        }
        for engine in ENGINES
    }
    ratio = engines["ray"]["steady_rows_per_s"] / engines["local"]["steady_rows_per_s"]
    whole = walls["local"][args.rows] / walls["ray"][args.rows]  # rows/s with the start included, Ray over local
    report = {
        "rows": args.rows,
        "small_rows": args.small_rows,
        "model": str(args.model),
        "engines": engines,
        "ray_steady_share_of_local": round(ratio, 3),
        "ray_share_of_local_start_included": round(whole, 3),
        "goal": GOAL,
        **run_conditions("ray"),
    }
    write_report(report, args.out / "ray_overhead.json")
    print_fits(engines)
    print(f"ray steady rate = {ratio:.0%} of local; with the start included, {whole:.0%} (goal {GOAL:.0%})")


if __name__ == "__main__":
    main()
