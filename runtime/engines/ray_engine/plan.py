"""How a run is cut up: units of rows small enough to balance actors and cheap to retry, and the pool's size."""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.engines.file_scoring import DEFAULT_WINDOW_ROWS
from runtime.files.storage import Location

# Actors reserve part of a CPU: an actor restarted after its node was lost then still finds room on the nodes
# that are left (which it shares for a while) instead of waiting forever for a free CPU.
ACTOR_CPU_SHARE = 0.5
# Units: about this many per actor, so that actors finish together and a lost actor costs little work ...
UNITS_PER_ACTOR = 4
# ... but never so small that per-unit costs (a part file, a task) show, nor so big that a retry costs minutes.
MIN_UNIT_ROWS = DEFAULT_WINDOW_ROWS
MAX_UNIT_ROWS = 16 * DEFAULT_WINDOW_ROWS


@dataclass(frozen=True)
class Unit:
    """Rows `rows` (all when None) of input `source`, scored into the part file `part`."""

    index: int  # of the input file in the run's plan
    source: Location
    part: Location
    rows: range | None

    @property
    def key(self) -> str:
        """How messages name the unit."""
        return f"rows {self.rows.start}-{self.rows.stop - 1} of {self.source}" if self.rows else f"{self.source}"

    @property
    def starts(self) -> Location:
        """Where the pool counts the unit's starts, beside its part file."""
        return self.part.sibling(f"{self.part.name.removesuffix('.parquet')}.starts")


@dataclass(frozen=True)
class Publication:
    """The part files of input `index`, in row order, to be published as `out` holding `rows` rows."""

    index: int
    parts: tuple[Location, ...]
    out: Location
    rows: int


def unit_rows(total_rows: int, actors: int) -> int:
    return min(MAX_UNIT_ROWS, max(MIN_UNIT_ROWS, math.ceil(total_rows / (UNITS_PER_ACTOR * actors))))


def plan_units(sources: list[tuple[Location, int]], actors: int, staging: Location) -> list[Unit]:
    """Cut every (input, rows) into units of about `unit_rows` rows; a small file is one unit, read whole."""
    size = unit_rows(sum(rows for _, rows in sources), actors)
    units = []
    for index, (source, rows) in enumerate(sources):
        count = max(1, round(rows / size))
        bounds = [rows * k // count for k in range(count + 1)]
        for k in range(count):
            part = staging.child(f"{index}-{k}.parquet")
            units.append(Unit(index, source, part, range(bounds[k], bounds[k + 1]) if count > 1 else None))
    return units


def pool_plan(cluster_cpus: float, actors: int | None, threads: int | None) -> tuple[int, int, float]:
    """(actors, ONNX Runtime threads per actor, CPUs each actor reserves from Ray)."""
    cpus = max(1, int(cluster_cpus))
    actors = actors or cpus  # one single-threaded actor per core beats intra-op threads on small batches
    threads = threads or max(1, cpus // actors)
    reserve = round(ACTOR_CPU_SHARE * min(threads, cpus / actors), 3)
    return actors, threads, max(reserve, 0.01)
