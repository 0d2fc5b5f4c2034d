"""The Ray engine: an actor pool of Scorers scoring slices of the input files, each file published whole.

Modules, one concern each: `cluster` (joining or starting Ray, and undoing its hold on this process), `plan`
(units of rows and the pool's size), `pool` (an actor pool that knows no model, with the fault-tolerance
defaults), `worker` (the scoring actor), `publish` (part files merged into OUT on the cluster), `failures` (what a
failure on the cluster means to the user) and `engine` (the operator that ties them together). Ray's stderr is
kept out of the terminal by `runtime.engines.capture`, which the Spark engine shares.
"""

from runtime.engines.ray_engine.engine import run_ray

__all__ = ["run_ray"]
