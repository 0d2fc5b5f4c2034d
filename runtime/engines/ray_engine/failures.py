"""What a failure on the cluster means to the user: the error under Ray's wrappers, or a bug."""

from __future__ import annotations

import pyarrow as pa

from runtime.engines.ray_engine.pool import CallKeptKillingActors
from runtime.errors import InputError, first_line


def cause_of(exc: BaseException) -> BaseException:
    """The user-level exception under Ray's wrappers (RayTaskError, UserCodeException, ...)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (InputError, pa.ArrowException, OSError)) and not type(exc).__module__.startswith("ray"):
            return exc
        inner = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def as_input_error(exc: BaseException) -> InputError | None:
    """What the user should read for a failure on the cluster, or None for a bug."""
    if isinstance(exc, CallKeptKillingActors):
        return InputError(f"a scoring actor died on every try: {exc}; files not finished were not published")
    cause = cause_of(exc)
    if isinstance(cause, InputError):
        return InputError(str(cause))
    if isinstance(cause, (pa.ArrowException, OSError)):  # e.g. OUT's disk full or not writable on a node
        return InputError(first_line(cause))
    # Some wrappers (an actor that died in __init__) carry the worker's exception only as text.
    marker = f"{InputError.__module__}.{InputError.__qualname__}: "
    lines = [line for line in str(exc).splitlines() if line.startswith(marker)]
    return InputError(lines[-1][len(marker) :]) if lines else None
