"""Benchmark texts: SST-2 dev when ../shared is present, else generated sentences of similar length."""

from __future__ import annotations

from pathlib import Path

from export.probes import generated_texts

SST2_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"


def sst2_dev() -> tuple[list[str], list[int]] | None:
    """SST-2 dev texts and gold labels (1 = positive), or None where the shared data is absent."""
    if not SST2_DEV.exists():
        return None
    rows = [line.split("\t") for line in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]]
    return [row[0] for row in rows], [int(row[1]) for row in rows]


def benchmark_texts() -> list[str]:
    dev = sst2_dev()
    return dev[0] if dev else generated_texts()
