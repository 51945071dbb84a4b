"""Tests for regrow.source.resolve: local trees, content keys, and sdists from the package index."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _repos import git_init, make_file, make_repo

from regrow.errors import SourceError
from regrow.source.resolve import (
    Source,
    content_key,
    detect_import_roots,
    iter_python_files,
    pip_error_summary,
    project_metadata,
    resolve_source,
)

FLAT = {
    "pyproject.toml": """
        [project]
        name = "flatpkg"
        version = "1.2.3"
    """,
    "flatpkg/__init__.py": "def add(a, b):\n    return a + b\n",
    "tests/test_add.py": "from flatpkg import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}

SRC = {
    "setup.cfg": """
        [metadata]
        name = srcpkg
        version = attr: srcpkg.__version__
    """,
    "setup.py": "from setuptools import setup\nsetup()\n",
    "src/srcpkg/__init__.py": "__version__ = '0.1'\n",
    "tests/test_it.py": "def test_it():\n    pass\n",
}


def test_a_local_directory_resolves_to_its_metadata_and_layout(tmp_path):
    root = make_repo(tmp_path / "repo", FLAT)
    source = resolve_source(str(root), home=tmp_path / "home")
    assert source == Source(
        spec=str(root), kind="local", root=root.resolve(), name="flatpkg", version="1.2.3",
        import_roots=(".",), key=content_key(root)[0], git_rev=None, skipped=(),
    )
    assert len(source.key) == 16
    assert not (tmp_path / "home").exists()  # a local source writes nothing


def test_a_src_layout_is_detected_and_a_dynamic_version_is_unknown(tmp_path):
    source = resolve_source(str(make_repo(tmp_path / "repo", SRC)), home=tmp_path / "home")
    assert source.import_roots == ("src",)
    assert (source.name, source.version) == ("srcpkg", None)


def test_a_src_dir_with_a_lone_module_is_a_src_layout(tmp_path):
    root = make_repo(tmp_path, {"src/mod.py": "x = 1\n", "test_mod.py": ""})
    assert detect_import_roots(root) == ("src",)


def test_a_declared_package_dir_wins_over_guessing(tmp_path):
    root = make_repo(tmp_path, {
        "pyproject.toml": '[tool.setuptools]\npackage-dir = {"" = "lib"}\n',
        "lib/pkg/__init__.py": "",
        "src/other.py": "",
    })
    assert detect_import_roots(root) == ("lib",)


def test_an_empty_src_dir_does_not_make_a_src_layout(tmp_path):
    root = make_repo(tmp_path, {"src/README": "docs", "pkg/__init__.py": ""})
    assert detect_import_roots(root) == (".",)


def test_the_name_falls_back_to_setup_py_literals_then_the_directory(tmp_path):
    a = make_repo(tmp_path / "a", {"setup.py": "from setuptools import setup\nsetup(name='lit', version='2.0')\n"})
    b = make_repo(tmp_path / "plain-dir", {"m.py": ""})
    assert project_metadata(a) == ("lit", "2.0")
    assert project_metadata(b) == ("plain-dir", None)


def test_relative_and_home_paths_are_expanded(tmp_path, monkeypatch):
    root = make_repo(tmp_path / "repo", FLAT)
    monkeypatch.chdir(tmp_path)
    assert resolve_source("repo", home=tmp_path / "h").root == root.resolve()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_source("~/repo", home=tmp_path / "h").root == root.resolve()


def test_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no such directory: .*nowhere"):
        resolve_source(str(tmp_path / "nowhere"), home=tmp_path / "home")


def test_a_file_is_not_a_source(tmp_path):
    with pytest.raises(SourceError, match="not a directory"):
        resolve_source(str(make_file(tmp_path, "x.py", "")), home=tmp_path / "home")


def test_a_directory_without_python_files_is_a_clear_error(tmp_path):
    root = make_repo(tmp_path / "empty", {"README.md": "hi", ".venv/lib/x.py": "", "build/lib/y.py": ""})
    with pytest.raises(SourceError, match="no Python files in .*empty"):
        resolve_source(str(root), home=tmp_path / "home")


def test_an_unknown_scheme_is_not_mistaken_for_a_path(tmp_path):
    with pytest.raises(SourceError, match="unknown source kind 'gh'"):
        resolve_source("gh:owner/repo", home=tmp_path)


@pytest.mark.parametrize("spec", ["pypi:", "pypi:bad name", "pypi:toolz==", "pypi:toolz==not a version"])
def test_a_malformed_package_spec_is_refused_before_any_download(tmp_path, spec):
    with pytest.raises(SourceError, match="bad"):
        resolve_source(spec, home=tmp_path)
    assert not (tmp_path / "downloads").exists()


def test_a_git_work_tree_reports_its_revision(tmp_path):
    root = make_repo(tmp_path / "repo", FLAT)
    rev = git_init(root)
    assert resolve_source(str(root), home=tmp_path / "h").git_rev == rev


def test_skipped_directories_hold_no_files_that_count(tmp_path):
    root = make_repo(tmp_path, {
        "pkg/mod.py": "",
        **{f"{d}/x.py": "" for d in (".git", ".regrow", ".venv", "venv", "build", "dist", ".tox", ".nox",
                                       "__pycache__", "node_modules", "pkg.egg-info", "lib/site-packages")},
        "myenv/pyvenv.cfg": "home = /usr/bin\n",
        "myenv/lib/y.py": "",
    })
    assert [p.relative_to(root).as_posix() for p in iter_python_files(root)] == ["pkg/mod.py"]


def test_the_key_changes_with_a_python_file_and_not_with_an_ignored_dir(tmp_path):
    root = make_repo(tmp_path, FLAT)
    key, _ = content_key(root)
    make_file(root, "build/lib/flatpkg/__init__.py", "changed = True\n")
    make_file(root, "flatpkg/__pycache__/junk.py", "x = 1\n")
    make_file(root, "notes.md", "not code")
    assert content_key(root)[0] == key
    make_file(root, "flatpkg/__init__.py", "def add(a, b):\n    return b + a\n")
    assert content_key(root)[0] != key


def test_the_key_covers_configuration_files(tmp_path):
    root = make_repo(tmp_path, FLAT)
    key, _ = content_key(root)
    make_file(root, "requirements-test.txt", "pytest\n")
    with_reqs, _ = content_key(root)
    make_file(root, "tox.ini", "[testenv]\ndeps = pytest\n")
    assert len({key, with_reqs, content_key(root)[0]}) == 3


def test_the_key_does_not_depend_on_where_the_tree_lives(tmp_path):
    a = make_repo(tmp_path / "a", FLAT)
    b = make_repo(tmp_path / "b", FLAT)
    os.utime(b / "flatpkg/__init__.py", (0, 0))
    assert content_key(a) == content_key(b)


def test_unreadable_files_are_listed_as_skipped_and_left_out_of_the_key(tmp_path):
    root = make_repo(tmp_path, FLAT)
    key, _ = content_key(root)
    make_file(root, "latin1.py", "# caf\xe9\n".encode("latin-1"))
    make_file(root, "blob.py", b"x = 1\0\0\0")
    make_file(root, "huge.py", b"#" * (2 * 1024 * 1024 + 1))
    new_key, skipped = content_key(root)
    assert new_key == key
    assert skipped == (
        ("blob.py", "binary (contains NUL bytes)"),
        ("huge.py", "larger than 2 MB"),
        ("latin1.py", "not UTF-8"),
    )
    assert resolve_source(str(root), home=tmp_path / "h").skipped == skipped


def test_pip_errors_are_summarised_to_the_lines_that_explain_them():
    output = """\
