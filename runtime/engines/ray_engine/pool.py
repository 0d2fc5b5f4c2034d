"""A pool of Ray actors that knows no model: calls go to whichever actor is free, and a dead actor costs a retry.

As in Ray Data's actor pool, the fault-tolerance defaults live here and nowhere else: an actor that dies (killed,
out of memory, its node lost) is restarted by Ray as often as it takes, and the call it held is retried on it once
it is back, however long that takes (a lost node's actors restart elsewhere). What Ray cannot tell is a call that
is itself what kills its actor (a poison unit): the worker counts the times it *started* each call in a small file
beside the call's output (`count_start`), so calls that never began (sent to an actor that was restarting) cost
nothing, and a call started MAX_STARTS_PER_CALL times is refused with one line instead of looping until morning.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from runtime.errors import DataError
from runtime.files.storage import Location, make_parents

# Ray restarts a dead actor behind the same handle, and retries the call it held on it, without limit (Ray Data's
# defaults too).
ACTOR_OPTIONS = {"max_restarts": -1, "max_task_retries": -1}
MAX_STARTS_PER_CALL = 5
WAIT_SECONDS = 0.5  # how often a caller waiting for results hears from the pool (e.g. to print progress)


@dataclass(frozen=True)
class Call:
    """One method call for the pool: `method` of any actor, with `argument`; `key` names it in messages."""

    method: str
    argument: Any
    key: str


def count_start(marker: Location, key: str) -> None:
    """Record one more start of the call `key` in MARKER; refuse it once its actors died MAX_STARTS_PER_CALL times."""
    try:
        with marker.filesystem.open_input_stream(marker.path) as stream:
            starts = int(stream.read() or b"0")
    except (FileNotFoundError, pa.ArrowException, ValueError):
        starts = 0
    if starts >= MAX_STARTS_PER_CALL:
        raise DataError(
            f"{key} was started {starts} times and its actor died each time (out of memory, or a crash on these "
            "rows); files not finished were not published"
        )
    make_parents(marker)
    with marker.filesystem.open_output_stream(marker.path) as stream:
        stream.write(str(starts + 1).encode())


class ActorPool:
    """Dispatch `Call`s to idle actors, least recently used first; yield each result as it completes."""

    def __init__(self, ray: Any, actors: list[Any]) -> None:
        self.ray = ray
        self.idle: deque[Any] = deque(actors)
        self.queue: deque[Call] = deque()
        self.running: dict[Any, tuple[Any, Call]] = {}

    def submit(self, call: Call) -> None:
        self.queue.append(call)

    def completed(self, while_waiting: Callable[[], None] = lambda: None) -> Iterator[tuple[Call, Any]]:
        """(call, result) as calls finish, until none is queued or running; calls may be submitted meanwhile.

        `while_waiting` is called every WAIT_SECONDS that no call finishes.
        """
        while self.queue or self.running:
            self.dispatch()
            finished, _ = self.ray.wait(list(self.running), num_returns=1, timeout=WAIT_SECONDS)
            if not finished:
                while_waiting()
                continue
            [ready] = finished
            actor, call = self.running.pop(ready)
            self.idle.append(actor)  # to the back: the least recently used actor gets the next call
            yield call, self.ray.get(ready)

    def dispatch(self) -> None:
        while self.idle and self.queue:
            actor, call = self.idle.popleft(), self.queue.popleft()
            self.running[getattr(actor, call.method).remote(call.argument)] = (actor, call)
