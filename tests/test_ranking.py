"""The context engine's ranking: each mechanism of issue 14 on a fixture package built for it,
and the ranking learned on the repository itself (folds by file, the target left out)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _repos import make_repo

from regrow.context import learn
from regrow.context.engine import (OWN_FILE_SHARE, TASK_FEATURES, WEIGHTS, ContextEngine, _pagerank,
                                   _rank_definitions, build_context, ensure_ranking, example_rows,
                                   example_targets, fit_ranking, ranking_summary)
from regrow.grok.build import grok_static_part
from regrow.source.resolve import resolve_source
from regrow.store import Store
from regrow.store.ranking import load_ranking

MECHANISMS = {
    "pyproject.toml": """
        [project]
        name = "units"
        version = "0.1.0"
    """,
    "units/__init__.py": """
        from . import convert
    """,
    "units/convert.py": '''
        def duration_to_seconds(value):
            """Seconds in a duration."""
            return value * 60


        def helper_only_the_target_uses(x):
            return x + 1


        def used_everywhere(x):
            return x


        class Span:
            def seconds(self):
                return 60
    ''',
    "units/fields.py": '''
        from units import convert


        class Field:
            def _serialize(self, value):
                return convert.used_everywhere(value)


        class Number(Field):
            def _serialize(self, value):
                return sibling_helper(convert.used_everywhere(value))


        class Duration(Field):
            """A span of time."""

            def __init__(self, precision="seconds", extra=None, more=None, still_more=None):
                self.precision = precision
                self.extra = extra
                self.more = more
                self.still_more = still_more
                self.a = [precision, extra, more, still_more, precision, extra, more, still_more]
                self.b = [precision, extra, more, still_more, precision, extra, more, still_more]
                self.c = [precision, extra, more, still_more, precision, extra, more, still_more]
                self.d = [precision, extra, more, still_more, precision, extra, more, still_more]
                self.e = [precision, extra, more, still_more, precision, extra, more, still_more]
                self.f = [precision, extra, more, still_more, precision, extra, more, still_more]

            def _serialize(self, value):
                return convert.helper_only_the_target_uses(convert.duration_to_seconds(value))


        def sibling_helper(x):
            return x


        def span_seconds(span: convert.Span):
            return span.seconds()
    ''',
    "tests/test_fields.py": """
        from units.fields import Duration, Number, Field


        def test_duration():
            assert Duration()._serialize(2) == 121


        def test_number():
            assert Number()._serialize(2) == 2


        def test_field():
            assert Field()._serialize(3) == 3
    """,
}


def _engine(tmp: Path, files: dict, *, learned: bool = False) -> ContextEngine:
    root = make_repo(tmp / "repo", files)
    home = tmp / "home"
    source = resolve_source(str(root), home=home)
    store = Store(home / "regrow.sqlite")
    grok_static_part(store, source)
    return ContextEngine.load(store, source.key, source.root, learned=learned)


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    return _engine(tmp_path_factory.mktemp("units"), MECHANISMS)


def _features(engine: ContextEngine, target: str):
    sym = engine.symbol(target)
    return _rank_definitions(engine, sym, "task", (target,), [])


def test_a_member_of_an_imported_module_used_only_by_the_target_is_a_candidate(units):
    feats = _features(units, "units.fields:Duration._serialize")
    x = feats["units.convert:helper_only_the_target_uses"]
    assert x.values["member"] == 1.0 and x.values["member_orphan"] > 0  # no other code in fields.py uses it
    assert "member_orphan" not in feats["units.convert:used_everywhere"].values  # other methods there use it
    pack = build_context(units, "units.fields:Duration._serialize", budget=700, tokenizer="smollm2")
    assert "units.convert:helper_only_the_target_uses" in pack.covered


def test_what_a_method_of_another_class_in_the_file_uses_counts(units):
    # sibling_helper is used by Number._serialize, not by any method of Duration
    feats = _features(units, "units.fields:Duration._serialize")
    assert feats["units.fields:sibling_helper"].values.get("file_use", 0) > 0
    assert "siblings_use" not in feats["units.fields:sibling_helper"].values


def test_the_lexical_query_includes_the_enclosing_class_name(units):
    feats = _features(units, "units.fields:Duration._serialize")
    assert feats["units.convert:duration_to_seconds"].values.get("bm25", 0) > 0


def test_members_of_a_class_the_signature_names_are_candidates(units):
    feats = _features(units, "units.fields:span_seconds")
    assert feats["units.convert:Span.seconds"].values.get("type_member") == 1.0


def test_test_code_never_takes_a_pagerank_candidate_slot(units):
    ranked = _pagerank(units, "units.fields:Duration._serialize", "task", ("units.fields:Duration._serialize",))
    assert ranked and not [q for q, _, _ in ranked if units.is_test(q)]


def test_bodies_from_the_target_file_take_at_most_their_share_of_the_budget(units):
    budget = 600
    pack = build_context(units, "units.fields:Duration._serialize", budget=budget, tokenizer="smollm2")
    own_bodies = sum(i.tokens for i in pack.items if i.path == "units/fields.py" and i.form == "body")
    assert pack.tokens <= budget
    assert own_bodies <= OWN_FILE_SHARE * budget
    assert any(i.path == "units/convert.py" for i in pack.items)


# --------------------------------------------------------------------------- learned ranking


def _many_modules(n_modules: int = 10, per_module: int = 6) -> dict:
    """A package where each function calls a helper of its own module and one of ``util``
    through ``from pkg import util``: enough examples for every fold to learn."""
    files = {"pyproject.toml": '[project]\nname = "many"\nversion = "0.1.0"\n', "many/__init__.py": "",
             "many/util.py": "".join(f"def util_{i}(x):\n    return x + {i}\n\n\n" for i in range(per_module))}
    for m in range(n_modules):
        body = ["from many import util\n\n\n", f"LIMIT_{m} = {m}\n\n\n"]
        for i in range(per_module):
            body.append(f"def _helper_{m}_{i}(x):\n    return min(x, LIMIT_{m})\n\n\n")
        for i in range(per_module):
            body.append(f"def api_{m}_{i}(x):\n    \"\"\"Call helper {i}.\"\"\"\n"
                        f"    return util.util_{i}(_helper_{m}_{i}(x))\n\n\n")
        files[f"many/mod_{m}.py"] = "".join(body)
    return files


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    return _engine(tmp_path_factory.mktemp("many"), _many_modules(), learned=True)


def test_the_ranking_is_learned_per_fold_stored_and_read_back(many):
    model = many.ranking
    assert model is not None and all(model.learned), model.note
    assert model.features == TASK_FEATURES and model.examples > 40
    for w in model.weights:
        assert set(w) == set(TASK_FEATURES) and min(w.values()) >= 0
        assert sum(w.values()) == pytest.approx(sum(WEIGHTS[k] for k in TASK_FEATURES))
    fmt, data = load_ranking(many.store, many.source_key)
    assert fmt == learn.FORMAT and data["weights"] == [dict(w) for w in model.weights]
    again = ensure_ranking(many)  # read from the store, not fitted again
    assert again.seconds == model.seconds and again.weights == model.weights
    summary = ranking_summary(many)
    assert summary["learned_folds"] == model.folds and set(summary["weights"]) == set(TASK_FEATURES)
    pack = build_context(many, "many.mod_3:api_3_2", budget=800, tokenizer="smollm2")
    assert pack.ranking["learned"] is True and pack.ranking["fold"] == model.fold_of("many/mod_3.py")
    assert '"ranking"' in pack.render("json")


def test_a_targets_weights_never_come_from_examples_of_its_own_fold(many):
    examples = [example_rows(many, q) for q in example_targets(many)]
    hand = {k: WEIGHTS[k] for k in TASK_FEATURES}
    base = learn.fit(examples, hand, OWN_FILE_SHARE)
    path = "many/mod_4.py"
    k = learn.fold_of(path, base.folds)
    # turn every label of the examples in the target's fold upside down: its weights stay the same
    flipped = [(p, rows, [1 - y for y in labels] if learn.fold_of(p, base.folds) == k else labels, o, i, t)
               for p, rows, labels, o, i, t in examples]
    other = learn.fit(flipped, hand, OWN_FILE_SHARE)
    assert other.for_path(path) == base.for_path(path)
    assert any(other.weights[j] != base.weights[j] for j in range(base.folds) if j != k)


def test_too_few_examples_fall_back_to_the_hand_weights(units):
    model = fit_ranking(units)
    assert not any(model.learned) and "hand weights" in model.note
    assert model.for_path("units/fields.py")[:2] == ({k: WEIGHTS[k] for k in TASK_FEATURES},) * 2


def test_members_a_package_re_exports_are_reached_through_it(tmp_path):
    # ``from zone import tz`` then ``tz.gettz``: gettz is defined in zone/tz/impl.py and
    # re-exported by zone/tz/__init__.py with a star import
    engine = _engine(tmp_path, {
        "pyproject.toml": '[project]\nname = "zone"\nversion = "0.1.0"\n',
        "zone/__init__.py": "",
        "zone/tz/__init__.py": "from .impl import *\nfrom .impl import UTC as utc\n",
        "zone/tz/impl.py": "UTC = object()\n\n\ndef gettz(name):\n    return name\n",
        "zone/parse.py": "from zone import tz\n\n\ndef other():\n    return 1\n\n\ndef build(x):\n    return tz.gettz(x)\n",
    })
    feats = _features(engine, "zone.parse:build")
    assert feats["zone.tz.impl:gettz"].values.get("member") == 1.0
    assert feats["zone.tz.impl:gettz"].values.get("member_orphan") == 1.0  # no other code there uses tz
    assert feats["zone.tz.impl:UTC"].values.get("member") == 1.0  # a re-export by name
