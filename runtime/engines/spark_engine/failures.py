"""What a failed Spark job means to the user: an error of ours raised on an executor, or a bug."""

from __future__ import annotations

from runtime.errors import ScorerError, carried_error


def as_scorer_error(exc: BaseException) -> ScorerError | None:
    """The error an executor raised, of the same kind (Spark carries it only as the text of the Python
    traceback), or None for a bug.

    The driver checks everything it can before the job starts; what is left is what only an executor can see
    (e.g. a model path that holds another model on its host).
    """
    return carried_error(str(exc))
