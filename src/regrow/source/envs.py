"""The Python environment a target's tests run in.

``ensure_environment(source, home=...)`` returns an interpreter in which the target's test suite
can run, with ``pytest`` and the same ``coverage`` as the regrow process (so the data it writes
can be read here):

* by default regrow builds a virtual environment with its own interpreter
  (``sys.executable -m venv``) under ``home/envs/NAME-ENVKEY/``, and installs into it, with that
  venv's ``pip``: the project itself, **not editable**, with its test-like extras
  (``pip install "ROOT[test,dev]"``), the requirements of its test-like PEP 735 dependency
  groups (parsed here: a fresh venv's pip is too old for ``--group``), its test requirement
  files (``-r``), the ``deps`` of its tox ``[testenv]``, the pytest plugins its pytest configuration asks for
  (``required_plugins``, ``asyncio_mode``, ...), ``pytest`` and `coverage_requirement`.
  The project is built from a scratch copy of ``source.root`` (``build/``, ``*.egg-info`` and a
  version file written by the build never land in the user's directory).
* with ``python=PATH`` (the user's own environment) nothing is installed: the interpreter is
  checked to run and to import ``pytest`` and ``coverage``; the error names the pip command
  that would fix it.

How tests see the code under test: the installed copy only brings the dependencies (and entry
points and metadata). Tests later run with ``PYTHONPATH=<private copy>/<import root>``, so the
private copy (with a candidate's body in it) shadows the installed package. Hence ENVKEY hashes
what decides the *dependencies* (packaging and requirement files, the requirement lists found,
the interpreter, the coverage version), not the code: editing a function does not rebuild the
environment. (A package with compiled extensions is the exception: its extension modules live
only in the installed copy.)

Interruptions: a file ``.regrow-complete`` (JSON: what was asked for, what pip installed) is
written last; a directory without it is an interrupted build, removed and rebuilt. A lock file
beside it keeps two regrow processes from building the same environment at once.

Degrading: when the full install fails (an extra can pull something unbuildable), it is retried
with only the most test-like extra, then with the bare package; the marker records which one
succeeded. If the bare package fails too, `InstallError` carries pip's error, summarised, and
the path of the full log under ``home/logs/``.

Everything runs in subprocesses with timeouts; no code of the target runs in this process.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from regrow.core import pyast
from regrow.errors import InstallError
from regrow.source.resolve import Source, is_skipped_dir, pip_error_summary, read_cfg, read_toml
from regrow.source.suite import required_plugins

__all__ = [
    "Environment",
    "TestRequirements",
    "find_test_requirements",
    "ensure_environment",
    "coverage_requirement",
    "environment_key",
    "MARKER",
]

MARKER = ".regrow-complete"
ENV_FORMAT = "regrow-env/1"  # bump to rebuild every environment after a change in what is installed

VENV_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 1800  # one pip attempt; building a few sdists can take minutes
CHECK_TIMEOUT_S = 60

_TEST_NAMES = frozenset({"test", "tests", "testing"})
_TEST_TOKENS = frozenset({"test", "tests", "testing", "pytest"})
_DEV_NAMES = frozenset({"dev", "devel", "develop", "development"})


@dataclass(frozen=True, slots=True)
class TestRequirements:
    """What a project declares for running its tests, as found in its files."""

    __test__ = False  # not a pytest test class, despite the name

    extras: tuple[str, ...]  # test-like extras that exist in the project metadata, best first
    groups: tuple[str, ...]  # PEP 735 [dependency-groups] names that look like test groups
    group_requirements: tuple[str, ...]  # the requirement strings of those groups, includes expanded
    requirement_files: tuple[str, ...]  # relpaths of test requirement files (and tox ``-r`` files)
    tox_deps: tuple[str, ...]  # ``deps`` of tox's [testenv] that need no substitution
    fallback: tuple[str, ...] = ("pytest",)
    plugins: tuple[str, ...] = ()  # pytest plugins the project's pytest configuration asks for


@dataclass(frozen=True, slots=True)
class Environment:
    """An interpreter to run a target's tests with."""

    python: Path  # the interpreter the target's tests run with
    path: Path | None  # venv dir when regrow created it, None for a user's --python
    created: bool  # True when this call built it
    requirements: TestRequirements


