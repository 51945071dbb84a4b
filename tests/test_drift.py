"""regrow.specialize.drift and corpus: churn from git history, the frozen-snapshot ladder, real release history."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from _repos import fixture_config, make_repo
from conftest import CALC_FILES, CALC_VALID
from regrow.errors import ConfigError
from regrow.specialize import corpus, drift


def git(root: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


def commit_at(root: Path, date: str, message: str) -> str:
    """Commit everything in ``root`` with author and committer date ``date`` (ISO, UTC)."""
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    stamp = f"{date}T12:00:00+00:00"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message, env=env)
    return git(root, "rev-parse", "HEAD").strip()


def numstat(root: Path, a: str, b: str) -> int:
    """Lines added + deleted in the package's code between two commits (plain ``git diff``)."""
    total = 0
    for line in git(root, "diff", "--numstat", "-M", a, b).splitlines():
        added, deleted, path = line.split("\t")
        path = path.split(" => ")[-1]
        if drift.is_package_code(path):
            total += int(added) + int(deleted)
    return total


def lines_of(root: Path, rev: str) -> int:
    names = git(root, "ls-tree", "-r", "--name-only", rev).split()
    return sum(len(git(root, "show", f"{rev}:{n}").splitlines()) for n in names if drift.is_package_code(n))


MODULE = '''
    """A module."""


    def double(x):
        y = x * 2
        return y


    def label(name):
        text = "item: " + name
        return text.upper()
'''


def test_package_code_leaves_out_tests_docs_and_setup():
    assert drift.is_package_code("src/pkg/core.py") and drift.is_package_code("pkg/__init__.py")
    for path in ("tests/test_core.py", "pkg/tests/helpers.py", "test_six.py", "conftest.py", "setup.py",
                 "docs/conf.py", "pkg/core_test.py", "README.md", ".github/x.py"):
        assert not drift.is_package_code(path), path


def test_churn_counts_months_bursts_and_names_reformats_and_renames(tmp_path):
    root = make_repo(tmp_path / "pkg", {"pkg/__init__.py": "", "pkg/mod.py": MODULE,
                                        "tests/test_mod.py": "from pkg.mod import double\n"})
    revs = [commit_at(root, "2024-01-15", "import")]
    (root / "pkg" / "mod.py").write_text((root / "pkg" / "mod.py").read_text().replace("y = x * 2", "y = x + x"))
    revs.append(commit_at(root, "2024-02-10", "double by adding"))
    (root / "pkg" / "extra.py").write_text("def triple(x):\n    return 3 * x\n")
    revs.append(commit_at(root, "2024-02-20", "add triple"))
    (root / "tests" / "test_mod.py").write_text("from pkg.mod import double, label\n")  # tests: not package code
    revs.append(commit_at(root, "2024-03-05", "test label"))
    text = (root / "pkg" / "mod.py").read_text()
    (root / "pkg" / "mod.py").write_text(text.replace('"item: "', "'item: '").replace("x + x", "x+x")
                                         .replace('"""A module."""', '"""A module."""  # formatted'))
    revs.append(commit_at(root, "2024-04-05", "reformat"))
    git(root, "mv", "pkg/extra.py", "pkg/more.py")
    revs.append(commit_at(root, "2024-06-01", "rename extra to more"))
    text = (root / "pkg" / "mod.py").read_text()
    moved = text[text.index("def label"):]
    (root / "pkg" / "mod.py").write_text(text.replace(moved, "").rstrip() + "\n")
    (root / "pkg" / "labels.py").write_text(moved)
    revs.append(commit_at(root, "2024-07-01", "move label to its own module"))

    rep = drift.churn(root)
    assert [m["month"] for m in rep.months] == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06",
                                                "2024-07"]
    by = {m["month"]: m for m in rep.months}
    assert by["2024-02"]["commits"] == 2 and by["2024-02"]["size"] == lines_of(root, revs[0])
    assert by["2024-02"]["added"] + by["2024-02"]["deleted"] == numstat(root, revs[0], revs[2])
    assert by["2024-02"]["churn"] == round(numstat(root, revs[0], revs[2]) / lines_of(root, revs[0]), 4)
    assert by["2024-03"]["commits"] == 1 and by["2024-03"]["churn"] == 0.0  # only a test changed
    assert by["2024-04"]["size"] == lines_of(root, revs[3])
    assert by["2024-04"]["added"] + by["2024-04"]["deleted"] == numstat(root, revs[3], revs[4])
    assert by["2024-05"]["commits"] == 0 and by["2024-06"]["added"] + by["2024-06"]["deleted"] == 0
    quiet = [m for m in rep.months if m["added"] + m["deleted"] == 0]
    assert rep.quiet_share == round(len(quiet) / 7, 4) and len(quiet) == 4  # Jan (the import), Mar, May, Jun
    assert by["2024-07"]["added"] + by["2024-07"]["deleted"] == numstat(root, revs[5], revs[6])
    churns = [m["churn"] for m in rep.months]
    assert rep.mean == pytest.approx(sum(churns) / 7, abs=1e-3) and rep.median == 0.0
    kinds = {b["subject"]: b["kind"] for b in rep.bursts}
    assert kinds == {"reformat": "reformat", "double by adding": "change", "add triple": "change",
                     "move label to its own module": "move"}
    assert rep.bursts[0]["share"] > 0 and rep.size_now == lines_of(root, revs[-1])
    renamed = drift.read_commits(root)[-2]
    assert renamed.renamed == 1 and drift.burst_kind(root, renamed) == "rename"
    assert {m["module"] for m in rep.modules} == {"pkg/mod.py", "pkg/extra.py", "pkg/labels.py"}
    assert drift.churn(root, months=2).months == rep.months[-2:]
    assert rep.to_dict()["format"] == "regrow-drift/1"


