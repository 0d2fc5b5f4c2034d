"""`make demo`: build the demo sentiment model offline (once), then run the real scoring job on a sample.

Steps: fine-tune MiniLM on the project's own corpus -> `python -m export` (parity-validated) into
models/demo -> write a sample Parquet file of reviews -> `python -m runtime.score` -> show the result.
A valid models/demo is reused, so a second run takes seconds.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from demo.train import CORPUS, load_corpus, train
from runtime.errors import InputError
from runtime.model.model_dir import read_manifest

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "models" / "demo-checkpoint"
MODEL = ROOT / "models" / "demo"
SAMPLE_IN = ROOT / "out" / "demo-reviews.parquet"
SAMPLE_OUT = ROOT / "out" / "demo-reviews-scored.parquet"
SAMPLE_ROWS = 3000
CHANNELS = ("web", "app", "email", "store")


def model_is_valid() -> bool:
    try:
        read_manifest(MODEL)
    except InputError:
        return False
    return True


def build_checkpoint() -> None:
    """Train into a staging dir and rename, so an interrupted run never leaves a half checkpoint."""
    if (CHECKPOINT / "model.safetensors").exists():
        return
    staging = CHECKPOINT.with_name(CHECKPOINT.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    train(staging)
    staging.rename(CHECKPOINT)
    print(f"saved the fine-tuned checkpoint to {CHECKPOINT}")


def run(*command: str | Path) -> None:
    """Run a project command from the repo root, shown as the user would type it."""
    words = [str(Path(word).relative_to(ROOT)) if isinstance(word, Path) else word for word in command]
    print("$ python", " ".join(words), flush=True)
    subprocess.run([sys.executable, *words], cwd=ROOT, check=True)


def write_sample() -> None:
    """A few thousand reviews from the corpus (with a few empty ones), an id and a passthrough column."""
    texts, _ = load_corpus(CORPUS)
    rng = random.Random(7)
    rows = [rng.choice(texts) for _ in range(SAMPLE_ROWS)]
    for index in rng.sample(range(SAMPLE_ROWS), 5):
        rows[index] = None
    table = pa.table(
        {
            "review_id": pa.array(range(1, SAMPLE_ROWS + 1), pa.int64()),
            "text": pa.array(rows, pa.string()),
            "channel": pa.array([rng.choice(CHANNELS) for _ in range(SAMPLE_ROWS)]).dictionary_encode(),
        }
    )
    SAMPLE_IN.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, SAMPLE_IN)


def show_result() -> None:
    table = pq.read_table(SAMPLE_OUT, columns=["review_id", "text", "label", "score"]).slice(0, 6)
    print()
    for row in table.to_pylist():
        text = (row["text"] or "<null>")[:70]
        score = "" if row["score"] is None else f"{row['score']:.3f}"
        print(f"  {row['review_id']:>5}  {str(row['label']):<9} {score:>6}  {text}")
    print(f"\nscored sample written to {SAMPLE_OUT.relative_to(ROOT)} (model: {MODEL.relative_to(ROOT)})")


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if model_is_valid():
        print(f"reusing {MODEL.relative_to(ROOT)} (delete it to rebuild)")
    else:
        build_checkpoint()
        run("-m", "export", "--checkpoint", CHECKPOINT, "--out", MODEL)
    write_sample()
    run("-m", "runtime.score", SAMPLE_IN, SAMPLE_OUT, "--model", MODEL)
    show_result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
