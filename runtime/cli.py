"""The edge shared by the command-line tools: how bad usage reads, and which exit code each kind of error gets.

Exit codes: 0 done; 1 a bug; 2 bad usage or bad input (retrying the same command fails the same way);
75 a storage or environment failure that a retry may cure (EX_TEMPFAIL: disk full, permission, network);
130 interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from runtime.errors import InputError, ScorerError, StorageError

EXIT_BAD_INPUT = 2
EXIT_RETRY = 75
EXIT_INTERRUPTED = 130


def exit_code(error: ScorerError) -> int:
    """An orchestrator retries EXIT_RETRY and does not retry EXIT_BAD_INPUT."""
    if isinstance(error, StorageError):
        return EXIT_RETRY
    if isinstance(error, InputError):
        return EXIT_BAD_INPUT
    raise TypeError(f"no exit code for {type(error).__name__}")  # a new kind must be given one here


class OneLineParser(argparse.ArgumentParser):
    """Bad usage is one `error:` line and exit code 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")
