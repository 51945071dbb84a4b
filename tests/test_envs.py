"""Tests for regrow.source.envs: finding what a project needs for its tests, and building its venv."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _repos import make_file, make_repo

from regrow.source.envs import (
    MARKER,
    Environment,
    TestRequirements,
    coverage_requirement,
    ensure_environment,
    environment_key,
    find_test_requirements,
)
from regrow.errors import InstallError
from regrow.source.resolve import resolve_source

RICH = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "rich-pkg"
        version = "0.1"

        [project.optional-dependencies]
        docs = ["sphinx"]
        dev = ["black"]
        Test = ["pytest-mock"]
        pytest-plugins = ["pytest-xdist"]

        [dependency-groups]
        lint = ["ruff"]
        test = ["hypothesis>=6", {include-group = "base"}]
        base = ["attrs", "iniconfig"]
        dev = [{include-group = "test"}, "ipython"]
    """,
    "rich_pkg/__init__.py": "",
    "requirements.txt": "requests\n",
    "requirements-test.txt": "pytest-cov\n",
    "requirements_dev.txt": "tox\n",
    "requirements-docs.txt": "sphinx\n",
    "requirements/tests.txt": "freezegun\n",
    "requirements/ci-extra.txt": "x\n",
    "ci/constraints.txt": "y\n",
    "tox.ini": """
        [tox]
        envlist = py311

        [testenv]
        extras = docs
        deps =
            pytest>=7  # the runner
            {env:EXTRA_DEP:}
            py38: mock
            !pypy: cffi
            -r requirements/tests.txt
            -rmissing.txt
            -e .
            .
            -c constraints.txt
            git+https://example.invalid/repo.git#egg=thing
        commands = pytest
    """,
}


def test_everything_a_project_declares_for_its_tests_is_found(tmp_path):
    found = find_test_requirements(make_repo(tmp_path, RICH))
    assert found == TestRequirements(
        extras=("Test", "docs", "pytest-plugins", "dev"),  # test first, tox's extras count, dev last
        groups=("test", "dev"),
        group_requirements=("hypothesis>=6", "attrs", "iniconfig", "ipython"),
        requirement_files=("requirements-test.txt", "requirements/tests.txt", "requirements_dev.txt"),
        tox_deps=("pytest>=7", "git+https://example.invalid/repo.git#egg=thing"),
        fallback=("pytest",),
    )


def test_a_project_with_no_declarations_falls_back_to_pytest(tmp_path):
    found = find_test_requirements(make_repo(tmp_path, {"pyproject.toml": "[project]\nname='x'\n", "x.py": ""}))
    assert found == TestRequirements((), (), (), (), (), ("pytest",))


def test_extras_are_read_from_setup_cfg_setup_py_and_pkg_info(tmp_path):
    cfg = make_repo(tmp_path / "cfg", {
        "setup.cfg": "[options.extras_require]\ntesting =\n    pytest\nfast = ujson\n",
        "setup.py": "from setuptools import setup\nsetup()\n",
    })
    py = make_repo(tmp_path / "py", {
        "setup.py": """
            from setuptools import setup
            EXTRAS = {'tests': ['pytest'], 'all': []}
            setup(extras_require=EXTRAS)
        """,
    })
    info = make_repo(tmp_path / "info", {
        "PKG-INFO": "Metadata-Version: 2.1\nName: info\nVersion: 1\nProvides-Extra: test\nProvides-Extra: dev\n",
        "setup.py": "",
    })
    assert find_test_requirements(cfg).extras == ("testing",)
    assert find_test_requirements(py).extras == ("tests",)
    assert find_test_requirements(info).extras == ("test", "dev")


def test_group_includes_may_not_loop_forever(tmp_path):
    root = make_repo(tmp_path, {"pyproject.toml": """
        [dependency-groups]
        tests = ["a", {include-group = "tests"}, {include-group = "other"}]
        other = ["b", {include-group = "Tests"}]
    """})
    assert find_test_requirements(root).group_requirements == ("a", "b")


