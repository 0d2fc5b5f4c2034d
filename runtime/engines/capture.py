"""A cluster runtime's own output (Ray's C++ core, Spark's JVM) kept out of the terminal while it runs, and
replayed when a bug needs it."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from runtime.errors import ScorerError

REPLAY_CHARS = 20000
RAY_MODULES = r"ray(\.|$)"  # warnings raised by Ray's own modules; everyone else's still show


@contextlib.contextmanager
def captured_stderr(name: str = "ray-score", quiet_modules: str = RAY_MODULES) -> Iterator[TextIO]:
    """Send fd 2 to a private log while Ray (or Spark) runs: its C++ core writes there directly (no logger to quiet).

    Ray's driver also prints the cluster's error reports (a worker died, a task is retried) to sys.stdout, which
    is for the summary line: they go to the same log. Yields a stream to the real stderr, for what the user
    should see meanwhile (progress). A bug (anything but a ScorerError or an interrupt) replays the log, so
    nothing needed to debug it is lost; the log is removed either way. The Spark engine uses it too (its JVM
    writes to fd 2 as well), under its own `name` and with its own `quiet_modules`.
    """
    log = Path(tempfile.gettempdir()) / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.stderr"
    sys.stderr.flush()
    saved = os.dup(2)
    real_stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        with open(log, "ab") as sink:
            os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
                warnings.filterwarnings("ignore", module=quiet_modules)
                yield real_stderr
        except (ScorerError, KeyboardInterrupt):
            raise
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            sys.stderr.write(log.read_text(errors="replace")[-REPLAY_CHARS:])
            raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        real_stderr.close()
        log.unlink(missing_ok=True)