def test_drift_needs_git(tmp_path):
    make_repo(tmp_path / "plain", {"m.py": "x = 1\n"})
    with pytest.raises(ConfigError, match="not a git repository"):
        drift.churn(tmp_path / "plain")


def test_months_before_clamps_the_day():
    from datetime import datetime, timezone

    ts = int(datetime(2024, 3, 31, 12, tzinfo=timezone.utc).timestamp())
    back = datetime.fromtimestamp(drift.months_before(ts, 1), timezone.utc)
    assert (back.year, back.month, back.day) == (2024, 2, 29)
    back = datetime.fromtimestamp(drift.months_before(ts, 15), timezone.utc)
    assert (back.year, back.month, back.day) == (2022, 12, 31)


def _calc_history(root: Path) -> dict[str, str]:
    """The calc fixture with a history: a year-old version (clamp written otherwise, no scale), a
    two-month-old one (mean written otherwise), then today's."""
    files = {k: textwrap.dedent(v).lstrip("\n") for k, v in CALC_FILES.items()}
    old_ops = files["calc/ops.py"].replace(
        "    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n",
        "    low = max(x, lo)\n    return min(low, hi)\n")
    old_shapes = files["calc/shapes.py"].split("\n\n@overload")[0] + "\n"
    assert old_ops != files["calc/ops.py"] and "def scale" not in old_shapes
    make_repo(root, {**files, "calc/ops.py": old_ops, "calc/shapes.py": old_shapes})
    revs = {"old": commit_at(root, "2023-05-01", "old")}
    mid_ops = files["calc/ops.py"].replace("    total = sum(xs)\n    return total / len(xs)\n",
                                           "    n = len(xs)\n    return sum(xs) / n\n")
    assert mid_ops != files["calc/ops.py"]
    make_repo(root, {**files, "calc/ops.py": mid_ops})
    revs["mid"] = commit_at(root, "2024-03-20", "mean")
    make_repo(root, files)
    revs["head"] = commit_at(root, "2024-05-01", "today")
    return revs


