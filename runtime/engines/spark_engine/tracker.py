"""Progress on the driver while Spark runs: the rows of finished tasks, as the accumulator hears of them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from runtime.engines.progress import Progress

POLL_SECONDS = 0.5


@contextlib.contextmanager
def tracking(counts: Any, progress: Progress) -> Iterator[None]:
    """Feed `progress` from a RowCounts accumulator every POLL_SECONDS on a thread, while the block runs.

    Spark merges a task's update when the task finishes, so progress moves task by task (the engine cuts the
    input into several tasks per core); a quiet spell still prints its line.
    """
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            done = counts.value.rows
            if done > progress.done:
                progress.update(done - progress.done)
            else:
                progress.tick()

    thread = threading.Thread(target=poll, name="spark-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
