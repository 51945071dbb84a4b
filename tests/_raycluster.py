"""A Ray cluster of `ray start` processes on this machine, for tests/test_ray.py and
benchmarks/ray_scale.py: everything under one short temp folder, so its processes can be found
and ended by id (never `ray stop`, which ends every Ray process on the machine)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")
# The GCS declares a node dead after ~1.5 s without health checks (the default is ~30 s): a killed
# raylet's in-flight candidates are re-run within seconds.
FAST_FAILURE = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3",
                "RAY_health_check_timeout_ms": "500", "RAY_health_check_initial_delay_ms": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """`ray start` processes on this machine, all under one temp dir (so they can be found by it)."""

    def __init__(self, env: dict | None = None):
        self.temp = tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp")  # Unix socket paths must stay short
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), "RAY_USAGE_STATS_ENABLED": "0"}

    def _start(self, *args: str) -> None:
        subprocess.run([RAY, "start", *args, "--disable-usage-stats",
                        "--dashboard-agent-listen-port", str(free_port())],
                       env=self.env, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """The head node (2 CPUs); `add_node` adds a second one with its own ``node_b`` resource."""
        self._start("--head", "--port", str(self.port),
                    "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", self.temp)

    def add_node(self) -> None:
        self._start("--address", self.address, "--num-cpus", "1", "--resources", '{"node_b": 1}')

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if any(self.temp in arg for arg in cmd):
                found.append(proc)
        return found

    def raylet_of(self, node_id: str) -> psutil.Process:
        for proc in self.processes():
            cmd = proc.info["cmdline"]
            if cmd and cmd[0].endswith("raylet") and f"--node_id={node_id}" in cmd:
                return proc
        raise LookupError(f"no raylet for node {node_id}")

    def stop(self) -> None:
        """End every process of this cluster by its id (not `ray stop`, which ends every Ray
        process on the machine, other users' too)."""
        procs = self.processes()
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        _gone, alive = psutil.wait_procs(procs, timeout=5)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        shutil.rmtree(self.temp, ignore_errors=True)