@pytest.mark.slow
def test_the_frozen_snapshot_ladder_decays_with_age(tmp_path):
    root = tmp_path / "calc"
    revs = _calc_history(root)
    config = fixture_config(tmp_path / "home")
    rep = drift.decay(str(root), config, ages=(1, 6, 24))
    assert rep.head == revs["head"][:12] and rep.tasks == len(CALC_VALID)
    one, six, old = rep.rungs
    assert (one.months, one.revision, one.snapshot_date) == (1, revs["mid"][:12], "2024-03-20")
    assert one.missing == 0 and one.pass_at_1 == 1.0 and one.func_similarity < 1.0
    assert (six.months, six.revision, six.missing) == (6, revs["old"][:12], 1)  # scale did not exist
    assert six.pass_at_1 == (len(CALC_VALID) - 1) / len(CALC_VALID)
    assert six.func_similarity < one.func_similarity and six.age_days > one.age_days
    assert old.revision is None and old.pass_at_1 is None and "younger" in old.note
    data = rep.to_dict()
    assert data["format"] == "regrow-drift/1" and [r["months"] for r in data["rungs"]] == [1, 6, 24]
    # each rung is an ordinary stored run: `regrow report RUN` shows it
    from regrow.report.runs import build_report
    from regrow.store import Store
    stored = build_report(Store(config.home / "regrow.sqlite"), six.run_id)
    assert stored.solver == f"history@{revs['old']}" and stored.pass_at[1] == six.pass_at_1


# Releases of cachetools (pure Python, about 1,000 lines, its tests in the sdist) over two years.
CACHETOOLS = ("5.3.0", "5.3.3", "5.4.0", "5.5.0", "5.5.2")


@pytest.fixture(scope="module")
def cachetools_history(request, tmp_path_factory):
    downloads = Path(request.config.cache.mkdir("regrow-sdists"))
    root = tmp_path_factory.mktemp("real") / "cachetools"
    return corpus.release_history("cachetools", CACHETOOLS, root, downloads=downloads), downloads


@pytest.mark.network
def test_a_release_history_has_one_commit_per_release_dated_as_released(cachetools_history):
    root, downloads = cachetools_history
    log = git(root, "log", "--reverse", "--format=%H %at %ct %s").splitlines()
    assert [line.split()[4] for line in log] == list(CACHETOOLS)
    for line, version in zip(log, CACHETOOLS):
        rev, author, committer = line.split()[:3]
        archive = corpus.fetch_sdist("cachetools", version, downloads)  # cached: no second download
        with tarfile.open(archive) as tf:
            pkg_info = tf.getmember(f"cachetools-{version}/PKG-INFO")
        assert int(author) == int(committer) == int(pkg_info.mtime)
        assert git(root, "rev-parse", f"v{version}").strip() == rev
        assert "src/cachetools/__init__.py" in git(root, "ls-tree", "-r", "--name-only", rev)
        assert ".egg-info" not in git(root, "ls-tree", "-r", "--name-only", rev)
    times = [int(line.split()[1]) for line in log]
    assert times == sorted(times)
    # a second build from the same releases reuses the repository as it is
    head = git(root, "rev-parse", "HEAD")
    assert corpus.release_history("cachetools", CACHETOOLS, root, downloads=downloads) == root
    assert git(root, "rev-parse", "HEAD") == head


