"""A pool of Ray actors that knows no model: calls go to whichever actor is free, and a dead actor costs a retry.

As in Ray Data's actor pool, the fault-tolerance defaults live here and nowhere else: an actor that dies (killed,
out of memory, its node lost) is restarted by Ray as often as it takes, and the call it held is retried on it once
it is back. Ray counts those retries per call, not per actor, so a long run with many deaths never wears an actor
out; only a call that died with its actor MAX_ATTEMPTS_PER_CALL times is given up on: that is the call's fault.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Ray restarts a dead actor behind the same handle, always (Ray Data's default too).
ACTOR_MAX_RESTARTS = -1
# A call whose actor died this many times is given up on: it is what kills them (a poison unit). Ray Data retries
# forever; a nightly job would rather fail in minutes with the unit named than loop until morning.
MAX_ATTEMPTS_PER_CALL = 5
WAIT_SECONDS = 0.5  # how often a caller waiting for results hears from the pool (e.g. to print progress)


@dataclass(frozen=True)
class Call:
    """One method call for the pool: `method` of any actor, with `argument`; `key` names it in messages."""

    method: str
    argument: Any
    key: str


class CallKeptKillingActors(RuntimeError):
    """A call died with its actor MAX_ATTEMPTS_PER_CALL times."""


class ActorPool:
    """Dispatch `Call`s to idle actors, least recently used first; yield each result as it completes."""


    def __init__(self, ray: Any, actors: list[Any]) -> None:
        self.ray = ray
        self.idle: deque[Any] = deque(actors)
        self.queue: deque[Call] = deque()
        self.running: dict[Any, tuple[Any, Call]] = {}

    @staticmethod
    def actor_options() -> dict[str, int]:
        """The options every pool actor is created with (`ray.remote(**ActorPool.actor_options(), ...)`)."""
        return {"max_restarts": ACTOR_MAX_RESTARTS, "max_task_retries": MAX_ATTEMPTS_PER_CALL - 1}

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
            try:
                result = self.ray.get(ready)
            except self.ray.exceptions.RayActorError as exc:  # Ray's retries of this call are used up
                raise CallKeptKillingActors(f"{call.key} died with its actor {MAX_ATTEMPTS_PER_CALL} times") from exc
            yield call, result

    def dispatch(self) -> None:
        while self.idle and self.queue:
            actor, call = self.idle.popleft(), self.queue.popleft()
            self.running[getattr(actor, call.method).remote(call.argument)] = (actor, call)
