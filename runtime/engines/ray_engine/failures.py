"""What a failure on the cluster means to the user: the library's error under Ray's wrappers, or a bug."""

from __future__ import annotations

import pyarrow as pa

from runtime.errors import ScorerError, StorageError, carried_error, first_line

def cause_of(exc: BaseException) -> BaseException:
    """The user-level exception under Ray's wrappers (RayTaskError, UserCodeException, ...)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ScorerError, pa.ArrowException, OSError)) and not type(exc).__module__.startswith("ray"):
            return exc
        inner = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def as_scorer_error(exc: BaseException) -> ScorerError | None:
    """What the user should read for a failure on the cluster, of the same kind as on one host; None for a bug."""
    cause = cause_of(exc)
    if isinstance(cause, ScorerError):
        return type(cause)(str(cause))
    if isinstance(cause, (pa.ArrowException, OSError)):  # e.g. OUT's disk full or not writable on a node
        return StorageError(first_line(cause))
    return carried_error(str(exc))
