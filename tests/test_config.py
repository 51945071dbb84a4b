from pathlib import Path

import pytest

from regrow.config import resolve_config
from regrow.errors import ConfigError


def test_precedence_is_defaults_then_file_then_environment_then_flags(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.regrow]\nsamples = 3\nturns = 2\nseed = 7\n")
    env = {"REGROW_TURNS": "4", "REGROW_SEED": "8"}
    cfg = resolve_config({"seed": 9, "tasks": None}, cwd=tmp_path, environ=env)
    assert cfg.samples == 3  # file
    assert cfg.turns == 4  # environment beats file
    assert cfg.seed == 9  # flag beats environment
    assert cfg.tasks is None and cfg.timeout == 60.0  # defaults


def test_invalid_values_raise_a_config_error_naming_the_field(tmp_path: Path):
    with pytest.raises(ConfigError, match="samples"):
        resolve_config({"samples": 0}, cwd=tmp_path, environ={})
    with pytest.raises(ConfigError, match="bogus"):
        (tmp_path / "pyproject.toml").write_text("[tool.regrow]\nbogus = 1\n")
        resolve_config({}, cwd=tmp_path, environ={})


def test_the_suite_timeout_comes_from_the_environment_or_the_flag(tmp_path: Path):
    assert resolve_config({}, cwd=tmp_path, environ={}).suite_timeout == 1800.0
    assert resolve_config({}, cwd=tmp_path, environ={"REGROW_SUITE_TIMEOUT": "30"}).suite_timeout == 30.0
    assert resolve_config({"suite_timeout": 5.0}, cwd=tmp_path,
                          environ={"REGROW_SUITE_TIMEOUT": "30"}).suite_timeout == 5.0