Looking in indexes: https://index.invalid/simple
Processing /tmp/broken
  Getting requirements to build wheel: finished with status 'error'
  error: subprocess-exited-with-error

  × Getting requirements to build wheel did not run successfully.
  │ exit code: 1
  ╰─> [4 lines of output]
      Traceback (most recent call last):
        File "<string>", line 2, in <module>
                 ^^^^^^^^^^^^
      RuntimeError: this package refuses to build
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error

× Getting requirements to build wheel did not run successfully.
│ exit code: 1
╰─> See above for output.
"""
    assert pip_error_summary(output).splitlines() == [
        "error: subprocess-exited-with-error",
        "× Getting requirements to build wheel did not run successfully.",
        "Traceback (most recent call last):",
        'File "<string>", line 2, in <module>',
        "RuntimeError: this package refuses to build",
    ]


def test_a_dependency_conflict_summary_keeps_its_explanation():
    output = """\
Collecting foo==1.0
ERROR: Cannot install foo==1.0 and bar==2 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested bar==2
    foo 1.0 depends on bar<2

To fix this you could try to:
1. loosen the range of package versions you've specified

ERROR: ResolutionImpossible: for help visit somewhere
"""
    summary = pip_error_summary(output)
    assert "foo 1.0 depends on bar<2" in summary
    assert "Collecting" not in summary and "loosen" not in summary
    assert summary.splitlines()[-1].startswith("ERROR: ResolutionImpossible")


def test_a_summary_is_at_most_fifteen_lines():
    output = "\n".join(f"ERROR: problem {i}" for i in range(40))
    assert pip_error_summary(output).splitlines() == [f"ERROR: problem {i}" for i in range(25, 40)]


# --------------------------------------------------------------------------- the package index


@pytest.fixture(scope="session")
def toolz_home(tmp_path_factory) -> Path:
    """A home where ``pypi:toolz==1.0.0`` was resolved once (shared with tests/test_envs.py)."""
    home = tmp_path_factory.getbasetemp() / "toolz-home"
    resolve_source("pypi:toolz==1.0.0", home=home)
    return home


@pytest.mark.network
def test_an_sdist_is_downloaded_and_unpacked_once(toolz_home, monkeypatch):
    started = time.monotonic()
    # Any attempt to reach the index from here on fails: the resolve must be a cache hit.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(toolz_home / "nowhere"))
    source = resolve_source("pypi:toolz==1.0.0", home=toolz_home)
    assert time.monotonic() - started < 1.0
    assert (source.kind, source.name, source.version) == ("pypi", "toolz", "1.0.0")
    assert source.root == (toolz_home / "sources" / "toolz-1.0.0").resolve()
    assert (source.root / "toolz" / "__init__.py").is_file()
    assert (source.root / "toolz" / "tests").is_dir()  # the sdist carries the tests
    assert source.import_roots == (".",) and source.git_rev is None
    assert [p.name for p in (toolz_home / "downloads" / "toolz" / "1.0.0").iterdir()] == ["toolz-1.0.0.tar.gz"]
    assert not list((toolz_home / "sources").glob(".tmp-*"))


@pytest.mark.network
def test_a_deleted_unpack_is_redone_from_the_downloaded_sdist_offline(tmp_path, toolz_home, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(toolz_home / "downloads", home / "downloads")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    source = resolve_source("pypi:toolz==1.0", home=home)  # 1.0 == 1.0.0
    assert source.version == "1.0.0"
    assert (home / "sources" / "toolz-1.0.0" / "setup.py").is_file()


@pytest.mark.network
def test_an_unpinned_package_remembers_the_version_it_resolved(tmp_path, toolz_home, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(toolz_home / "downloads", home / "downloads")
    (home / "downloads" / "toolz" / "latest").write_text("1.0.0\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert resolve_source("pypi:toolz", home=home).version == "1.0.0"


@pytest.mark.network
def test_an_unknown_package_is_a_source_error_with_pips_reason(tmp_path):
    with pytest.raises(SourceError) as info:
        resolve_source("pypi:regrow-no-such-package-zzqx", home=tmp_path)
    message = str(info.value)
    assert "No matching distribution found for regrow-no-such-package-zzqx" in message
    assert "Traceback" not in message
    log = Path(message.rsplit("full pip output: ", 1)[1].rstrip(")"))
    assert log.is_file() and log.parent == tmp_path / "logs"
    assert not (tmp_path / "downloads" / "regrow-no-such-package-zzqx").exists()


@pytest.mark.network
def test_an_unknown_version_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="toolz==99.0"):
        resolve_source("pypi:toolz==99.0", home=tmp_path)
