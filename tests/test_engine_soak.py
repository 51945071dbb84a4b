"""A short soak: candidates in a row, a third hostile; nothing lost, nothing leaked (see benchmarks/soak.py)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_a_short_soak_loses_no_verdict_and_leaks_nothing():
    spec = importlib.util.spec_from_file_location("regrow_soak", SOAK)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    descendants = soak._descendants
    spares: list[int] = []

    def without_spares(pid: int) -> list[int]:
        out = descendants(pid)
        spares.extend(p for p in out if soak.idle_spare(p))
        return [p for p in out if p not in spares]

    soak._descendants = without_spares
    r = soak.soak(90, seed=1, rss_bound_mb=64.0, log=lambda _m: None)
    assert r["lost"] == 0 and r["verdicts"] == 90
    assert r["wrong"] == []
    assert r["stray_processes_during"] == [] and r["processes_after_close"] == []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(p) for p in spares):
        time.sleep(0.05)
    assert not any(_running(p) for p in spares)  # gone with their workers (zombies wait for init)
    assert r["sandbox_uid_processes_after"] == []
    assert r["fds_after"] <= r["fds_before"]
    assert r["temp_dirs_left"] == []
    assert r["rss_growth_mb"] < r["rss_bound_mb"]
