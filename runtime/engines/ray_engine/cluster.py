"""The Ray cluster a run uses, and Ray's hold on this process undone when the run ends.

Joining: a cluster at --ray-address or $RAY_ADDRESS, checked in seconds (reachable, token accepted). Otherwise a
private instance on this host's cores that listens on loopback only, with a fresh token. Either way the
environment variables set for Ray, and the signal handlers Ray's core installs (its SIGTERM handler crashes the
driver with a C++ dump), are put back as they were, so the CLI's own handling of SIGTERM and SIGINT holds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.errors import ConfigurationError, first_line
from runtime.model.session import default_threads

RAY_MISSING = "--engine ray needs the ray extra: pip install '.[ray]'"
# Ray's own chatter (usage stats, unhandled-error reports) must not drown the summary line; workers' output never
# reaches the driver (log_to_driver=False) and fd 2 is captured while Ray runs.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_IGNORE_UNHANDLED_ERRORS": "1"}
QUIET_LOGGERS = ("ray",)
MAX_SOCKET_PREFIX = 40  # Ray's session dir holds Unix sockets, whose paths must stay under ~107 bytes
LOOPBACK = "127.0.0.1"
LOOPBACK_ONLY_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
JOIN_TIMEOUT_SECONDS = 10
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError(RAY_MISSING) from None
    return ray


def quiet_ray() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def ray_temp_dir() -> Path:
    """A private temp dir for Ray's session files (never under OUT or the repo), removed after the run."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > MAX_SOCKET_PREFIX:
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix="ray-score-", dir=base))


def loopback_host(address: str) -> str | None:
    """The host of a `host:port` address when it is a loopback address, else None."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return host
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def private_instance_env() -> dict[str, str]:
    """The environment that keeps the private instance to itself: loopback only, and a fresh token.

    With cluster mode off (a switch Ray has for Windows and macOS), Ray takes the loopback address as the node's
    and binds every process's servers to it. RAY_AUTH_TOKEN outranks any token file, so the user's own
    ~/.ray/auth_token is neither used nor created. Children inherit the token through their environment, which
    only this user can read; it never appears on a command line or in a log.
    """
    return {
        LOOPBACK_ONLY_VAR: "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_urlsafe(32),
    }


def check_cluster(ray: Any, address: str) -> None:
    """Fail in seconds, with what to do, where ray.init would retry a refused token for 20 s or hang on no answer."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=JOIN_TIMEOUT_SECONDS).close()
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {address} ({first_line(exc)}); check --ray-address or RAY_ADDRESS"
        ) from None
    try:
        ray._raylet.GcsClient(address=address)  # one authenticated call to the head's GCS
    except ray.exceptions.AuthenticationError:
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            raise ConfigurationError(
                f"the Ray cluster at {address} requires token authentication: set RAY_AUTH_MODE=token and the "
                "cluster's token in RAY_AUTH_TOKEN (or in the file named by RAY_AUTH_TOKEN_PATH)"
            ) from None
        raise ConfigurationError(
            f"the Ray cluster at {address} refused the token (from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
            "~/.ray/auth_token); set the token the cluster was started with"
        ) from None
    except ray.exceptions.RpcError as exc:
        raise ConfigurationError(f"no Ray cluster answers at {address} ({first_line(exc)})") from None


def start_ray(address: str | None) -> tuple[Any, Path | None]:
    """Join `address` (or $RAY_ADDRESS) if given, else start a private local instance on this host's cores.

    Returns the ray module and the private instance's temp dir (None when joining). Ray reads its environment
    when it is imported, so it is imported here, after the environment is set.
    """
    quiet_ray()
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        if loopback_host(address):  # else Ray swaps in this host's address, which a loopback cluster never answers
            os.environ[LOOPBACK_ONLY_VAR] = "0"
        ray = import_ray()
        if "://" not in address and address != "auto":
            check_cluster(ray, address)
        try:
            ray.init(address=address, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigurationError(f"cannot join the Ray cluster at {address} ({first_line(exc)})") from None
        return ray, None
    os.environ.update(private_instance_env())
    ray = import_ray()
    temp_dir = ray_temp_dir()
    try:
        ray.init(
            address="local",
            num_cpus=default_threads(),
            _node_ip_address=LOOPBACK,
            _temp_dir=str(temp_dir),
            **common,
        )
    except BaseException:
        reap_leftovers(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return ray, temp_dir


def reap_leftovers(temp_dir: Path) -> None:
    """End workers of our private local cluster that outlived ray.shutdown().

    A worker still starting (e.g. an actor loading its model) when a failed run shuts Ray down can miss the
    raylet's exit and sleep forever. Such a process still holds its log files in our private session dir,
    which no other process uses, so that is how it is found (Linux /proc; elsewhere this does nothing).
    """
    prefix = f"{temp_dir}{os.sep}"
    for entry in Path("/proc").glob("[0-9]*"):
        if int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd).startswith(prefix) for fd in (entry / "fd").iterdir()):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:  # gone already, or not ours to inspect
            continue


def shutdown_ray() -> None:
    """Disconnect (and stop a private instance) if Ray got as far as starting."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def ray_cluster(address: str | None) -> Iterator[Any]:
    """Ray, joined or started; on exit shut down, its temp dir removed, this process's environment and signal
    handlers as they were before (no token left in os.environ)."""
    saved_env = {name: os.environ.get(name) for name in (*QUIET_ENV, LOOPBACK_ONLY_VAR, *AUTH_VARS)}
    saved_handlers = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    temp_dir = None
    try:
        ray, temp_dir = start_ray(address)
        restore_handlers(saved_handlers)
        yield ray
    finally:
        try:
            shutdown_ray()
        finally:
            restore_handlers(saved_handlers)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if temp_dir is not None:
                reap_leftovers(temp_dir)
                shutil.rmtree(temp_dir, ignore_errors=True)


def restore_handlers(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)
