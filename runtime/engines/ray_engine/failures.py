"""What a failure on the cluster means to the user: the library's error under Ray's wrappers, or a bug."""

from __future__ import annotations

import re

import pyarrow as pa

import runtime.errors
from runtime.errors import ScorerError, StorageError, first_line

# How a worker's error reads when a wrapper (an actor that died in __init__) carries it only as text.
CARRIED_AS_TEXT = re.compile(rf"^{re.escape(runtime.errors.__name__)}\.(\w+): (.*)$", re.MULTILINE)


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
    carried = [match for match in CARRIED_AS_TEXT.finditer(str(exc)) if match.group(1) in vars(runtime.errors)]
    if not carried:
        return None
    kind = vars(runtime.errors)[carried[-1].group(1)]
    return kind(carried[-1].group(2)) if isinstance(kind, type) and issubclass(kind, ScorerError) else None
