"""Real packages from the index, downloaded once per test session: oracle solves every valid
task, null solves none, and every function is accounted for."""

from __future__ import annotations

import pytest

from regrow.config import RunConfig
from regrow.report.runs import build_report
from regrow.api import open_store, run

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory):
    return tmp_path_factory.mktemp("real-home")


@pytest.mark.parametrize("spec, min_valid", [("pypi:inflection==0.5.1", 6)])
def test_oracle_solves_every_valid_task_and_null_none_on_a_real_package(shared_home, spec, min_valid):
    config = RunConfig(home=shared_home, solver="oracle", workers=2)
    store = open_store(config)
    oracle = build_report(store, run(spec, config))
    null = build_report(store, run(spec, config.model_copy(update={"solver": "null"})))
    assert oracle.tasks["valid"] >= min_valid
    assert oracle.chosen == oracle.tasks["valid"] == oracle.solved_tasks
    assert oracle.pass_at[1] == 1.0 and null.pass_at[1] == 0.0
    # Most covered non-trivial functions become valid tasks; the rest have reasons.
    assert oracle.tasks["valid"] >= 0.8 * oracle.tasks["hollowed"]
    assert sum(oracle.tasks["by_status"].values()) == oracle.tasks["functions"]


def test_the_red_team_on_a_real_package_earns_nothing_and_leaves_the_engine_healthy(shared_home):
    """benchmarks/redteam_real.py's attacks, written without knowing the function (a hack alone,
    or a hack in front of the reference body), on real tasks of a real package."""
    import importlib.util
    import sys
    from pathlib import Path

    from regrow.api import prepare

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "redteam_real.py"
    spec = importlib.util.spec_from_file_location("regrow_redteam_real", path)
    red = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = red  # its dataclass looks its module up while being defined
    spec.loader.exec_module(red)
    prep = prepare("pypi:inflection==0.5.1", RunConfig(home=shared_home, solver="oracle", workers=1, timeout=4.0))
    try:
        result = red.run_attacks(prep, n_tasks=4)
    finally:
        prep.close()
    assert len(result["rows"]) == len(red.ATTACKS) >= 25
    assert {r["family"] for r in result["rows"]} == {"runner", "tamper", "deceptive", "special", "resource", "leakage"}
    for row in result["rows"]:
        assert row["reward"] == 0.0 and row["named"], row
    assert all(result["healthy"].values()) and len(result["healthy"]) == 4
