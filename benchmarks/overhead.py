"""What the engine-overhead benchmarks share: an input of distinct rows, and the fixed/steady split of wall times."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.machine import cpu_flags
from runtime.model.model_dir import package_versions
from runtime.model.session import default_threads
from tests.support.corpus import benchmark_texts


def write_distinct_rows(path: Path, rows: int, row_group_size: int) -> Path:
    """`rows` distinct texts (the corpus's sentences, each with its row number): repeats would measure the dedup
    cache, not the engine."""
    texts = benchmark_texts()
    table = pa.table({"id": np.arange(rows), "text": [f"{texts[i % len(texts)]} ({i})" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def fit(small: tuple[int, float], big: tuple[int, float]) -> dict[str, float]:
    """Fixed seconds and steady rows/s from wall times at two sizes (t(n) = fixed + n / steady)."""
    (n_small, t_small), (n_big, t_big) = small, big
    steady = (n_big - n_small) / (t_big - t_small)
    return {"fixed_s": round(t_big - n_big / steady, 2), "steady_rows_per_s": round(steady, 1)}


def run_conditions(engine_package: str) -> dict[str, Any]:
    """The machine, how busy it was and the versions: what a reader needs to weigh the figures."""
    return {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": default_threads(), **cpu_flags()},
        "load_average_1m_after": round(os.getloadavg()[0], 2),  # other jobs on the host: above the cores, noisy
        "versions": package_versions(("onnxruntime", "pyarrow", engine_package)),
    }


def print_fits(fits: dict[str, dict[str, float]]) -> None:
    for engine, numbers in fits.items():
        print(f"{engine}: fixed {numbers['fixed_s']} s, steady {numbers['steady_rows_per_s']:,.0f} rows/s")
