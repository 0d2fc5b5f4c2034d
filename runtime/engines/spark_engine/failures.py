"""What a failed Spark job means to the user: an InputError raised on an executor, or a bug."""

from __future__ import annotations

from runtime.errors import InputError

MARKER = f"{InputError.__module__}.{InputError.__qualname__}: "


def as_input_error(exc: BaseException) -> InputError | None:
    """The InputError an executor raised (Spark carries it only as the text of the Python traceback), or None.

    The driver checks everything it can before the job starts; what is left is what only an executor can see
    (e.g. a model path that holds another model on its host).
    """
    lines = [line.strip() for line in str(exc).splitlines() if MARKER in line]
    return InputError(lines[-1].split(MARKER, 1)[1]) if lines else None
