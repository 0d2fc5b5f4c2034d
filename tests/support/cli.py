"""The CLIs as a user runs them, Parquet files to feed them, and what a clean failure looks like."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.cli import EXIT_BAD_INPUT

ROOT = Path(__file__).resolve().parents[2]


def run_score(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI as a user runs it; the timeout turns a hang into a failure."""
    return subprocess.run(
        [sys.executable, "-m", "runtime.score", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )


def score(model_dir: Path, src: Path, dst: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return run_score(str(src), str(dst), "--model", str(model_dir), *extra, **kwargs)


def write(path: Path, table: pa.Table, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kwargs)
    return path


def corrupt_middle(path: Path, size: int = 2000) -> None:
    """Overwrite bytes in the middle of a file: the footer stays valid, a data page does not."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = os.urandom(size)
    path.write_bytes(bytes(data))


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str, code: int = EXIT_BAD_INPUT) -> None:
    """Exit `code` (2: bad input; 75: a storage failure) with exactly one `error:` line naming each fragment, and no
    traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def make_tree(root: Path) -> list[Path]:
    """Three Parquet files in a partitioned layout, and a _SUCCESS marker, as Spark or Hive leave them."""
    files = [root / "day=1" / "part-0.parquet", root / "day=1" / "part-1.parquet", root / "day=2" / "part-0.parquet"]
    for number, path in enumerate(files):
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = [f"file {number} review {i} was {'great' if i % 2 else 'dull'}" for i in range(50 + number)]
        pq.write_table(pa.table({"id": range(len(texts)), "text": texts}), path)
    (root / "day=1" / "_SUCCESS").write_text("")
    return files