@pytest.mark.network
def test_churn_of_real_releases_matches_their_diffs(cachetools_history):
    root, _ = cachetools_history
    rep = drift.churn(root)
    tags = [f"v{v}" for v in CACHETOOLS]
    months = {m["month"]: m for m in rep.months}
    for before, after in zip(tags, tags[1:]):
        month = git(root, "log", "-1", "--format=%ad", "--date=format:%Y-%m", after).strip()
        assert months[month]["commits"] == 1
        assert months[month]["added"] + months[month]["deleted"] == numstat(root, before, after)
        assert months[month]["size"] == lines_of(root, before)
    assert len(rep.months) > len(CACHETOOLS) and 0 < rep.quiet_share < 1 and rep.mean > 0
    assert rep.median <= rep.mean  # bursts: most months are quiet
    assert rep.bursts and all(b["kind"] in {"change", "reformat", "rename", "move"} for b in rep.bursts)
    # 5.5.2 moved the decorators out of __init__.py into _decorators.py
    assert {b["subject"].split()[1]: b["kind"] for b in rep.bursts}["5.5.2"] == "move"


@pytest.mark.network
@pytest.mark.slow
def test_the_ladder_on_real_releases_uses_the_release_before_each_age(cachetools_history, tmp_path):
    root, _ = cachetools_history
    config = fixture_config(tmp_path / "home", tasks=6, repeats=1)
    rep = drift.decay(str(root), config, ages=(1, 12))
    for rung in rep.rungs:
        cutoff = drift.months_before(int(git(root, "log", "-1", "--format=%ct").strip()), rung.months)
        expected = [t for t in CACHETOOLS if int(git(root, "log", "-1", "--format=%ct", f"v{t}").strip()) <= cutoff]
        assert rung.revision == git(root, "rev-parse", f"v{expected[-1]}").strip()[:12]
        assert rung.tasks == 6 and 0 <= rung.missing <= 6 and rung.pass_at_1 is not None
        assert 0 <= rung.func_similarity <= 1 and rung.run_id
    assert rep.rungs[1].age_days > rep.rungs[0].age_days


def test_the_drift_command_prints_churn_and_writes_its_json(tmp_path):
    from typer.testing import CliRunner

    from regrow.cli import app

    root = make_repo(tmp_path / "pkg", {"pkg/__init__.py": "", "pkg/mod.py": MODULE})
    commit_at(root, "2024-01-15", "import")
    (root / "pkg" / "mod.py").write_text((root / "pkg" / "mod.py").read_text().replace("y = x * 2", "y = x + x"))
    commit_at(root, "2024-03-02", "double by adding")
    out = tmp_path / "drift.json"
    res = CliRunner().invoke(app, ["drift", str(root), "--churn-only", "-o", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "2024-02" in res.stdout and "double by adding" in res.stdout and "2-3 %/month" in res.stdout
    data = json.loads(out.read_text())
    assert data["format"] == "regrow-drift/1" and data["decay"] is None
    assert [m["month"] for m in data["churn"]["months"]] == ["2024-01", "2024-02", "2024-03"]
    res = CliRunner().invoke(app, ["drift", str(tmp_path), "--churn-only"])
    assert res.exit_code == 2 and "not a git repository" in res.output



@pytest.mark.slow
def test_with_a_model_each_snapshot_is_fine_tuned_on_its_own_files_and_run(tmp_path):
    from regrow.specialize.finetune import FinetuneOptions, read_manifest
    from _models import smollm2_tokenizer, tiny_base

    root = tmp_path / "calc"
    revs = _calc_history(root)
    base = tiny_base(tmp_path / "base", smollm2_tokenizer())
    config = fixture_config(tmp_path / "home", tasks=2, max_tokens=8)
    rep = drift.decay(str(root), config, ages=(1,), model=str(base), out_dir=tmp_path / "tuned",
                      finetune_options=FinetuneOptions(max_steps=1, max_length=64, bf16=False))
    frozen, tuned = rep.rungs
    assert (frozen.solver, tuned.solver) == ("history", f"finetuned:{base}")
    assert frozen.revision == tuned.revision == revs["mid"][:12] and tuned.tasks == 2
    manifest = read_manifest(tmp_path / "tuned" / revs["mid"][:12])
    assert manifest["revision"] == revs["mid"] and manifest["mode"] == "codebase" and not manifest["worktree"]
    assert tuned.pass_at_1 is not None and tuned.run_id != frozen.run_id