def coverage_requirement() -> str:
    """``coverage==X`` with the version in this process, so the target writes data we can read."""
    try:
        return f"coverage=={importlib.metadata.version('coverage')}"
    except importlib.metadata.PackageNotFoundError:
        return "coverage"


# --------------------------------------------------------------------------- finding requirements


def _test_rank(name: str) -> int | None:
    """0 for test/tests/testing, 1 for other names with a test word, 2 for dev names, else None."""
    norm = canonicalize_name(name)
    if norm in _TEST_NAMES:
        return 0
    if _TEST_TOKENS.intersection(norm.split("-")):
        return 1
    if norm in _DEV_NAMES:
        return 2
    return None


def _declared_extras(root: Path, pyproject: dict) -> list[str]:
    """Every extra the project declares, wherever its metadata lives."""
    names: list[str] = []
    optional = pyproject.get("project", {}).get("optional-dependencies", {})
    if isinstance(optional, dict):
        names += [k for k in optional if isinstance(k, str)]
    cfg = read_cfg(root / "setup.cfg")
    if cfg.has_section("options.extras_require"):
        names += cfg.options("options.extras_require")
    names += _setup_py_extras(root / "setup.py")
    pkg_info = root / "PKG-INFO"
    if pkg_info.is_file():
        text = pkg_info.read_text(encoding="utf-8", errors="replace")
        names += re.findall(r"^Provides-Extra:\s*(\S+)\s*$", text, flags=re.MULTILINE)
    return names


