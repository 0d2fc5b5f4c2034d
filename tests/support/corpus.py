"""Texts for accuracy and benchmarks: SST-2 dev when ../shared is present, else generated sentences of similar length."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.probes import generated_texts
from runtime.scoring.scorer import Scorer

SST2_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "sst2" / "dev.tsv"


def sst2_dev() -> tuple[list[str], list[int]] | None:
    """SST-2 dev texts and gold labels (1 = positive), or None where the shared data is absent."""
    if not SST2_DEV.exists():
        return None
    rows = [line.split("\t") for line in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]]
    return [row[0] for row in rows], [int(row[1]) for row in rows]


def benchmark_texts() -> list[str]:
    dev = sst2_dev()
    return dev[0] if dev else generated_texts()

POSITIVE = "POSITIVE"


def sst2_accuracy(model_dir: Path) -> float:
    """Share of SST-2 dev sentences whose argmax label matches the gold label (1 = POSITIVE)."""
    dev = sst2_dev()
    if dev is None:
        raise FileNotFoundError(f"SST-2 dev set not found at {SST2_DEV}")
    texts, gold = dev
    scorer = Scorer(model_dir)
    predicted = np.array([scorer.labels[i] == POSITIVE for i in scorer.score(texts).label_ids])
    return float(np.mean(predicted == np.array(gold, dtype=bool)))
