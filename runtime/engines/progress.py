"""Progress for a person at a terminal (a tqdm bar) or for an operator reading a nightly job's log (lines)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m: short enough for a log line, exact enough for an ETA."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Rows done out of the total.

    On a terminal: a tqdm bar. Elsewhere (cron, Airflow, Kubernetes): one line every `every` seconds with the
    rows done out of the total, rows/s, the ETA and the current file; `every` 0 turns the lines off.
    """

    def __init__(self, total: int, every: float, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.every = every
        self.done = 0
        self.file = ""
        self.started = self.last_line = time.monotonic()
        self.bar = tqdm(total=total, unit="rows", dynamic_ncols=True, file=self.stream) if self.stream.isatty() else None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def start_file(self, name: str) -> None:
        self.file = name
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)

    def update(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
            return
        self.tick()

    def tick(self) -> None:
        """A line if one is due: also called while waiting for work done elsewhere, so a quiet spell shows."""
        now = time.monotonic()
        if self.bar is None and self.every > 0 and now - self.last_line >= self.every:
            self.last_line = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = duration((self.total - self.done) / rate) if rate > 0 else "unknown"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"progress: {self.done:,}/{self.total:,} rows ({percent:.1f}%), {rate:,.0f} rows/s, "
            f"ETA {eta}, file {self.file}"
        )
