"""Git facts from real history: churn, last change, co-changed files; none without git."""

from __future__ import annotations

import subprocess

from _repos import make_file, make_repo

from regrow.grok.gitfacts import collect, symbol_history
from regrow.store.gitfacts import load_git_facts, save_git_facts
from regrow.store import Store


def _commit(root, message: str) -> None:
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=a", "-c", "user.email=a@example.invalid",
                    "commit", "-q", "-m", message], check=True)


def test_churn_last_change_and_co_changed_files(tmp_path):
    root = make_repo(tmp_path / "r", {"pkg/a.py": "def f():\n    return 1\n", "pkg/b.py": "X = 1\n",
                                       "pkg/c.py": "Y = 1\n", "README": "hi\n"})
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _commit(root, "start")
    make_file(root, "pkg/a.py", "def f():\n    return 2\n")
    make_file(root, "pkg/b.py", "X = 2\n")
    _commit(root, "bump a and b together")
    make_file(root, "pkg/c.py", "Y = 2\n")
    _commit(root, "only c")
    facts = collect(root)
    assert facts["pkg/a.py"]["commits"] == 2
    assert facts["pkg/a.py"]["last_subject"] == "bump a and b together"
    assert facts["pkg/a.py"]["co_changed"][0] == ["pkg/b.py", 2]
    assert facts["pkg/c.py"]["last_subject"] == "only c"
    assert "README" not in facts
    store = Store(tmp_path / "s.sqlite")
    save_git_facts(store, "k", facts)
    assert load_git_facts(store, "k") == facts
    history = symbol_history(root, "pkg/a.py", 1, 2)
    assert [h["subject"] for h in history] == ["bump a and b together", "start"]


def test_a_directory_without_git_has_no_facts(tmp_path):
    root = make_repo(tmp_path / "plain", {"m.py": "x = 1\n"})
    assert collect(root) == {}
    assert symbol_history(root, "m.py", 1, 1) == []