def _setup_py_extras(path: Path) -> list[str]:
    """Keys of ``extras_require=`` in ``setup.py`` when it is a dict literal (or a name bound to one)."""
    if not path.is_file():
        return []
    try:
        tree = pyast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []
    bound: dict[str, ast.Dict] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = node.value
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg != "extras_require":
                continue
            value = bound.get(kw.value.id) if isinstance(kw.value, ast.Name) else kw.value
            if isinstance(value, ast.Dict):
                found += [k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return found


def _group_requirements(groups: dict, name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """The requirement strings of a PEP 735 group, ``include-group`` expanded, cycles ignored."""
    norm = canonicalize_name(name)
    if norm in seen:
        return []
    by_norm = {canonicalize_name(k): v for k, v in groups.items() if isinstance(k, str)}
    out: list[str] = []
    for item in by_norm.get(norm, []) if isinstance(by_norm.get(norm), list) else []:
        if isinstance(item, str):
            out.append(item.strip())
        elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
            out += _group_requirements(groups, item["include-group"], seen | {norm})
    return out


def _requirement_file_rank(rel: Path) -> int | None:
    """Whether a file looks like test requirements: a test or dev word in its name or folder."""
    if rel.suffix != ".txt":
        return None
    words = [w for w in re.split(r"[-_.]", rel.stem.lower()) if w not in {"requirements", "requirement", "reqs"}]
    folder = rel.parts[0].lower() if len(rel.parts) > 1 else ""
    if folder in {"tests", "test"} and rel.stem.lower() in {"requirements", "requirement"}:
        return 0  # tests/requirements.txt
    if folder != "requirements" and "requirement" not in rel.stem.lower() and "reqs" not in rel.stem.lower():
        return None
    ranks = [r for r in (_test_rank(w) for w in words) if r is not None]
    return min(ranks) if ranks else None


def _find_requirement_files(root: Path) -> list[str]:
    candidates: list[tuple[int, str]] = []
    for folder in (root, root / "requirements", root / "tests", root / "test", root / "ci"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file():
                rel = path.relative_to(root)
                rank = _requirement_file_rank(rel)
                if rank is not None:
                    candidates.append((rank, rel.as_posix()))
    return [rel for _, rel in sorted(candidates)]


_FACTOR = re.compile(r"^!?[\w.-]+(\s*,\s*!?[\w.-]+)*\s*:(?!//)")


def _tox_settings(root: Path, pyproject: dict) -> tuple[list[str], list[str]]:
    """(deps lines, extras) of tox's base test environment, from tox.ini, setup.cfg or pyproject."""
    for path, section in ((root / "tox.ini", "testenv"), (root / "setup.cfg", "tox:testenv")):
        cfg = read_cfg(path)
        if cfg.has_section(section):
            return (cfg.get(section, "deps", fallback="").splitlines(),
                    re.split(r"[\s,]+", cfg.get(section, "extras", fallback="")))
    tox = pyproject.get("tool", {}).get("tox", {})
    if isinstance(tox, dict) and isinstance(tox.get("legacy_tox_ini"), str):
        cfg = configparser.ConfigParser(interpolation=None)
        with contextlib.suppress(configparser.Error):
            cfg.read_string(tox["legacy_tox_ini"])
        if cfg.has_section("testenv"):
            return (cfg.get("testenv", "deps", fallback="").splitlines(),
                    re.split(r"[\s,]+", cfg.get("testenv", "extras", fallback="")))
    base = tox.get("env_run_base", {}) if isinstance(tox, dict) else {}
    if isinstance(base, dict):
        deps = [d for d in base.get("deps", []) if isinstance(d, str)]
        extras = [e for e in base.get("extras", []) if isinstance(e, str)]
        return deps, extras
    return [], []


def _tox_deps(root: Path, lines: list[str]) -> tuple[list[str], list[str]]:
    """(requirement strings, requirement files) from tox ``deps`` lines.

    Lines needing tox (``{...}`` substitutions, factor conditions like ``py38: x``), other pip
    options, and the project itself (``.``, ``-e .``) are skipped; ``-r FILE`` becomes a file.
    """
    reqs: list[str] = []
    files: list[str] = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or "{" in line or _FACTOR.match(line):
            continue
        if line.startswith("-r"):
            target = (root / line[2:].strip().lstrip("=").strip()).resolve()
            if target.is_file() and target.is_relative_to(root.resolve()):
                files.append(target.relative_to(root.resolve()).as_posix())
            continue
        if line.startswith(("-", ".", "/")):
            continue
        if "://" in line:
            reqs.append(line)
            continue
        try:
            Requirement(line)
        except InvalidRequirement:
            continue
        reqs.append(line)
    return reqs, files


def _is_installable(root: Path) -> bool:
    """Whether pip can install the directory as a project (a setup.py or a real pyproject)."""
    if (root / "setup.py").is_file():
        return True
    pyproject = read_toml(root / "pyproject.toml")
    return "build-system" in pyproject or "project" in pyproject


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def find_test_requirements(root: Path) -> TestRequirements:
    """What the project in ``root`` declares for running its tests.

    Looks at test-like extras (pyproject, setup.cfg, setup.py literals, PKG-INFO, and those tox
    asks for), PEP 735 dependency groups, requirement files named for tests or development
    (``requirements-test.txt``, ``requirements/test.txt``, ``test-requirements.txt``,
    ``requirements_dev.txt``, ``tests/requirements.txt``, ...), and tox's ``[testenv] deps``.
    A directory that pip cannot install as a project also gets its plain ``requirements.txt``.
    """
    root = Path(root)
    pyproject = read_toml(root / "pyproject.toml")
    tox_lines, tox_extras = _tox_settings(root, pyproject)

    declared = {canonicalize_name(n): n for n in reversed(_declared_extras(root, pyproject))}
    wanted_by_tox = {canonicalize_name(e) for e in tox_extras if e}
    ranked: list[tuple[int, str]] = []
    for norm, spelled in declared.items():
        rank = _test_rank(norm)
        if norm in wanted_by_tox:
            rank = min(rank, 1) if rank is not None else 1
        if rank is not None:
            ranked.append((rank, spelled))
    extras = tuple(name for _, name in sorted(ranked))

    groups_table = pyproject.get("dependency-groups", {})
    groups_table = groups_table if isinstance(groups_table, dict) else {}
    groups = sorted((r, g) for g in groups_table if isinstance(g, str) and (r := _test_rank(g)) is not None)
    group_requirements: list[str] = []
    for _, group in groups:
        group_requirements += _group_requirements(groups_table, group)

    tox_reqs, tox_files = _tox_deps(root, tox_lines)
    files = _find_requirement_files(root) + tox_files
    if not _is_installable(root) and (root / "requirements.txt").is_file():
        files.insert(0, "requirements.txt")

    return TestRequirements(
        extras=extras,
        groups=tuple(g for _, g in groups),
        group_requirements=_unique(group_requirements),
        requirement_files=_unique(files),
        tox_deps=_unique(tox_reqs),
        plugins=_unique(required_plugins(root)),
    )


# --------------------------------------------------------------------------- the environment


def environment_key(source: Source, requirements: TestRequirements) -> str:
    """A short hash of what decides an environment's contents (not the code under test).

    Covers the packaging files (pyproject.toml, setup.py, setup.cfg, PKG-INFO, tox.ini), the
    requirement files found, the requirement lists, the regrow interpreter and coverage version,
    and `ENV_FORMAT`.
    """
    digest = hashlib.sha256()
    base = getattr(sys, "_base_executable", sys.executable)  # what `venv` links the new venv to
    digest.update(f"{ENV_FORMAT}\0{sys.version}\0{base}\0{coverage_requirement()}\0".encode())
    digest.update(json.dumps(asdict(requirements), sort_keys=True).encode())
    files = ["pyproject.toml", "setup.py", "setup.cfg", "PKG-INFO", "tox.ini", *requirements.requirement_files]
    for rel in files:
        path = source.root / rel
        data = path.read_bytes() if path.is_file() else b"<absent>"
        digest.update(f"\0{rel}\0".encode() + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", canonicalize_name(name)).strip("-")[:40] or "project"


def ensure_environment(source: Source, *, home: Path, python: Path | None = None,
                       log: Callable[[str], None] | None = None) -> Environment:
    """An interpreter for ``source``'s tests: the user's ``python`` checked, or a venv built once.

    Raises `InstallError` when the user's interpreter lacks pytest or coverage (with the pip
    command that fixes it), or when not even the bare package installs (with pip's error).
    """
    say = log or (lambda _line: None)
    requirements = find_test_requirements(source.root)
    if python is not None:
        return _check_user_python(Path(python), requirements, say)

    home = Path(os.path.abspath(home))  # pip runs with another cwd: a relative path would miss
    env_dir = home / "envs" / f"{_slug(source.name)}-{environment_key(source, requirements)}"
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    env_python = env_dir / "bin" / "python"
    with _locked(env_dir.parent / f".{env_dir.name}.lock", say):
        if (env_dir / MARKER).is_file() and env_python.exists():
            return Environment(env_python, env_dir, False, requirements)
        if env_dir.exists():
            say(f"removing an incomplete environment (interrupted build): {env_dir}")
            shutil.rmtree(env_dir)
        _build(source, requirements, env_dir, home, say)
    return Environment(env_python, env_dir, True, requirements)


@contextlib.contextmanager
def _locked(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another regrow process to finish building {path.name[1:-5]}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_LEAKY_VARIABLES = frozenset({
    "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_USER", "PIP_REQUIRE_VIRTUALENV", "__PYVENV_LAUNCHER__",
})


def _subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for pip and venv: the user's, minus what would leak this process into it."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARIABLES}
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    env.update(extra or {})
    return env


def _run_logged(cmd: list[str], *, log_file: Path, timeout: float, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run ``cmd``, appending its output to ``log_file``; (exit status or None on timeout, output)."""
    with open(log_file, "a", encoding="utf-8") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n")
        out.flush()
        start = out.tell()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env or _subprocess_env(), start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # pip's build subprocesses too
            proc.wait()
            code = None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    with open(log_file, encoding="utf-8", errors="replace") as back:
        back.seek(start)
        return code, back.read()


def _copy_for_build(root: Path, dest: Path, *, leave_out: tuple[Path, ...]) -> None:
    """A scratch copy to build the package from (real copies: a build may rewrite a file).

    ``leave_out`` are directories never copied (regrow's home, should it lie inside the tree).
    """
    excluded = {p.resolve() for p in leave_out}

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        return {n for n in names
                if (here / n).is_dir() and not (here / n).is_symlink()
                and (is_skipped_dir(here / n) or (here / n).resolve() in excluded)}

    shutil.copytree(root, dest, symlinks=True, ignore=ignore)


def _sweep_scratch(envs: Path) -> None:
    """Remove build copies left by a process that was killed (older than any build can take)."""
    for stale in envs.glob(".build-*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 6 * 3600:
                shutil.rmtree(stale, ignore_errors=True)


def _uses_scm_version(root: Path) -> bool:
    """Whether the build takes its version from git (setuptools-scm, hatch-vcs, ...)."""
    for name in ("pyproject.toml", "setup.cfg", "setup.py"):
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"setuptools[-_]scm|hatch[-_]vcs|use_scm_version|versioningit|pdm\.backend.*scm", text):
                return True
    return False


@dataclass(frozen=True, slots=True)
class _Attempt:
    label: str
    args: tuple[str, ...]


def _unpin_own(build_root: Path, files: tuple[str, ...], names: set[str]) -> list[str]:
    """Drop, from the scratch copies of the requirement files (and the files they include), the
    lines that pin a package regrow installs itself: coverage (it must be regrow's own version,
    whose data regrow reads) and the project under test (a lock file pinning an older release of
    it cannot be installed beside it). Returns the lines dropped."""
    dropped: list[str] = []
    todo, seen = [build_root / rel for rel in files], set()
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            bare = line.split(" #", 1)[0].strip()
            include = re.match(r"^-[rc]\s*(\S+)|^--(?:requirement|constraint)[=\s]+(\S+)", bare)
            if include:
                todo.append(path.parent / (include.group(1) or include.group(2)))
            try:
                name = canonicalize_name(Requirement(bare).name) if bare and not bare.startswith("-") else None
            except InvalidRequirement:
                name = None
            if name in names:
                dropped.append(bare)
                continue
            kept.append(line)
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dropped


def _attempts(target: str | None, requirements: TestRequirements, build_root: Path) -> list[_Attempt]:
    """The install commands to try, from everything down to the bare package with pytest."""
    tools = (*requirements.fallback, *requirements.plugins, coverage_requirement())

    def package(extras: tuple[str, ...]) -> tuple[str, ...]:
        if target is None:
            return ()
        return (f"{target}[{','.join(extras)}]",) if extras else (target,)

    files = tuple(a for rel in requirements.requirement_files for a in ("-r", str(build_root / rel)))
    full = _Attempt("everything", (*package(requirements.extras), *requirements.group_requirements,
                                   *files, *requirements.tox_deps, *tools))
    best = _Attempt(f"only the extra {requirements.extras[0]!r}" if requirements.extras else "",
                    (*package(requirements.extras[:1]), *tools))
    bare = _Attempt("the bare package" if target else "the test tools alone", (*package(()), *tools))
    out: list[_Attempt] = []
    for attempt in (full, best, bare):
        if attempt.label and all(attempt.args != o.args for o in out):
            out.append(attempt)
    return out


def _build(source: Source, requirements: TestRequirements, env_dir: Path, home: Path,
           say: Callable[[str], None]) -> None:
    started = time.monotonic()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"env-{env_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    say(f"creating a virtual environment for {source.name} at {env_dir}")
    code, output = _run_logged([sys.executable, "-m", "venv", str(env_dir)], log_file=log_file,
                               timeout=VENV_TIMEOUT_S)
    if code != 0:
        shutil.rmtree(env_dir, ignore_errors=True)
        raise InstallError(f"could not create a virtual environment at {env_dir}:\n"
                           f"{pip_error_summary(output) or 'timed out'}\n(full log: {log_file})")
    env_python = env_dir / "bin" / "python"
    installable = _is_installable(source.root)
    _sweep_scratch(env_dir.parent)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=env_dir.parent))
    try:
        build_root = scratch / "src"
        _copy_for_build(source.root, build_root, leave_out=(home, scratch))
        extra_env: dict[str, str] = {}
        if installable and not (source.root / "PKG-INFO").is_file() and _uses_scm_version(source.root):
            # The scratch copy has no .git to take a version from.
            pretend = source.version or "0.0.0"
            extra_env["SETUPTOOLS_SCM_PRETEND_VERSION"] = pretend
            extra_env[f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{re.sub(r'[^A-Z0-9]+', '_', source.name.upper())}"] = pretend
        target = str(build_root) if installable else None
        dropped = _unpin_own(build_root, requirements.requirement_files, {"coverage", canonicalize_name(source.name)})
        if dropped:
            say(f"left out of the requirement files (regrow installs these itself): {', '.join(dropped)}")
        attempts = _attempts(target, requirements, build_root)
        failure = ""
        for number, attempt in enumerate(attempts, 1):
            say(f"installing {attempt.label} into the environment (attempt {number} of {len(attempts)})")
            cmd = [str(env_python), "-m", "pip", "install", "--progress-bar", "off", *attempt.args]
            code, output = _run_logged(cmd, log_file=log_file, timeout=INSTALL_TIMEOUT_S, cwd=build_root,
                                       env=_subprocess_env(extra_env))
            if code == 0:
                break
            failure = (f"pip took more than {INSTALL_TIMEOUT_S} s" if code is None
                       else pip_error_summary(output) or f"pip exited with status {code}")
            say(f"installing {attempt.label} failed: {failure.splitlines()[-1]}")
        else:
            shutil.rmtree(env_dir, ignore_errors=True)
            hint = ""
            if "requires a different Python" in failure:
                hint = "\n(the project does not support this Python; give an interpreter it supports with --python)"
            raise InstallError(f"could not install {source.name} into a new environment:\n{failure}{hint}\n"
                               f"(full pip output: {log_file})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    _, frozen = _run_logged([str(env_python), "-m", "pip", "list", "--format=freeze"], log_file=log_file,
                            timeout=CHECK_TIMEOUT_S)
    seconds = round(time.monotonic() - started, 1)
    marker = {
        "format": ENV_FORMAT,
        "python": str(env_python),
        "python_version": sys.version.split()[0],
        "source": {"name": source.name, "version": source.version, "key": source.key, "root": str(source.root)},
        "attempt": attempt.label,
        "degraded": number > 1,
        "pip_args": [a.replace(str(build_root), "<source>") for a in attempt.args],
        "requirements": asdict(requirements),
        "installed": [ln for ln in frozen.splitlines() if ln and not ln.startswith(("#", "$"))],
        "seconds": seconds,
        "log": str(log_file),
    }
    tmp = env_dir / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, env_dir / MARKER)
    say(f"environment ready in {seconds:.1f} s" + (f" (installed {attempt.label})" if number > 1 else ""))


# --------------------------------------------------------------------------- a user's interpreter

_PROBE = """
import importlib.metadata, importlib.util, json, sys
found = {}
for name in ("pytest", "coverage"):
    try:
        found[name] = importlib.metadata.version(name) if importlib.util.find_spec(name) else None
    except importlib.metadata.PackageNotFoundError:
        found[name] = "?"
print(json.dumps({"version": sys.version.split()[0], "found": found}))
"""


def _check_user_python(python: Path, requirements: TestRequirements, say: Callable[[str], None]) -> Environment:
    if os.sep not in str(python) and not python.exists():
        located = shutil.which(str(python))
        if located is None:
            raise InstallError(f"no interpreter named {python} on PATH")
        python = Path(located)
    python = python.expanduser().absolute()  # not resolved: a venv's python is a symlink that must stay one
    try:
        done = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S, env=_subprocess_env(), check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"cannot run the interpreter {python}: {exc}") from None
    try:
        probe = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        reason = " / ".join(detail) or f"exit status {done.returncode}"
        raise InstallError(f"cannot run the interpreter {python}: {reason}") from None
    found = probe["found"]
    missing = [name for name in ("pytest", "coverage") if not found.get(name)]
    if missing:
        wanted = ["pytest" if name == "pytest" else coverage_requirement() for name in missing]
        command = shlex.join([str(python), "-m", "pip", "install", *wanted])
        raise InstallError(f"{python} cannot import {' and '.join(missing)}, which regrow needs to run the tests; "
                           f"install with:\n  {command}")
    ours = coverage_requirement().partition("==")[2]
    if ours and found["coverage"] not in (ours, "?") and found["coverage"].split(".")[0] != ours.split(".")[0]:
        say(f"warning: {python} has coverage {found['coverage']}, regrow has {ours}; "
            f"if test mapping fails, install coverage=={ours} there")
    say(f"using {python} (Python {probe['version']}, pytest {found['pytest']}, coverage {found['coverage']})")
    return Environment(python, None, False, requirements)
