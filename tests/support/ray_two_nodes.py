"""A two-node Ray cluster on this machine, for losing a node mid-run: `python -m tests.ray_two_nodes TEMP_DIR`.

Prints the head's address once both nodes are up, then reads commands on stdin: `remove` kills the worker node
(its raylet and every worker on it, no grace) and answers `removed`; end of input shuts the cluster down.
Run it with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (loopback only), token auth and RAY_TMPDIR=TEMP_DIR in its
environment, in a session of its own so that the test can stop every process it started.

`Cluster` writes the head's address to `ray_current_cluster` under Ray's default temp root (`$RAY_TMPDIR/ray`)
whatever the nodes' temp_dir says, and fails when that folder does not exist (a machine where Ray never ran). The
nodes' temp_dir is that very folder, which the head creates, so every file the cluster writes stays in TEMP_DIR.
"""

from __future__ import annotations

import os
import sys

from ray._common.utils import get_default_ray_temp_dir
from ray.cluster_utils import Cluster


def main(temp_dir: str) -> None:
    ray_root = get_default_ray_temp_dir()
    if os.path.dirname(ray_root) != temp_dir:
        sys.exit(f"RAY_TMPDIR must be {temp_dir} (it is {os.environ.get('RAY_TMPDIR')!r})")
    node = dict(num_cpus=1, temp_dir=ray_root, include_dashboard=False)
    cluster = Cluster(initialize_head=True, head_node_args=node)
    worker = cluster.add_node(**node)
    cluster.wait_for_nodes()
    print(cluster.address, flush=True)
    for line in sys.stdin:
        if line.strip() == "remove":
            cluster.remove_node(worker, allow_graceful=False)
            print("removed", flush=True)
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
