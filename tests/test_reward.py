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
