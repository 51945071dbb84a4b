"""How regrow runs a target's test suite: the pytest options it adds to the project's own.

A project's pytest configuration is meant for its developers' runs, and some of it breaks
regrow's sessions or means nothing in them:

- ``addopts`` options of plugins that report or parallelise (pytest-cov's ``--cov``, xdist's
  ``-n``, ``--junitxml``, ...): pytest-cov would start a second coverage measurement inside
  regrow's, xdist would move tests out of the process regrow watches, and when the plugin is not
  installed pytest stops at once with "unrecognized arguments";
- options of the cache provider (``--lf``, ``--sw``, ...), which regrow turns off, and options that
  stop the suite early (``-x``, ``--maxfail``), which would hide every later test;
- options that the environment cannot honour: an unknown option or a ``-p`` plugin that does not
  import (found by running the suite once and reading pytest's usage error).

`session_args` returns what regrow adds to every session of the source: the project's addopts
with those options left out (``-o addopts=...``, so every other option keeps its meaning),
``--continue-on-collection-errors`` (a test file that cannot be imported, say for an optional
dependency, must not stop the others: its collection error is reported), and ``-p no:randomly``
(a plugin that reorders and reseeds tests makes them unstable). `neutralised` says which
options were left out, so the user is told.
"""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SuiteOptions", "project_addopts", "pytest_ini", "required_plugins", "session_options", "unusable_options"]

# Options (with their value, when given apart) that never take part in a regrow session.
_DROP_WITH_VALUE = frozenset({
    "--cov", "--cov-report", "--cov-config", "--cov-fail-under", "--cov-context",
    "-n", "--numprocesses", "--dist", "--maxprocesses", "--max-worker-restart", "--tx", "--rsyncdir",
    "--junitxml", "--junit-xml", "--junit-prefix", "--html", "--css", "--json-report-file", "--report-log",
    "--result-log", "--maxfail", "--lfnf", "--last-failed-no-failures", "--basetemp",
})
_DROP_FLAGS = frozenset({
    "--cov-append", "--cov-branch", "--no-cov", "--no-cov-on-fail", "--cov-reset",
    "--looponfail", "-f", "--boxed", "--forked",
    "--self-contained-html", "--json-report", "--lf", "--last-failed", "--ff", "--failed-first", "--nf",
    "--new-first", "--sw", "--stepwise", "--sw-skip", "--stepwise-skip", "--cache-show", "--cache-clear",
    "-x", "--exitfirst", "--pdb", "--trace", "--capture=no",
})
_PREFIXES = ("--cov", "--benchmark-autosave", "--benchmark-save", "--benchmark-json", "--html=",
             "--junitxml=", "--junit-xml=", "--json-report", "--maxfail=", "-n=", "--numprocesses=", "--dist=",
             "--report-log=", "--basetemp=")

ALWAYS = ("--continue-on-collection-errors", "-p", "no:randomly")


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    """The pytest arguments regrow adds to each session, and what it left out of the project's."""

    args: tuple[str, ...]
    neutralised: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"args": list(self.args), "neutralised": list(self.neutralised)}

    @classmethod
    def from_json(cls, data: dict | None) -> "SuiteOptions | None":
        if not data:
            return None
        return cls(tuple(data.get("args", ())), tuple(data.get("neutralised", ())))


def _ini_section(path: Path, section: str) -> dict | None:
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    if not cfg.has_section(section):
        return None
    return dict(cfg.items(section))


def pytest_ini(root: Path) -> dict | None:
    """The pytest settings of the configuration file pytest would pick in ``root``, looked at in
    pytest's own order (None: no file of pytest's there). Values are as written: strings from
    ini files, strings or lists from ``pyproject.toml``."""
    root = Path(root)
    for name in ("pytest.ini", ".pytest.ini"):
        if (root / name).is_file():
            return _ini_section(root / name, "pytest") or {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            tool = {}
        table = tool.get("pytest", {}) if isinstance(tool, dict) else {}
        if isinstance(table, dict) and table:
            inner = table.get("ini_options", table)
            return dict(inner) if isinstance(inner, dict) else {}
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        if (root / name).is_file():
            found = _ini_section(root / name, section)
            if found is not None:
                return found
    return None


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError:
            return value.split()
    return [str(v) for v in value] if isinstance(value, list) else []


def project_addopts(root: Path) -> list[str] | None:
    """The ``addopts`` of the project's pytest configuration, as tokens (None: no configuration)."""
    ini = pytest_ini(root)
    return None if ini is None else _as_list(ini.get("addopts", []))


# Settings whose plugin the environment must have for the suite to mean what it says.
_SETTING_PLUGINS = {"asyncio_mode": "pytest-asyncio", "asyncio_default_fixture_loop_scope": "pytest-asyncio",
                    "timeout": "pytest-timeout", "timeout_method": "pytest-timeout",
                    "mock_use_standalone_module": "pytest-mock", "env": "pytest-env"}


def required_plugins(root: Path) -> list[str]:
    """Requirement strings of the pytest plugins the project's configuration asks for:
    ``required_plugins``, and the plugins of settings it uses (``asyncio_mode`` needs pytest-asyncio)."""
    ini = pytest_ini(root) or {}
    out = [r for r in _as_list(ini.get("required_plugins", [])) if r]
    out += [plugin for key, plugin in _SETTING_PLUGINS.items() if key in ini]
    return list(dict.fromkeys(out))


def _split(tokens: list[str], unusable: set[str]) -> tuple[list[str], list[str]]:
    """(kept, left out) of the addopts ``tokens``."""
    kept: list[str] = []
    dropped: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name = tok.split("=", 1)[0]
        if tok in unusable or name in unusable:
            dropped.append(tok)
        elif tok == "-p" and i + 1 < len(tokens) and tokens[i + 1] in unusable:
            dropped += [tok, tokens[i + 1]]
            i += 1
        elif tok in _DROP_WITH_VALUE and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            dropped += [tok, tokens[i + 1]]
            i += 1
        elif tok in _DROP_FLAGS or name in _DROP_WITH_VALUE or tok.startswith(_PREFIXES) \
                or re.fullmatch(r"-n\S+", tok):
            dropped.append(tok)
        else:
            kept.append(tok)
        i += 1
    return kept, dropped


def session_options(root: Path, unusable: set[str] = frozenset()) -> SuiteOptions:
    """The arguments for every regrow session of the project in ``root``.

    ``unusable``: options (or ``-p`` plugin names) this environment cannot honour, as found by
    `unusable_options` in a failed session's output.
    """
    tokens = project_addopts(root)
    args = list(ALWAYS)
    if not tokens:
        return SuiteOptions(tuple(args))
    kept, dropped = _split(tokens, set(unusable))
    if dropped:
        args += ["-o", "addopts=" + shlex.join(kept)]
    return SuiteOptions(tuple(args), tuple(dropped))


def unusable_options(output: str) -> set[str]:
    """Options pytest refused in ``output``: unknown arguments, plugins that do not import."""
    found: set[str] = set()
    for line in output.splitlines():
        m = re.search(r"unrecognized arguments: (.*)$", line)
        if m:
            found.update(t.split("=", 1)[0] for t in m.group(1).split())
        m = re.search(r"Error importing plugin \"([^\"]+)\"", line) or \
            re.search(r"ImportError while loading plugin [\"']?([\w.]+)", line)
        if m:
            found.add(m.group(1))
    return found
