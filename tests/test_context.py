"""The context engine on a real grokked repository: what enters a pack, and what never does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _repos import git_init, make_repo

from regrow.store.calls import call_counts
from regrow.context.engine import ContextEngine, build_context, context_for_task, resolve_symbol
from regrow.source.envs import ensure_environment
from regrow.grok.build import grok
from regrow.tasks.hollow import make_task
from regrow.source.resolve import resolve_source
from regrow.store import Store
from regrow.context.tokenizers import get_tokenizer

MARKER = "zx81-body-marker"

SHOP_FILES = {
    "pyproject.toml": """
        [project]
        name = "shop"
        version = "0.1.0"
    """,
    "shop/__init__.py": """
        from .cart import Cart
        from .items import Item
    """,
    "shop/pricing.py": '''
        TAX = 0.2


        def _round(x):
            return round(x, 2)


        def with_tax(amount: float) -> float:
            """Amount plus TAX, rounded to cents."""
            total = amount * (1 + TAX)
            return _round(total)
    ''',
    "shop/items.py": '''
        class Item:
            """Something to buy."""

            def __init__(self, name, price):
                self.name = name
                self.price = price
    ''',
    "shop/cart.py": f'''
        from .items import Item
        from .pricing import with_tax


        class Cart:
            def __init__(self):
                self.items = []

            def add(self, item: Item):
                """Put an item in the cart."""
                self.items.append(item)
                return self

            def subtotal(self):
                """Sum of the prices."""
                s = 0
                for it in self.items:
                    s += it.price
                return s

            def total(self):
                """Subtotal with tax."""
                tag = "{MARKER}"

                def _secret_inner(value):
                    return value

                return _secret_inner(with_tax(self.subtotal()))


        def checkout(cart: Cart):
            amount = cart.total()
            return f"pay {{amount}}"
    ''',
    "tests/test_cart.py": """
        from shop import Cart, Item
        from shop.cart import checkout


        def test_total():
            cart = Cart().add(Item("a", 10)).add(Item("b", 5))
            assert cart.total() == 18.0


        def test_checkout_says_how_much():
            assert checkout(Cart().add(Item("a", 1))) == "pay 1.2"


        def test_subtotal():
            assert Cart().add(Item("a", 2)).subtotal() == 2
    """,
}


def grok_repo(tmp: Path, files: dict = SHOP_FILES) -> tuple[Store, object]:
    """A real repository with history, grokked (the test map runs its suite under coverage)."""
    root = make_repo(tmp / "shop", files)
    git_init(root)
    home = tmp / "home"
    source = resolve_source(str(root), home=home)
    store = Store(home / "regrow.sqlite")
    grok(source, ensure_environment(source, home=home, python=Path(sys.executable)), store)
    return store, source


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    store, source = grok_repo(tmp_path_factory.mktemp("ctx"))
    return store, source, ContextEngine.load(store, source.key, source.root)


def test_task_mode_never_shows_the_target_body_nor_what_is_nested_in_it(shop):
    _, _, engine = shop
    for budget in (200, 1000, 16000):
        pack = build_context(engine, "shop.cart:Cart.total", budget=budget, tokenizer="smollm2")
        for fmt in ("md", "json"):
            text = pack.render(fmt)
            assert MARKER not in text
            assert "_secret_inner" not in text
        assert all(not i.subject.startswith("shop.cart:Cart.total") for i in pack.items)


def test_oracle_mode_is_labelled_and_includes_the_body(shop):
    _, _, engine = shop
    pack = build_context(engine, "shop.cart:Cart.total", budget=4000, tokenizer="smollm2", mode="oracle")
    text = pack.render()
    assert MARKER in text and "ORACLE MODE" in text
    uses = [i for i in pack.items if i.subject == "shop.pricing:with_tax"]
    assert uses and "the target uses it on line" in uses[0].breadcrumb


def test_what_the_hidden_body_uses_is_inferred_from_its_class_module_and_tests(shop):
    _, _, engine = shop
    pack = build_context(engine, "shop.cart:Cart.total", budget=1000, tokenizer="smollm2")
    assert {"shop.pricing:with_tax", "shop.cart:Cart.subtotal"} <= pack.covered
    by_subject = {i.subject: i for i in pack.items}
    assert "used by no other code there" in by_subject["shop.pricing:with_tax"].breadcrumb
    assert by_subject["tests/test_cart.py::test_total"].breadcrumb == "tests it: tests/test_cart.py::test_total"
    callers = [i for i in pack.items if i.channel == "caller"]
    lines = (engine.root / "shop" / "cart.py").read_text().splitlines()
    line = lines.index("    amount = cart.total()") + 1
    assert [c.breadcrumb for c in callers] == [f"checkout calls the target on line {line}"]


def test_a_pack_is_never_over_budget_and_counts_its_render_exactly(shop):
    _, _, engine = shop
    tok = get_tokenizer("smollm2")
    for budget in (1, 40, 90, 150, 300, 700, 5000):
        pack = build_context(engine, "shop.cart:Cart.total", budget=budget, tokenizer=tok)
        assert pack.tokens == tok.count(pack.render()) <= budget
        assert json.loads(pack.render("json"))["tokenizer"] == "smollm2"


def test_signatures_come_before_bodies_when_the_budget_is_tight(shop):
    _, _, engine = shop
    code = lambda p: [i for i in p.items if i.form != "facts" and i.channel not in ("test", "caller")]  # noqa: E731
    roomy = build_context(engine, "shop.cart:Cart.total", budget=4000, tokenizer="smollm2")
    best = sorted(code(roomy), key=lambda i: -i.score)[:4]
    assert any(i.form == "body" for i in code(roomy))
    tight = build_context(engine, "shop.cart:Cart.total", budget=400, tokenizer="smollm2")
    shown = {i.subject: i.form for i in code(tight)}
    assert {i.subject for i in best} <= set(shown)  # the four best, at least as signatures
    assert list(shown.values()).count("signature") >= list(shown.values()).count("body")


def test_runtime_facts_at_the_boundary_enter_the_pack_with_their_sentence(shop):
    store, source, engine = shop
    rows = [(source.key, "shop.pricing:with_tax", n, "tests/test_cart.py::test_total", None, None, None,
             json.dumps({"amount": "float"}), "float", json.dumps({"args": {"amount": repr(v)}, "result": repr(v * 1.2)}))
            for n, v in enumerate([1.0, 64.0, 12.5])]
    recorded = store.query("SELECT * FROM calls WHERE source_key=? AND qualname=?", (source.key, "shop.pricing:with_tax"))
    with store.write() as w:  # replace what grok recorded with rows whose summary we know
        w.execute("DELETE FROM calls WHERE source_key=? AND qualname=?", (source.key, "shop.pricing:with_tax"))
        w.executemany("INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    try:
        pack = build_context(engine, "shop.pricing:with_tax", budget=600, tokenizer="smollm2")
        facts = [i for i in pack.items if i.channel == "runtime"]
        assert facts and facts[0].breadcrumb == "argument `amount` was always a float in 1..64; e.g. 1.0, 64.0, 12.5 in 3 calls"
        assert "returned always a float in 1.2..76.8" in facts[0].text
    finally:
        with store.write() as w:
            w.execute("DELETE FROM calls WHERE source_key=? AND qualname=?", (source.key, "shop.pricing:with_tax"))
            w.executemany("INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?)", [tuple(r) for r in recorded])


def test_recorded_calls_of_the_target_become_boundary_facts_without_object_addresses(shop):
    store, source, engine = shop
    if not call_counts(store, source.key):
        pytest.fail("grok recorded no calls: the runtime channel has nothing to show")
    pack = build_context(engine, "shop.cart:Cart.total", budget=1000, tokenizer="smollm2")
    facts = [i for i in pack.items if i.channel == "runtime"]
    assert facts and "returned always a float in 1.2..18" in facts[0].text
    assert " at 0x" not in pack.render() and "`self`" not in facts[0].text


def test_git_facts_of_the_target_file_are_a_channel(shop):
    _, _, engine = shop
    pack = build_context(engine, "shop.cart:Cart.total", budget=4000, tokenizer="smollm2")
    git = [i for i in pack.items if i.channel == "git"]
    assert git and "1 commits by 1 authors" in git[0].text


def test_the_model_loop_call_gives_markdown_without_the_body(shop):
    store, source, _ = shop
    text = (source.root / "shop" / "cart.py").read_text()
    symbol = ContextEngine.load(store, source.key, source.root).symbol("shop.cart:Cart.total")
    task = make_task(text, symbol, ("tests/test_cart.py::test_total",))
    out = context_for_task(task, store=store, source_key=source.key, root=source.root, budget=800, tokenizer="utf8")
    assert out.startswith("# Context for `shop.cart:Cart.total`") and MARKER not in out
    assert len(out.encode()) <= 800


def test_short_names_resolve_when_unambiguous(shop):
    _, _, engine = shop
    assert resolve_symbol(engine, "Cart.total") == "shop.cart:Cart.total"
    with pytest.raises(Exception, match="no single function"):
        resolve_symbol(engine, "__init__")


def test_ranking_does_not_depend_on_the_hash_seed(shop):
    store, source, _ = shop
    script = ("import sys; from pathlib import Path; from regrow.store import Store; "
              "from regrow.context.engine import ContextEngine, build_context; "
              "e = ContextEngine.load(Store(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])); "
              "print(build_context(e, 'shop.cart:Cart.total', budget=700, tokenizer='smollm2').render('json'))")
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", script, str(store.path), source.key, str(source.root)],
                              capture_output=True, text=True, env=env, check=True)
        outs.append(done.stdout)
    assert outs[0] == outs[1] and '"items"' in outs[0]


def test_tokenizers_are_named_and_need_no_download():
    assert get_tokenizer("utf8").count("héllo") == 6
    smol = get_tokenizer("smollm2")
    assert smol.name == "smollm2" and 0 < smol.count("def clamp(x, lo, hi):") < 21
    with pytest.raises(Exception, match="unknown tokenizer"):
        get_tokenizer("gpt-4")


def test_the_cli_prints_a_pack_as_json(shop):
    from typer.testing import CliRunner

    from regrow.cli import app

    store, source, _ = shop
    home = Path(store.path).parent
    result = CliRunner().invoke(app, ["context", str(source.root), "Cart.total", "--home", str(home),
                                      "--python", sys.executable, "--budget", "300", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"): result.stdout.rindex("}") + 1])
    assert data["format"] == "regrow-context/1" and data["target"] == "shop.cart:Cart.total"
    assert data["tokens"] <= 300 and data["tokenizer"] == "smollm2" and data["items"]
