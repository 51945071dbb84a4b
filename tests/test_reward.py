"""The reward entry: a raw completion in, the sandbox's verdict out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from regrow.config import RunConfig
from regrow.errors import ConfigError
from regrow.reward import Reward


def test_a_completion_is_read_like_a_model_answer_and_judged_in_the_sandbox(tmp_path, calc_repo):
    config = RunConfig(home=tmp_path / "home", python=Path(sys.executable), workers=1, timeout=30)
    with Reward(str(calc_repo), config) as reward:
        ref = reward.tasks["calc.ops:clamp"].reference_body
        fenced = "Here is the body:\n```python\n" + ref + "\n```\n"
        assert reward.score("calc.ops:clamp", fenced).reward == 1.0
        wrong = reward.score("calc.ops:clamp", "```python\nreturn x\n```")
        assert wrong.reward == 0.0 and wrong.status == "failed" and "FAILED" in wrong.feedback
        assert reward.score("calc.ops:clamp", "").status == "malformed"
        hack = reward.score("calc.ops:clamp", "```python\nimport os\nos._exit(0)\n```")
        assert hack.reward == 0.0
        with pytest.raises(ConfigError, match="no valid task 'calc.ops:unused'"):
            reward.score("calc.ops:unused", ref)


def test_reward_spec_binary_by_default_partial_and_bonuses_opt_in_integrity_forces_zero():
    from regrow.core.verdict import Verdict
    from regrow.reward import RewardSpec

    solved = Verdict(status="solved", tests_total=4, tests_passed=4, func_similarity=0.5, eq_cases=4, eq_matched=3)
    failed = Verdict(status="failed", tests_total=4, tests_passed=1, func_similarity=0.9)
    flagged = Verdict(status="failed", tests_total=4, tests_passed=3, flags=("exit-called",))
    informational = Verdict(status="failed", tests_total=4, tests_passed=2, flags=("global-state",))
    default = RewardSpec()
    assert [default.value(v) for v in (solved, failed, flagged, informational)] == [1.0, 0.0, 0.0, 0.0]
    assert all(default.value(v) == v.reward for v in (solved, failed, flagged, informational))
    spec = RewardSpec(partial=0.5, similarity=0.2, quality=0.4)
    assert spec.value(solved) == pytest.approx(1.0 + 0.2 * 0.5 + 0.4 * 0.75)
    assert spec.value(failed) == pytest.approx(0.5 * 1 / 4)  # similarity counts only when solved
    assert spec.value(flagged) == 0.0  # an integrity flag withholds partial credit too
    assert spec.value(informational) == pytest.approx(0.5 * 2 / 4)  # informational flags do not
    # no recorded call, no similarity computed: quality reads as matching, similarity as 0
    bare = Verdict(status="solved", tests_total=1, tests_passed=1)
    assert spec.value(bare) == pytest.approx(1.0 + 0.4)
    assert spec.value(Verdict(status="malformed", tests_total=0, tests_passed=0)) == 0.0
    with pytest.raises(ConfigError, match="partial"):
        RewardSpec(partial=-1)
    # Reward.value applies the reward's own spec (no source needed to check the delegation)
    reward = Reward.__new__(Reward)
    reward.spec = spec
    assert reward.value(failed) == spec.value(failed)
