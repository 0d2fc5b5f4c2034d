"""The library's errors, by kind. Only the CLIs turn a kind into an exit code (runtime/score.py, export/__main__.py).

    ScorerError
    ├── InputError          the user's to fix; retrying the same command fails the same way
    │   ├── ConfigurationError  options, paths, the environment asked for (an extra not installed, a cluster address)
    │   ├── DataError           the input's rows or columns
    │   └── ModelError          the model dir
    └── StorageError        a store failed (disk full, permission, network): a retry may cure it

Raise the most precise kind; code that only needs "the user's fault" catches InputError.
"""

import re


class ScorerError(Exception):
    """Anything the library reports as one line to the user (never a bug)."""


class InputError(ScorerError):
    """Bad usage or bad input: the CLI prints `error: <message>` and exits with code 2."""


class ConfigurationError(InputError):
    """An option, a path or the environment asked for cannot work as given."""


class DataError(InputError):
    """The input data cannot be scored as it is (a missing or mistyped column, a corrupt file)."""


class ModelError(InputError):
    """The model dir is missing, inconsistent, tampered with or not this runtime's format."""


class StorageError(ScorerError):
    """Reading or writing a store failed in a way a retry may cure; the CLI's exit code says "retry me"."""


# How one of these errors reads in a worker's traceback, when a cluster carries it across processes only as text.
CARRIED_AS_TEXT = re.compile(rf"^\s*{re.escape(__name__)}\.(\w+): (.*)$", re.MULTILINE)


def carried_error(text: str) -> ScorerError | None:
    """The last error of ours that a traceback's text names, as the same kind (Ray's actor-creation failures and
    Spark's task failures carry a worker's exception only so); None when it names none."""
    for match in reversed(list(CARRIED_AS_TEXT.finditer(text))):
        kind = globals().get(match.group(1))
        if isinstance(kind, type) and issubclass(kind, ScorerError):
            return kind(match.group(2))
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: error lines stay one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