def test_tox_config_may_live_in_setup_cfg_or_pyproject(tmp_path):
    cfg = make_repo(tmp_path / "cfg", {"setup.cfg": "[tox:testenv]\ndeps =\n    pytest-timeout\n"})
    toml = make_repo(tmp_path / "toml", {"pyproject.toml": """
        [tool.tox.env_run_base]
        deps = ["pytest-randomly", "{[x]y}"]
    """})
    assert find_test_requirements(cfg).tox_deps == ("pytest-timeout",)
    assert find_test_requirements(toml).tox_deps == ("pytest-randomly",)


def test_a_directory_pip_cannot_install_uses_its_plain_requirements(tmp_path):
    root = make_repo(tmp_path, {"app.py": "", "requirements.txt": "requests\n", "tests/requirements.txt": "pytest\n"})
    assert find_test_requirements(root).requirement_files == ("requirements.txt", "tests/requirements.txt")


def test_the_environment_key_ignores_code_and_follows_dependencies(tmp_path):
    root = make_repo(tmp_path / "repo", RICH)
    key = lambda: environment_key(resolve_source(str(root), home=tmp_path), find_test_requirements(root))  # noqa: E731
    before = key()
    make_file(root, "rich_pkg/__init__.py", "def f():\n    return 1\n")
    assert key() == before
    make_file(root, "requirements-test.txt", "pytest-cov\npytest-mock\n")
    assert key() != before


def test_the_coverage_requirement_pins_this_process_version():
    import coverage

    assert coverage_requirement() == f"coverage=={coverage.__version__}"


# --------------------------------------------------------------------------- a user's interpreter


