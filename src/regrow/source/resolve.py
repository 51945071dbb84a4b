"""Where the code comes from: a local directory, or a source distribution from the package index.

``resolve_source(spec, home=...)`` turns what the user typed into a `Source`:

* a path (absolute, relative or ``~``-prefixed) names a directory holding Python code; it is used
  in place, never copied or written to here;
* ``pypi:NAME`` or ``pypi:NAME==VERSION`` names a project on the configured package index. Its
  *source distribution* (the sdist carries the tests; wheels usually do not) is fetched with the
  regrow process's own ``pip`` (so the user's pip configuration, index and certificates apply),
  kept under ``home/downloads/`` and unpacked under ``home/sources/NAME-VERSION/``.

Caching of index sources, so that a repeated resolve never touches the network:

* the unpacked tree appears under its final name only by an atomic rename, so a directory found
  there is always complete (an interrupted unpack leaves only a ``.tmp-*`` directory, removed by
  the next attempt);
* ``pypi:NAME==VERSION`` is a cache hit when that version is unpacked, or when its sdist was
  downloaded (then it is unpacked again, offline);
* ``pypi:NAME`` asks the index once, takes the newest sdist and remembers that version in
  ``home/downloads/NAME/latest``; later resolves reuse it. Delete that file (or pin a version) to
  move on to a newer release. Resolving once is deliberate: a run must not change its code under
  the user's feet because the index moved.

``pip download`` cannot fetch an sdist without preparing its metadata (pypa/pip#1884): it runs the
project's build backend in pip's isolated build environment, a subprocess. The target's code thus
never runs in the regrow process, but a project whose metadata cannot be built cannot be fetched;
the error says so.

The content key (`content_key`) is a short hash of every Python file and configuration file that
counts (`iter_python_files` and friends decide which); other modules use it to tell whether
anything they computed from a tree is stale.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from regrow.core import pyast
from regrow.errors import SourceError

__all__ = [
    "Source",
    "resolve_source",
    "content_key",
    "iter_python_files",
    "iter_source_files",
    "is_skipped_dir",
    "pip_error_summary",
    "project_metadata",
    "detect_import_roots",
    "SKIPPED_DIRS",
]

# Directories that never hold the project's own code: VCS data, caches, environments, build output.
SKIPPED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".regrow", ".venv", "venv", "build", "dist", ".tox", ".nox",
    "__pycache__", "node_modules", "site-packages", ".eggs", ".pytest_cache", ".mypy_cache",
    ".ruff_cache", ".hypothesis",
})

# Files besides ``*.py`` whose content changes what the tests do or what gets installed.
CONFIG_FILES = frozenset({
    "pyproject.toml", "setup.cfg", "tox.ini", "pytest.ini", ".coveragerc", "noxfile.py",
    "MANIFEST.in", "PKG-INFO",
})
_REQUIREMENTS_FILE = re.compile(r"(^|.*[-_.])requirements?([-_.].*)?\.(txt|in)$", re.IGNORECASE)

MAX_FILE_BYTES = 2 * 1024 * 1024
KEY_CHARS = 16

DOWNLOAD_TIMEOUT_S = 900  # pip may have to install the build backend to prepare metadata
GIT_TIMEOUT_S = 20

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Source:
    """A tree of Python code regrow works on. ``root`` is never written to by this module."""

    spec: str  # as the user gave it
    kind: str  # "local" | "pypi"
    root: Path  # absolute directory holding the code (the user's dir, or the unpacked sdist)
    name: str  # project name (pyproject / setup.cfg / PKG-INFO / setup.py, else the dir name)
    version: str | None
    import_roots: tuple[str, ...]  # dirs relative to root to put first on sys.path
    key: str  # content key, see `content_key`
    git_rev: str | None  # ``git rev-parse HEAD`` when root is in a git work tree, else None
    skipped: tuple[tuple[str, str], ...] = ()  # (relpath, reason) for files left out of the key


# --------------------------------------------------------------------------- which files count


def is_skipped_dir(path: Path) -> bool:
    """Whether a directory is left out of everything regrow reads (by name, or being a venv)."""
    name = path.name
    if name in SKIPPED_DIRS or name.endswith(".egg-info"):
        return True
    return (path / "pyvenv.cfg").is_file()  # a virtual environment under any name


def _walk(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` outside skipped directories, in a stable order.

    Symbolic links are not followed: a link could lead out of the tree or into a loop.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not is_skipped_dir(here / d))
        for name in sorted(filenames):
            path = here / name
            if not path.is_symlink() and path.is_file():
                yield path


def iter_python_files(root: Path) -> Iterator[Path]:
    """The ``*.py`` files of a tree that count as the project's code and tests, in a stable order.

    This is the one place that decides which files count; see `SKIPPED_DIRS` and `is_skipped_dir`.
    """
    for path in _walk(Path(root)):
        if path.suffix == ".py":
            yield path


def _is_config_file(path: Path, root: Path) -> bool:
    if path.name in CONFIG_FILES:
        return True
    rel = path.relative_to(root).parts
    if _REQUIREMENTS_FILE.match(path.name):
        return True
    return len(rel) >= 2 and rel[-2] == "requirements" and path.suffix in {".txt", ".in"}


def iter_source_files(root: Path) -> Iterator[Path]:
    """The files the content key covers: `iter_python_files` plus configuration files."""
    root = Path(root)
    for path in _walk(root):
        if path.suffix == ".py" or _is_config_file(path, root):
            yield path


def _skip_reason(data: bytes) -> str | None:
    if len(data) > MAX_FILE_BYTES:
        return f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
    if b"\0" in data:
        return "binary (contains NUL bytes)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    return None


def content_key(root: Path) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A short hash over the tree's Python and configuration files, and the files left out.

    The key is ``sha256`` over the sorted ``(relpath, sha256(bytes))`` pairs, hex, first 16
    characters. A file that is too big (> 2 MB), binary or not UTF-8 is left out of the key and
    listed with its reason, since no later step can read it as source either.
    """
    root = Path(root)
    entries: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for path in iter_source_files(root):
        rel = path.relative_to(root).as_posix()
        if path.stat().st_size > MAX_FILE_BYTES:
            skipped.append((rel, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"))
            continue
        data = path.read_bytes()
        reason = _skip_reason(data)
        if reason:
            skipped.append((rel, reason))
        else:
            entries.append((rel, hashlib.sha256(data).hexdigest()))
    digest = hashlib.sha256()
    for rel, file_hash in sorted(entries):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return digest.hexdigest()[:KEY_CHARS], tuple(sorted(skipped))


# --------------------------------------------------------------------------- facts about a tree


def read_toml(path: Path) -> dict:
    """A TOML file's table, or {} when it is missing or unreadable."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def read_cfg(path: Path) -> configparser.ConfigParser:
    """An INI file (setup.cfg, tox.ini), or an empty parser when it is missing or unreadable."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return configparser.ConfigParser(interpolation=None)
    return parser


def _pkg_info(root: Path) -> tuple[str | None, str | None]:
    path = root / "PKG-INFO"
    if not path.is_file():
        return None, None
    try:
        headers = HeaderParser().parsestr(path.read_text(encoding="utf-8", errors="replace"))
    except Exception:  # noqa: BLE001 - a malformed PKG-INFO is just no information
        return None, None
    return headers.get("Name"), headers.get("Version")


def _setup_py_literals(root: Path) -> tuple[str | None, str | None]:
    """``name=`` and ``version=`` of a ``setup(...)`` call, when they are string literals."""
    path = root / "setup.py"
    if not path.is_file():
        return None, None
    try:
        tree = pyast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None, None
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup":
            for kw in node.keywords:
                if kw.arg in ("name", "version") and isinstance(getattr(kw.value, "value", None), str):
                    found[kw.arg] = kw.value.value
    return found.get("name"), found.get("version")


def project_metadata(root: Path) -> tuple[str, str | None]:
    """(name, version) of the project in ``root``.

    Order: ``pyproject.toml [project]``, ``setup.cfg [metadata]``, ``PKG-INFO``, literal
    arguments of ``setup()`` in ``setup.py``; the name falls back to the directory's name. A
    dynamic version (``attr:``, ``dynamic = ["version"]``) is taken from PKG-INFO when there is
    one, else it is None.
    """
    root = Path(root)
    names: list[str | None] = []
    versions: list[str | None] = []
    project = read_toml(root / "pyproject.toml").get("project", {})
    if isinstance(project, dict):
        names.append(project.get("name") if isinstance(project.get("name"), str) else None)
        versions.append(project.get("version") if isinstance(project.get("version"), str) else None)
    cfg = read_cfg(root / "setup.cfg")
    if cfg.has_section("metadata"):
        names.append(cfg.get("metadata", "name", fallback=None))
        version = cfg.get("metadata", "version", fallback=None)
        versions.append(None if version is None or ":" in version else version.strip())
    for name, version in (_pkg_info(root), _setup_py_literals(root)):
        names.append(name)
        versions.append(version)
    name = next((n.strip() for n in names if n and n.strip()), None) or root.name
    version = next((v.strip() for v in versions if v and v.strip()), None)
    return name, version


def _has_python(directory: Path) -> bool:
    for entry in directory.iterdir():
        if entry.is_file() and entry.suffix == ".py":
            return True
        if entry.is_dir() and not is_skipped_dir(entry) and any(entry.glob("*.py")):
            return True  # a package, or a namespace package
    return False


def detect_import_roots(root: Path) -> tuple[str, ...]:
    """The directories (relative to ``root``) to put first on ``sys.path`` to import the project.

    A ``package-dir`` declared for setuptools (``[tool.setuptools] package-dir = {"" = "lib"}``
    or ``setup.cfg [options] package_dir = =lib``) wins; then the ``src`` layout (``src/``
    holding a package or a module); anything else is a flat layout, ``(".",)``.
    """
    root = Path(root)
    declared: str | None = None
    tool = read_toml(root / "pyproject.toml").get("tool", {})
    package_dir = tool.get("setuptools", {}).get("package-dir", {}) if isinstance(tool, dict) else {}
    if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
        declared = package_dir[""]
    else:
        cfg = read_cfg(root / "setup.cfg")
        raw = cfg.get("options", "package_dir", fallback="")
        for line in raw.replace(";", "\n").splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip() and value.strip():
                declared = value.strip()
    if declared:
        declared = declared.strip("/") or "."
        if declared == "." or ((root / declared).is_dir() and ".." not in Path(declared).parts):
            return (declared,)
    src = root / "src"
    if src.is_dir() and _has_python(src):
        return ("src",)
    return (".",)


def _git_rev(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    rev = done.stdout.strip()
    return rev if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", rev) else None


def _describe(spec: str, kind: str, root: Path, *, name: str | None = None,
              version: str | None = None, git: bool) -> Source:
    if not any(iter_python_files(root)):
        raise SourceError(f"no Python files in {root}")
    meta_name, meta_version = project_metadata(root)
    key, skipped = content_key(root)
    return Source(
        spec=spec,
        kind=kind,
        root=root,
        name=name or meta_name,
        version=version or meta_version,
        import_roots=detect_import_roots(root),
        key=key,
        git_rev=_git_rev(root) if git else None,
        skipped=skipped,
    )


# --------------------------------------------------------------------------- resolving a spec


def resolve_source(spec: str, *, home: Path) -> Source:
    """Turn a user's source spec into a `Source`; ``home`` holds downloads and unpacked sdists.

    Raises `SourceError` for a missing directory, a tree with no Python files, or a package the
    index does not have.
    """
    text = spec.strip()
    if text.startswith("pypi:"):
        return _resolve_pypi(spec, text[len("pypi:"):], Path(home))
    path = Path(os.path.expanduser(text))
    if not path.exists():
        scheme = re.match(r"^([a-z][a-z0-9+.-]*):(?!/)", text)
        if scheme and scheme.group(1) != "file":
            raise SourceError(f"unknown source kind {scheme.group(1)!r} in {spec!r}: "
                              "give a directory or pypi:NAME[==VERSION]")
        raise SourceError(f"no such directory: {path}")
    if not path.is_dir():
        raise SourceError(f"not a directory: {path}")
    return _describe(spec, "local", path.resolve(), git=True)


def _parse_pypi(spec: str, rest: str) -> tuple[str, str | None]:
    name, sep, version = rest.partition("==")
    name, version = name.strip(), version.strip()
    if not _NAME.match(name) or (sep and not version):
        raise SourceError(f"bad package spec {spec!r}: expected pypi:NAME or pypi:NAME==VERSION")
    if version:
        try:
            Version(version)
        except InvalidVersion:
            raise SourceError(f"bad version {version!r} in {spec!r}") from None
    return name, version or None


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _resolve_pypi(spec: str, rest: str, home: Path) -> Source:
    name, wanted = _parse_pypi(spec, rest)
    norm = canonicalize_name(name)
    downloads = home / "downloads" / norm
    latest = downloads / "latest"
    if wanted is None and latest.is_file():
        wanted = latest.read_text(encoding="utf-8").strip() or None
    sdist = _cached_sdist(downloads, wanted) if wanted else None
    if sdist is None:
        try:
            sdist = _download_sdist(name, wanted, downloads, home / "logs")
        except SourceError:
            with contextlib.suppress(OSError):
                downloads.rmdir()  # only when empty: nothing was ever downloaded for this name
            raise
        if wanted is None:
            _write_atomic(latest, sdist.parent.name + "\n")
    root = home / "sources" / f"{norm}-{sdist.parent.name}"
    if not root.is_dir():
        _unpack(sdist, root)
    pkg_name, pkg_version = _pkg_info(root)
    return _describe(spec, "pypi", root.resolve(), name=pkg_name or name,
                     version=pkg_version or sdist.parent.name, git=False)


def _cached_sdist(downloads: Path, version: str) -> Path | None:
    if not downloads.is_dir():
        return None
    for entry in sorted(downloads.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and _same_version(entry.name, version):
            files = [f for f in entry.iterdir() if f.is_file()]
            if len(files) == 1:
                return files[0]
    return None


_SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def _filename_version(sdist: Path) -> str:
    """The version in an sdist's file name (``Name-1.2.tar.gz`` gives ``1.2``)."""
    stem = sdist.name
    for suffix in _SDIST_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem.rpartition("-")[2]


def _download_sdist(name: str, version: str | None, downloads: Path, logs: Path) -> Path:
    """Fetch the sdist of ``name`` (``==version`` when given) into ``downloads/VERSION/``."""
    downloads.mkdir(parents=True, exist_ok=True)
    requirement = f"{name}=={version}" if version else name
    with tempfile.TemporaryDirectory(prefix=".tmp-", dir=downloads) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name,
            "--disable-pip-version-check", "--no-input", "-d", tmp, requirement,
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_USER")}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S,
                                  env=env, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SourceError(f"downloading {requirement} took more than {DOWNLOAD_TIMEOUT_S} s") from None
        output = (done.stdout or "") + (done.stderr or "")
        files = [f for f in Path(tmp).iterdir() if f.is_file() and f.name.lower().endswith(_SDIST_SUFFIXES)]
        if done.returncode != 0 or len(files) != 1:
            log = _save_log(logs, f"download-{canonicalize_name(name)}", cmd, output)
            summary = pip_error_summary(output) or f"pip exited with status {done.returncode}"
            raise SourceError(f"could not download the source distribution of {requirement}:\n"
                              f"{summary}\n(full pip output: {log})")
        got = files[0]
        got_version = _filename_version(got)
        target_dir = downloads / got_version
        if not target_dir.is_dir():
            staging = Path(tmp) / ".staged"
            staging.mkdir()
            os.replace(got, staging / got.name)
            try:
                os.replace(staging, target_dir)
            except OSError:
                if not target_dir.is_dir():  # not a concurrent download of the same file
                    raise
    sdist = _cached_sdist(downloads, got_version)
    if sdist is None:
        raise SourceError(f"downloaded {got.name} but could not keep it in {downloads}")
    return sdist


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _save_log(logs: Path, stem: str, cmd: list[str], output: str) -> Path:
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text("$ " + " ".join(cmd) + "\n" + output, encoding="utf-8")
    return path


def _unpack(archive: Path, target: Path) -> None:
    """Unpack an sdist so that ``target`` holds its single top directory's contents.

    Unpacking happens in a temporary sibling that is renamed into place at the end, so a
    ``target`` that exists is complete. Members that would land outside the directory (absolute
    paths, ``..``, links pointing out) are refused.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        if stale.is_dir() and time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted unpack
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        try:
            if archive.name.lower().endswith(".zip"):
                _unzip(archive, tmp)
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(tmp, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError) as exc:
            raise SourceError(f"could not unpack {archive}: {exc}") from exc
        entries = list(tmp.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        try:
            os.replace(top, target)
        except OSError:
            if not target.is_dir():  # else another process unpacked it first: theirs is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unzip(archive: Path, dest: Path) -> None:
    base = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            out = (base / info.filename).resolve()
            if info.filename.startswith(("/", "\\")) or not out.is_relative_to(base):
                raise SourceError(f"refusing to unpack {archive}: member {info.filename!r} lands outside")
        zf.extractall(base)


# --------------------------------------------------------------------------- pip's errors


_PIP_ERROR = re.compile(r"^(ERROR:|error:|×)")
_PIP_BLOCK = re.compile(r"^╰─> \[\d+ lines? of output\]")
_PIP_CHATTER = re.compile(
    r"^(WARNING:|DEPRECATION:|note:|hint:|\[notice\]|│|╰─>|Looking in|Collecting|Downloading|"
    r"Obtaining|Processing|Installing|Getting requirements|Preparing metadata|Building|Created wheel|"
    r"Stored in|Requirement already|Using cached|Saved|Successfully|Attempting|Found existing|"
    r"Uninstalling|Running|━|To fix this|\d+\. )"
)


def pip_error_summary(output: str, *, max_lines: int = 15) -> str:
    """A short account of why pip failed, for an error message; the full output goes to a log.

    Keeps pip's ``ERROR:`` lines, the ``error:`` / ``×`` lines of a failed build with the last
    lines of the build's own output (where its exception is), the explanation of a dependency
    conflict, and, when no build output explains an ``ERROR:``, up to three lines before it.
    Progress chatter, warnings and hints are dropped; at most ``max_lines`` lines, the last ones.
    """
    lines = [line.strip() for line in output.splitlines()]
    picked: list[str] = []

    def keep(line: str) -> None:
        if line and line not in picked:
            picked.append(line)

    block: list[str] | None = None
    in_conflict = False
    for i, line in enumerate(lines):
        if block is not None:
            if line == "[end of output]":
                for kept in [b for b in block if b.strip("^~ ")][-3:]:
                    keep(kept)
                block = None
            else:
                block.append(line)
            continue
        if _PIP_BLOCK.match(line):
            block = []
        elif _PIP_ERROR.match(line):
            if line.startswith("ERROR:") and not picked:
                before = [b for b in lines[max(0, i - 6): i] if b and not _PIP_CHATTER.match(b)]
                for kept in before[-3:]:
                    keep(kept)
            keep(line)
            in_conflict = False
        elif line.startswith("The conflict is caused by"):
            in_conflict = True
            keep(line)
        elif in_conflict and line and not _PIP_CHATTER.match(line):
            keep(line)
        elif not line:
            in_conflict = False
    if not picked:
        picked = [ln for ln in lines if ln and not _PIP_CHATTER.match(ln)] or [ln for ln in lines if ln]
    return "\n".join(picked[-max_lines:])
