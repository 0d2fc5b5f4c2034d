"""`--engine spark` (local[2]) against the local engine: the fixed start cost and the steady rows/s, apart.

Each engine scores the same distinct rows (SST-2 dev sentences numbered, so no row repeats and dedup saves
nothing) through the CLI, as a user runs it, at two sizes; with wall time t(n) = fixed + n / steady the two
sizes give both numbers. Spark runs with several settings of the Arrow batch (maxRecordsPerBatch) and of the
CPUs per task (spark.task.cpus = ONNX Runtime threads per task), given through spark-defaults.conf as a user
would. Read the ratios, not the absolute figures: other jobs share these cores.
Usage: python -m benchmarks.spark_overhead [--rows 50000] [--small-rows 5000] [--model DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


from benchmarks.overhead import fit, print_fits, run_conditions, write_distinct_rows
from benchmarks.report import write_report
from benchmarks.throughput import ROOT, timed_command

GOAL = 0.85  # Spark's steady rate as a share of the local engine's
MASTER = "local[2]"
# (name, spark-defaults): the engine's default (the local engine's 8192-row window, one thread per task), a
# smaller Arrow batch, and one task of two threads at a time.
SPARK_SETTINGS = {
    "spark batch=8192 cpus/task=1": {},
    "spark batch=1024 cpus/task=1": {"spark.sql.execution.arrow.maxRecordsPerBatch": "1024"},
    "spark batch=8192 cpus/task=2": {"spark.task.cpus": "2"},
}


def minilm_checkpoint(path: Path) -> Path:
    """MiniLM-L6-H384's shape (the demo model's encoder) as a DistilBERT with random weights, fixed seed."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    from demo.train import encoder_dir

    torch.manual_seed(0)
    labels = {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
    config = DistilBertConfig(dim=384, hidden_dim=1536, n_layers=6, n_heads=12, num_labels=2, **labels)
    DistilBertForSequenceClassification(config).save_pretrained(path)
    DistilBertTokenizerFast(vocab_file=str(encoder_dir() / "vocab.txt"), model_max_length=512).save_pretrained(path)
    return path


def bench_model(requested: Path | None) -> Path:
    """--model, else the demo model, else a MiniLM-shaped model exported once into models/spark-bench."""
    for candidate in (requested, ROOT / "models" / "demo"):
        if candidate is not None and (candidate / "manifest.json").exists():
            return candidate
    out = ROOT / "models" / "spark-bench"
    if not (out / "manifest.json").exists():
        checkpoint = minilm_checkpoint(ROOT / "models" / "spark-bench-checkpoint")
        subprocess.run([sys.executable, "-m", "export", "--checkpoint", str(checkpoint), "--out", str(out)], check=True)
    return out




def spark_env(scratch: Path, name: str, settings: dict[str, str]) -> dict[str, str]:
    """A SPARK_CONF_DIR holding these settings as spark-defaults.conf, as a user would configure them."""
    conf_dir = scratch / f"conf-{list(SPARK_SETTINGS).index(name)}"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "spark-defaults.conf").write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
    return {**os.environ, "SPARK_CONF_DIR": str(conf_dir), "PYTHONPATH": str(ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--small-rows", type=int, default=5_000)
    parser.add_argument("--model", type=Path, default=None, help="default: models/demo, else a MiniLM-shaped model")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    model = bench_model(args.model)
    engines = ["local", *SPARK_SETTINGS]
    walls: dict[str, dict[int, float]] = {engine: {} for engine in engines}
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for rows in (args.small_rows, args.rows):
            src = write_distinct_rows(scratch / f"in-{rows}.parquet", rows, 2_000)
            for engine in engines:  # alternating, so every engine sees the same machine
                out = scratch / f"out-{engines.index(engine)}-{rows}{'.parquet' if engine == 'local' else ''}"
                command = [sys.executable, "-m", "runtime.score", str(src), str(out), "--model", str(model)]
                env = None
                if engine != "local":
                    command += ["--engine", "spark", "--spark-master", MASTER]
                    env = spark_env(scratch, engine, SPARK_SETTINGS[engine])
                seconds, _, _ = timed_command(command, env=env)
                walls[engine][rows] = round(seconds, 2)
                print(f"{engine:30s} {rows:6d} rows: {seconds:6.1f} s wall", flush=True)
    fits = {
        engine: {"wall_s": walls[engine], **fit((args.small_rows, walls[engine][args.small_rows]), (args.rows, walls[engine][args.rows]))}
        for engine in engines
    }
    local_rate = fits["local"]["steady_rows_per_s"]
    shares = {engine: round(fits[engine]["steady_rows_per_s"] / local_rate, 3) for engine in SPARK_SETTINGS}
    report = {
        "rows": args.rows,
        "small_rows": args.small_rows,
        "model": str(model),
        "master": MASTER,
        "engines": fits,
        "spark_settings": SPARK_SETTINGS,
        "spark_steady_share_of_local": shares,
        "goal": GOAL,
        **run_conditions("pyspark"),
    }
    write_report(report, args.out / "spark_overhead.json")
    print_fits(fits)
    for engine, share in shares.items():
        print(f"{engine}: steady rate = {share:.0%} of local (goal {GOAL:.0%})")


if __name__ == "__main__":
    main()
