"""Cost of a durable publish: one Parquet output written with fsync (file before the rename, directory after) and
without (write + rename, the earlier behaviour), alternating in one run, for a small and a large output.

Usage: python -m benchmarks.fsync [--dir DIR] [--out benchmarks/results/fsync.json]; DIR should be on the disk
that outputs go to (default: a temp dir beside the results).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.report import write_report
from runtime.files.parquet_io import atomic_parquet_writer
from runtime.files.storage import Location, temp_name

SIZES = {"small": 10_000, "large": 600_000}  # rows of a scored-like table: ~0.2 MB and ~9 MB of Parquet
REPEATS = 5


def scored_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(rows)
    probabilities = rng.random((rows, 2), dtype=np.float32)
    offsets = pa.array(np.arange(0, 2 * rows + 1, 2, dtype=np.int32))
    return pa.table(
        {
            "id": np.arange(rows),
            "text": [f"review {i} of the film was {'good' if i % 3 else 'bad'}" for i in range(rows)],
            "label": pa.array(np.where(probabilities[:, 1] > 0.5, "POSITIVE", "NEGATIVE")),
            "score": probabilities.max(axis=1),
            "probabilities": pa.ListArray.from_arrays(offsets, pa.array(probabilities.reshape(-1))),
        }
    )


def durable(table: pa.Table, out: Path) -> None:
    with atomic_parquet_writer(Location.local(out), table.schema) as writer:
        writer.write_table(table)


def plain(table: pa.Table, out: Path) -> None:
    temp = out.with_name(temp_name(out.name))
    pq.write_table(table, temp, compression="zstd")
    os.replace(temp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fsync.json"))
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        for name, rows in SIZES.items():
            table = scored_table(rows)
            times: dict[str, list[float]] = {"plain": [], "durable": []}
            for _ in range(REPEATS):
                for label, write in (("plain", plain), ("durable", durable)):
                    out = Path(scratch) / f"{label}-{name}.parquet"
                    started = time.perf_counter()
                    write(table, out)
                    times[label].append(time.perf_counter() - started)
            size_mb = (Path(scratch) / f"durable-{name}.parquet").stat().st_size / 2**20
            plain_s, durable_s = statistics.median(times["plain"]), statistics.median(times["durable"])
            results[name] = {
                "rows": rows,
                "output_mb": round(size_mb, 2),
                "median_seconds_plain": round(plain_s, 4),
                "median_seconds_durable": round(durable_s, 4),
                "overhead_seconds": round(durable_s - plain_s, 4),
                "overhead_percent": round(100 * (durable_s / plain_s - 1), 1),
            }
            print(f"{name} ({size_mb:.1f} MB): {plain_s * 1000:.0f} ms -> {durable_s * 1000:.0f} ms with fsync")
    write_report({"directory": str(args.dir), "results": results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
