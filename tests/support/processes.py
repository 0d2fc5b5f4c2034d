"""Ray processes seen from outside: what a run's processes listen on and leak, and stopping exactly them.

Every Ray process a test starts runs in a session of its own (start_new_session=True), so the session id names
exactly the processes the test started, Ray's workers included (they take process groups of their own).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.2


def session_members(session: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (OSError, psutil.Error):
            continue
    return members


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still there, with their name and command line read once (`info`)."""
    found = []
    for process in processes:
        try:
            process.info = process.as_dict(["name", "cmdline"])
            found.append(process)
        except psutil.Error:
            continue
    return found


def stop_session(session: int, grace_seconds: float = 5) -> None:
    """SIGTERM the session's leader group, then SIGKILL whatever of the session is left (by pid)."""
    try:
        os.killpg(session, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_seconds
    while session_members(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in session_members(session):
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(session_members(session), timeout=5)


def is_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


@dataclass
class Observed:
    """What a run's processes showed while it ran."""

    listening: set[tuple[str, str, int]] = field(default_factory=set)  # (process name, host, port)
    tokens: set[str] = field(default_factory=set)  # RAY_AUTH_TOKEN values found in the processes' environments
    auth_modes: set[tuple[int, str, str]] = field(default_factory=set)  # (pid, name, RAY_AUTH_MODE) of GCS, raylets
    command_lines: set[str] = field(default_factory=set)
    log_texts: dict[Path, str] = field(default_factory=dict)  # last content seen of each Ray log file
    leftovers: list[str] = field(default_factory=list)  # processes of the session alive after the run

    def names(self) -> set[str]:
        return {name for name, _, _ in self.listening}


def observe(process: psutil.Process, seen: Observed, log_marker: str) -> None:
    try:
        name = process.name()
        for connection in process.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN:
                seen.listening.add((name, connection.laddr.ip, connection.laddr.port))
        seen.command_lines.add(" ".join(process.cmdline()))
        environment = process.environ()  # empty while a process exits
        if environment and name in ("gcs_server", "raylet"):  # Python processes write their title over theirs
            seen.auth_modes.add((process.pid, name, environment.get("RAY_AUTH_MODE", "unset")))
        if environment.get("RAY_AUTH_TOKEN"):
            seen.tokens.add(environment["RAY_AUTH_TOKEN"])
        for opened in process.open_files():
            if log_marker in opened.path and "/logs/" in opened.path:
                seen.log_texts[Path(opened.path)] = Path(opened.path).read_text(errors="replace")
    except (OSError, psutil.Error):
        pass


def run_watched(
    command: list[str],
    cwd: Path,
    env: dict[str, str] | None,
    timeout: float,
    log_marker: str = "/ray-score-",
    act: Callable[[list[psutil.Process]], None] = lambda members: None,
) -> tuple[subprocess.CompletedProcess, Observed]:
    """Run `command` in a session of its own, sampling its processes until it exits; then check none is left.

    `act` is called with the session's processes at every sample, to do something to the run while it runs.
    """
    seen = Observed()
    child = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            members = session_members(child.pid)
            for member in members:
                observe(member, seen, log_marker)
            act(members)
            done.wait(POLL_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
        seen.leftovers = [" ".join(p.info["cmdline"] or [p.info["name"]]) for p in alive(session_members(child.pid))]
        stop_session(child.pid)
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), seen


def measured_run(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, process start included; peak RSS in MB; stdout) of a child run in a fresh wrapper process,
    so runs do not share a high-water mark."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], check=True, stdout=subprocess.PIPE, text=True)\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(done.stdout)\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    measures, stdout = result.stdout.split("\n", 1)
    seconds, rss_kb = measures.split()
    return float(seconds), int(rss_kb) / 1024, stdout


def peak_rss_mb(command: list[str], env: dict[str, str] | None = None) -> float:
    return measured_run(command, env)[1]


def without_ray_auth(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if not name.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
