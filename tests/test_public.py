"""The public surface: every name in regrow.__all__ resolves, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import regrow


def test_every_public_name_resolves_to_what_its_module_defines():
    for name in regrow.__all__:
        assert getattr(regrow, name) is not None, name
    assert regrow.Task.__module__ == "regrow.core.task"
    assert regrow.run.__module__ == "regrow.api"
    assert set(dir(regrow)) == set(regrow.__all__)


def test_importing_regrow_or_a_value_type_loads_no_engine_no_libcst_no_model():
    code = ("import sys, regrow, regrow.core.task, regrow.core.verdict; "
            "heavy = [m for m in ('libcst', 'regrow.verify.engine', 'llama_cpp', 'torch', 'regrow.store.db', 'regrow.api') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_an_unknown_name_is_an_attribute_error():
    import pytest
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        regrow.nope  # noqa: B018