def test_a_users_interpreter_without_pytest_gets_the_command_that_fixes_it(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    python = tmp_path / "bare" / "bin" / "python"
    source = resolve_source(str(make_repo(tmp_path / "repo", {"m.py": ""})), home=tmp_path / "home")
    with pytest.raises(InstallError) as info:
        ensure_environment(source, home=tmp_path / "home", python=python)
    message = str(info.value)
    assert "cannot import pytest and coverage" in message
    assert f"{python} -m pip install pytest {coverage_requirement()}" in message
    assert not (tmp_path / "home" / "envs").exists()


def test_a_missing_interpreter_is_an_install_error(tmp_path):
    source = resolve_source(str(make_repo(tmp_path / "repo", {"m.py": ""})), home=tmp_path / "home")
    with pytest.raises(InstallError, match="cannot run the interpreter .*nope"):
        ensure_environment(source, home=tmp_path / "home", python=tmp_path / "nope")


def test_the_regrow_interpreter_itself_is_accepted_as_is(tmp_path):
    import coverage  # noqa: F401
    source = resolve_source(str(make_repo(tmp_path / "repo", {"m.py": ""})), home=tmp_path / "home")
    lines: list[str] = []
    env = ensure_environment(source, home=tmp_path / "home", python=Path(sys.executable), log=lines.append)
    assert env == Environment(Path(sys.executable), None, False, find_test_requirements(source.root))
    assert lines and lines[-1].startswith("using ")


# --------------------------------------------------------------------------- building venvs


@pytest.fixture(scope="session")
def toolz_source(tmp_path_factory):
    """``pypi:toolz==1.0.0`` in the session's shared home (tests/test_source.py uses the same one)."""
    home = tmp_path_factory.getbasetemp() / "toolz-home"
    return resolve_source("pypi:toolz==1.0.0", home=home), home


@pytest.fixture(scope="session")
def toolz_env(toolz_source) -> tuple[Environment, float]:
    source, home = toolz_source
    started = time.monotonic()
    env = ensure_environment(source, home=home)
    return env, time.monotonic() - started


@pytest.mark.network
def test_a_venv_is_built_with_the_package_pytest_and_coverage(toolz_env, toolz_source):
    env, seconds = toolz_env
    print(f"toolz venv built in {seconds:.1f} s")
    assert env.created and env.path is not None and env.python == env.path / "bin" / "python"
    check = "import coverage, pytest, toolz, sys; print(toolz.__version__, coverage.__version__, sys.prefix)"
    out = subprocess.run([str(env.python), "-c", check], capture_output=True, text=True, check=True,
                         cwd=env.path).stdout.split()
    assert out[:2] == ["1.0.0", coverage_requirement().partition("==")[2]]
    assert Path(out[2]) == env.path
    marker = json.loads((env.path / MARKER).read_text())
    assert marker["format"] == "regrow-env/1" and not marker["degraded"]
    assert "toolz==1.0.0" in marker["installed"]
    # the package was installed, not linked to the sdist tree
    site = subprocess.run([str(env.python), "-c", "import toolz; print(toolz.__file__)"], capture_output=True,
                          text=True, check=True, cwd=env.path).stdout.strip()
    assert "site-packages" in site
    assert not (toolz_source[0].root / "build").exists()  # built from a scratch copy


@pytest.mark.network
def test_a_second_call_reuses_the_venv_at_once(toolz_env, toolz_source):
    source, home = toolz_source
    started = time.monotonic()
    again = ensure_environment(source, home=home)
    assert time.monotonic() - started < 1.0
    assert again == Environment(toolz_env[0].python, toolz_env[0].path, False, toolz_env[0].requirements)


@pytest.mark.network
def test_a_venv_regrow_built_passes_the_check_for_a_users_interpreter(toolz_env, toolz_source):
    source, home = toolz_source
    env = ensure_environment(source, home=home, python=toolz_env[0].python)
    assert env.python == toolz_env[0].python and env.path is None and not env.created


@pytest.mark.network
def test_an_interrupted_build_is_removed_and_an_unbuildable_extra_is_dropped(tmp_path):
    root = make_repo(tmp_path / "repo", {
        "pyproject.toml": """
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "degrade-me"
            version = "0.3"

            [project.optional-dependencies]
            test = ["iniconfig"]
            dev = ["regrow-no-such-package-zzqx"]

            [tool.setuptools]
            py-modules = ["degrade_me"]
        """,
        "degrade_me.py": "def f():\n    return 1\n",
    })
    home = tmp_path / "home"
    source = resolve_source(str(root), home=home)
    env_dir = home / "envs" / f"degrade-me-{environment_key(source, find_test_requirements(root))}"
    make_file(env_dir, "bin/python", "left by an interrupted build")
    lines: list[str] = []
    env = ensure_environment(source, home=home, log=lines.append)
    assert env.created and env.path == env_dir
    assert any("incomplete environment" in line for line in lines)
    marker = json.loads((env_dir / MARKER).read_text())
    assert marker["degraded"] and marker["attempt"] == "only the extra 'test'"
    assert marker["pip_args"][0] == "<source>[test]"
    subprocess.run([str(env.python), "-c", "import degrade_me, iniconfig, pytest, coverage"], check=True, cwd=tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["degrade_me.py", "pyproject.toml"]  # nothing written here


@pytest.mark.network
def test_a_package_whose_build_fails_is_an_install_error_with_pips_reason(tmp_path):
    root = make_repo(tmp_path / "repo", {
        "setup.py": """
            from setuptools import setup
            raise RuntimeError('this package refuses to build')
            setup(name='broken')
        """,
        "broken.py": "",
    })
    home = root / "cache"  # a home inside the tree must not be copied into its own build copy
    with pytest.raises(InstallError) as info:
        ensure_environment(resolve_source(str(root), home=home), home=home)
    message = str(info.value)
    assert "RuntimeError: this package refuses to build" in message
    assert "Traceback" not in message.split("RuntimeError")[0].splitlines()[0]
    assert len(message.splitlines()) <= 18
    log = Path(message.rsplit("full pip output: ", 1)[1].rstrip(")"))
    assert log.is_file() and log.parent == home / "logs"
    assert list((home / "envs").iterdir()) == [next((home / "envs").glob(".*.lock"))]  # no half-built env left
