"""Benchmark texts: SST-2 dev when ../shared is present, else generated sentences of similar length."""

from __future__ import annotations

import random
from pathlib import Path

SST2_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"


def sst2_dev() -> tuple[list[str], list[int]] | None:
    """SST-2 dev texts and gold labels (1 = positive), or None where the shared data is absent."""
    if not SST2_DEV.exists():
        return None
    rows = [line.split("\t") for line in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]]
    return [row[0] for row in rows], [int(row[1]) for row in rows]


def generated_texts(count: int = 872, seed: int = 0) -> list[str]:
    """Review-like sentences of 5 to 50 words, for machines without the shared data."""
    rng = random.Random(seed)
    words = (
        "the film book plot cast acting story ending music scenes was is were not very quite rather "
        "good bad great dull charming tedious funny moving slow sharp clumsy and but with a an of it "
        "its this that too never always again director writer characters"
    ).split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 50))) + " ." for _ in range(count)]


def benchmark_texts() -> list[str]:
    dev = sst2_dev()
    return dev[0] if dev else generated_texts()
