"""Peak RSS of `python -m runtime.score` at 20k and 200k rows with a 2 KB passthrough column, on local disk
and (with --s3) reading and writing over S3 (a moto server on 127.0.0.1; the 400 MB object lives in it).

Streaming means memory must not grow with the row count: the bar is at most 100 MB more at 10x rows.
The answer does not depend on the model, only the time does (the committed figures used a 2-layer DistilBERT
built like the tests; the texts repeat SST-2 dev, so each window scores its ~872 distinct texts once).
With --long-row it also runs chunk mode on a single ten-million-character row, beside a run of short rows and
one of rows that each fill two 512-token windows, all with --long-text chunk.
Usage: python -m benchmarks.memory [--model models/demo] [--s3] [--long-row] [--out benchmarks/results/memory.json]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.report import write_report
from tests.support.processes import peak_rss_mb
from tests.support.corpus import benchmark_texts

ROW_COUNTS = (20_000, 200_000)
PASSTHROUGH_BYTES = 2048
GROWTH_LIMIT_MB = 100


def write_input(path: Path, rows: int, texts: list[str]) -> None:
    """Rows in slices so that writing the 400 MB file does not itself need 400 MB."""
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("text", pa.string()), ("payload", pa.binary())])) as writer:
        for start in range(0, rows, 10_000):
            count = min(10_000, rows - start)
            payload = [rng.bytes(PASSTHROUGH_BYTES) for _ in range(count)]
            writer.write_table(
                pa.table(
                    {
                        "id": np.arange(start, start + count),
                        "text": [texts[i % len(texts)] for i in range(start, start + count)],
                        "payload": pa.array(payload, pa.binary()),
                    }
                )
            )




def measure(store: str, model: Path, texts: list[str], scratch: Path) -> dict[int, dict[str, float]]:
    """Peak RSS per row count, with IN and OUT on local disk or on an S3-protocol server (moto on 127.0.0.1)."""
    results = {}
    with contextlib.ExitStack() as stack:
        env, bucket = None, None
        if store == "s3":
            from tests.support.s3_server import S3Store, moto_server

            s3 = S3Store(stack.enter_context(moto_server()))
            env, bucket = s3.env(), s3.new_bucket()
        for rows in ROW_COUNTS:
            src, dst = scratch / f"in-{rows}.parquet", scratch / f"out-{rows}.parquet"
            if not src.exists():
                write_input(src, rows, texts)
            paths = [str(src), str(dst)]
            if bucket is not None:
                s3.put(bucket, src.name, src.read_bytes())
                paths = [f"s3://{bucket}/{src.name}", f"s3://{bucket}/{dst.name}"]
            command = [sys.executable, "-m", "runtime.score", *paths, "--model", str(model)]
            results[rows] = {"peak_rss_mb": round(peak_rss_mb(command, env), 1), "input_mb": round(src.stat().st_size / 2**20, 1)}
            print(f"{store}: {rows:>7} rows ({results[rows]['input_mb']} MB in): peak RSS {results[rows]['peak_rss_mb']} MB")
    return results


LONG_ROW_CHARS = 10_000_000


def measure_long_row(model: Path, texts: list[str], scratch: Path) -> dict[str, dict[str, float]]:
    """Peak RSS in chunk mode: short rows, rows of two windows each, and one 10-million-character row.

    The huge row is cut to what its --max-chunks windows can use before it is tokenized, so it should cost what
    256 rows of full windows cost (ONNX Runtime's activations at 512 tokens), not what its size would.
    """
    filler = " ".join(texts)
    cases = {
        "short_rows": texts[:2000],
        "two_window_rows": [(filler[i * 997 :] + filler)[:4000] for i in range(256)],
        "one_10m_char_row": [(filler * (LONG_ROW_CHARS // len(filler) + 1))[:LONG_ROW_CHARS]],
    }
    results = {}
    for case, rows in cases.items():
        src, dst = scratch / f"{case}.parquet", scratch / f"{case}-out.parquet"
        pq.write_table(pa.table({"text": rows}), src)
        command = [sys.executable, "-m", "runtime.score", str(src), str(dst), "--model", str(model), "--long-text", "chunk"]
        results[case] = {"rows": len(rows), "characters": sum(map(len, rows)), "peak_rss_mb": round(peak_rss_mb(command), 1)}
        chunks = pq.read_table(dst, columns=["chunks"]).column(0).to_numpy()
        results[case]["windows"] = int(chunks.sum())
        print(f"long text: {case}: {results[case]}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/demo"))
    parser.add_argument("--s3", action="store_true", help="also read and write over S3 (a local moto server)")
    parser.add_argument("--long-row", action="store_true", help="also chunk mode on one 10-million-character row")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    args = parser.parse_args(argv)
    if not args.model.is_dir():
        print(f"error: model dir {args.model} does not exist; run `make demo` first or pass --model", file=sys.stderr)
        return 2
    texts = benchmark_texts()
    report: dict[str, object] = {"model": str(args.model), "limit_mb": GROWTH_LIMIT_MB}
    growths = []
    with tempfile.TemporaryDirectory() as scratch:
        for store in ("local", "s3") if args.s3 else ("local",):
            results = measure(store, args.model, texts, Path(scratch))
            growth = results[ROW_COUNTS[1]]["peak_rss_mb"] - results[ROW_COUNTS[0]]["peak_rss_mb"]
            growths.append(growth)
            report[store] = {"rows": results, "growth_mb": round(growth, 1)}
            print(f"{store}: growth {growth:.1f} MB from {ROW_COUNTS[0]} to {ROW_COUNTS[1]} rows (limit {GROWTH_LIMIT_MB} MB)")
        if args.long_row:
            report["long_text_chunk_mode"] = measure_long_row(args.model, texts, Path(scratch))
    write_report(report, args.out)
    return 0 if max(growths) <= GROWTH_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
