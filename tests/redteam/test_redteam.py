"""Every hostile candidate of the corpus ends with reward 0 and a flag naming what it tried,
and the engine stays healthy: the reference still solves its task afterwards, and nothing the
candidates started or wrote is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.redteam.corpus import CORPUS
from tests.redteam.fixture import fallback_session, fixture_session

FAMILIES = {"runner", "tamper", "deceptive", "special", "resource", "leakage"}


@pytest.fixture(scope="module", params=["full", "fallback"])
def fixture_repo(request, tmp_path_factory):
    """The corpus runs twice: with every isolation this machine allows (root: namespaces, a
    dropped uid, a bind-mounted candidate), and as a machine without them would run it."""
    session = fixture_session if request.param == "full" else fallback_session
    yield from session(tmp_path_factory, "redteam-" + request.param, timeout=4.0)


def test_the_corpus_covers_every_family_with_at_least_thirty_candidates():
    assert len(CORPUS) >= 30
    assert {family for _, family, *_ in CORPUS} == FAMILIES
    assert len({name for name, *_ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("name,family,task_id,body,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_candidate_gets_no_reward_and_a_flag(fixture_repo, name, family, task_id, body, expected):
    prep, tasks = fixture_repo
    verdict = prep.verifier.verify(tasks[task_id], body)
    assert verdict.reward == 0.0
    assert not verdict.solved
    assert set(verdict.flags) & expected, (name, verdict.status, verdict.flags, verdict.feedback[:800])


def test_each_run_of_the_corpus_has_the_isolation_it_names(fixture_repo):
    prep, _tasks = fixture_repo
    facts = prep.verifier.engine.start()
    worker_net = os.readlink(f"/proc/{facts['pid']}/ns/net")
    fallback = not prep.verifier.engine.config.namespaces
    assert (worker_net == os.readlink("/proc/self/ns/net")) == fallback
    assert (facts["uid"] is None) == fallback


def test_the_engine_is_healthy_after_the_corpus(fixture_repo):
    prep, tasks = fixture_repo
    for task in tasks.values():
        verdict = prep.verifier.verify(task, task.reference_body)
        assert verdict.solved and verdict.reward == 1.0, (task.task_id, verdict.flags, verdict.feedback)
        assert verdict.extra.get("engine") == "warm"
    assert not Path("/tmp/regrow-redteam-was-here").exists()
    assert "x = 1" not in (prep.source.root / "tests" / "test_core.py").read_text()
    assert not (prep.source.root / "conftest.py").exists()


def test_honest_alternatives_still_earn_the_reward(fixture_repo):
    prep, tasks = fixture_repo
    honest = {
        "calc.core:mean": "if not xs:\n    raise ValueError('nothing')\nreturn sum(xs) / len(xs)",
        "calc.core:clamp": "if lo > hi:\n    raise ValueError('bad')\nreturn max(lo, min(x, hi))",
        "calc.core:words": "return [w.lower() for w in text.split()]",
    }
    for task_id, body in honest.items():
        verdict = prep.verifier.verify(tasks[task_id], body)
        assert verdict.reward == 1.0, (task_id, verdict.flags, verdict.feedback)
        assert verdict.eq_cases >= 1 and verdict.eq_matched == verdict.eq_cases
