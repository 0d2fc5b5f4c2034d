"""A two-node Ray cluster on this machine, for losing a node mid-run: `python -m tests.ray_two_nodes TEMP_DIR`.

Prints the head's address once both nodes are up, then reads commands on stdin: `remove` kills the worker node
(its raylet and every worker on it, no grace) and answers `removed`; end of input shuts the cluster down.
Run it with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (loopback only) and token auth in its environment, in a session of
its own so that the test can stop every process it started.
"""

from __future__ import annotations

import sys

from ray.cluster_utils import Cluster


def main(temp_dir: str) -> None:
    node = dict(num_cpus=1, temp_dir=temp_dir, include_dashboard=False)
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
