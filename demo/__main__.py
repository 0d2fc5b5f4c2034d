"""`make demo`: build the demo sentiment model offline (once), then run the real scoring job on a sample.

Steps: fine-tune MiniLM on the training split of the project's own corpus -> `python -m export`
(parity-validated) into models/demo -> write the corpus's held-out split as a sample Parquet file ->
`python -m runtime.score` -> show a few rows and the accuracy on those never-trained-on sentences.
models/demo is reused while it is valid and was trained from the current corpus and recipe (the
fingerprint in its training.json), so a second run takes seconds and a changed corpus rebuilds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from demo.train import CORPUS, HELDOUT, ID2LABEL, TRAINING_RECORD, Recipe, fingerprint, load_corpus, train
from runtime.errors import InputError
from runtime.model.model_dir import read_manifest

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "models" / "demo-checkpoint"
MODEL = ROOT / "models" / "demo"
SAMPLE_IN = ROOT / "out" / "demo-reviews.parquet"
SAMPLE_OUT = ROOT / "out" / "demo-reviews-scored.parquet"
EMPTY_ROWS = 5  # null texts in the sample: they keep their rows and get null outputs
CHANNELS = ("web", "app", "email", "store")
RECIPE = Recipe()


def recorded_fingerprint(directory: Path) -> str | None:
    """The corpus-and-recipe fingerprint a checkpoint or model dir was built from, if it says."""
    try:
        return json.loads((directory / TRAINING_RECORD).read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_is_valid() -> bool:
    """A readable model dir, trained from today's corpus and recipe."""
    try:
        read_manifest(MODEL)
    except InputError:
        return False
    return recorded_fingerprint(MODEL) == fingerprint(RECIPE, CORPUS)


def build_checkpoint() -> None:
    """Train into a staging dir and rename, so an interrupted run never leaves a half checkpoint."""
    if recorded_fingerprint(CHECKPOINT) == fingerprint(RECIPE, CORPUS):
        return
    staging = CHECKPOINT.with_name(CHECKPOINT.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    train(staging, RECIPE, CORPUS)
    shutil.rmtree(CHECKPOINT, ignore_errors=True)
    staging.rename(CHECKPOINT)
    print(f"saved the fine-tuned checkpoint to {CHECKPOINT}")


def run(*command: str | Path) -> None:
    """Run a project command from the repo root, shown as the user would type it."""
    words = [str(Path(word).relative_to(ROOT)) if isinstance(word, Path) else word for word in command]
    print("$ python", " ".join(words), flush=True)
    subprocess.run([sys.executable, *words], cwd=ROOT, check=True)


def sample_table() -> pa.Table:
    """The corpus's held-out sentences (never trained on) with their expected label, a few empty rows,
    an id and a passthrough column."""
    texts, label_ids = load_corpus(CORPUS, HELDOUT)
    rows: list[str | None] = list(texts)
    expected: list[str | None] = [ID2LABEL[i] for i in label_ids]
    rng = random.Random(7)
    for index in sorted(rng.sample(range(len(rows)), EMPTY_ROWS)):
        rows.insert(index, None)
        expected.insert(index, None)
    return pa.table(
        {
            "review_id": pa.array(range(1, len(rows) + 1), pa.int64()),
            "text": pa.array(rows, pa.string()),
            "expected": pa.array(expected, pa.string()),
            "channel": pa.array([rng.choice(CHANNELS) for _ in rows]).dictionary_encode(),
        }
    )


def heldout_accuracy(scored: pa.Table) -> tuple[float, int]:
    """Share of the scored sample's non-empty rows whose label is the expected one, and how many rows."""
    pairs = [(row["label"], row["expected"]) for row in scored.select(["label", "expected"]).to_pylist()
             if row["expected"] is not None]
    return sum(label == expected for label, expected in pairs) / max(1, len(pairs)), len(pairs)


def show_result() -> None:
    """A few scored rows (a cross where the label is not the expected one) and the held-out accuracy."""
    scored = pq.read_table(SAMPLE_OUT, columns=["review_id", "text", "expected", "label", "score"])
    print(f"\n  {'id':>5}  {'label':<9} {'score':>6}     text")
    for row in scored.slice(0, 10).to_pylist():
        text = (row["text"] or "<null>")[:70]
        score = "" if row["score"] is None else f"{row['score']:.3f}"
        mark = "x" if row["expected"] is not None and row["label"] != row["expected"] else " "
        print(f"  {row['review_id']:>5}  {str(row['label']):<9} {score:>6}  {mark}  {text}")
    accuracy, rows = heldout_accuracy(scored)
    print(f"\nheld-out accuracy: {accuracy:.1%} of {rows} corpus sentences the model never trained on "
          "(column `expected`)")
    print(f"scored sample written to {SAMPLE_OUT.relative_to(ROOT)} (model: {MODEL.relative_to(ROOT)})")


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if model_is_valid():
        print(f"reusing {MODEL.relative_to(ROOT)}: trained from the current corpus and recipe (delete it to rebuild)")
    else:
        build_checkpoint()
        run("-m", "export", "--checkpoint", CHECKPOINT, "--out", MODEL)
        shutil.copyfile(CHECKPOINT / TRAINING_RECORD, MODEL / TRAINING_RECORD)  # marks the export complete
    SAMPLE_IN.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(sample_table(), SAMPLE_IN)
    run("-m", "runtime.score", SAMPLE_IN, SAMPLE_OUT, "--model", MODEL)
    show_result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
