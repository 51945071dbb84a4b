"""The symbol graph: names resolved the way Python resolves them, stored, re-read per file."""

from __future__ import annotations

from pathlib import Path

from _repos import make_repo

from regrow.grok.graph import build, extract, extract_all, load_graph
from regrow.grok.build import grok_static_part
from regrow.source.resolve import resolve_source
from regrow.store import Store

FILES = {
    "pkg/__init__.py": """
        from .core import Engine, run
        from .util import *
    """,
    "pkg/util.py": """
        import os.path as osp

        LIMIT = 64


        def clamp(n):
            return min(n, LIMIT)


        def helper(x):
            return osp.join(x, "y")
    """,
    "pkg/base.py": """
        class Base:
            kind = "base"

            def setup(self):
                return self.kind

            @classmethod
            def make(cls):
                return cls()
    """,
    "pkg/core.py": """
        from typing import Optional

        from . import util
        from .base import Base
        from pkg.util import clamp as limit


        class Store:
            def put(self, x):
                return x


        class Engine(Base):
            store: Store

            def __init__(self, store: Optional[Store] = None):
                self.store = store or Store()
                self.cache = Store()

            def start(self, n: int) -> "Engine":
                self.setup()
                super().setup()
                self.cache.put(limit(n))

                def inner():
                    return util.helper("a")

                return inner()


        def run(engine: Engine):
            Engine.make()
            e = Engine()
            return e.start(util.LIMIT)
    """,
}


def _graph(tmp_path: Path):
    root = make_repo(tmp_path / "repo", FILES)
    modules = {p: p[:-3].replace("/", ".").removesuffix(".__init__") for p in FILES}
    return build(extract_all(root, modules))


def test_uses_follow_imports_self_super_annotations_and_attribute_types(tmp_path):
    g = _graph(tmp_path)
    uses = g.uses("pkg.core:Engine.start")
    assert set(uses) == {"pkg.base:Base.setup", "pkg.core:Store.put", "pkg.util:clamp", "pkg.util:helper"}
    assert uses["pkg.util:clamp"] == 23  # the line of the call, in the file as written
    # an annotated parameter names its class; a variable assigned from a class method too
    assert set(g.uses("pkg.core:run")) == {"pkg.core:Engine", "pkg.base:Base.make", "pkg.core:Engine.start",
                                           "pkg.util:LIMIT"}


def test_signature_inheritance_and_constants_are_their_own_edges(tmp_path):
    g = _graph(tmp_path)
    kinds = {(e.dst, e.kind) for e in g.out_edges("pkg.core:Engine.__init__")}
    assert ("pkg.core:Store", "signature") in kinds  # Optional[Store] in the header
    assert ("pkg.core:Store", "call") in kinds
    assert ("pkg.base:Base", "inherit") in {(e.dst, e.kind) for e in g.out_edges("pkg.core:Engine")}
    assert "pkg.util:LIMIT" in g.uses("pkg.util:clamp")
    assert g.defs["pkg.base:Base.kind"].kind == "attribute"
    assert "pkg.base:Base.kind" in g.uses("pkg.base:Base.setup")


def test_callers_are_the_reverse_edges(tmp_path):
    g = _graph(tmp_path)
    assert [e.src for e in g.callers("pkg.core:Engine.start")] == ["pkg.core:run"]


def test_unresolvable_names_are_dropped_not_guessed():
    facts = extract("import os\n\ndef f(x):\n    y = x.anything()\n    return os.getcwd() + len(y)\n",
                    "m.py", "m")
    assert build({"m.py": facts}).uses("m:f") == {}


def test_a_file_that_does_not_parse_has_no_facts():
    assert extract("def broken(:\n", "m.py", "m").error.startswith("syntax-error")


def test_grok_stores_the_graph_and_rereads_only_the_changed_file(tmp_path):
    root = make_repo(tmp_path / "repo", FILES)
    store = Store(tmp_path / "home" / "regrow.sqlite")
    first = resolve_source(str(root), home=tmp_path / "home")
    grok_static_part(store, first)
    before = load_graph(store, first.key)
    assert "pkg.util:helper" in before.uses("pkg.core:Engine.start")

    (root / "pkg" / "util.py").write_text((root / "pkg" / "util.py").read_text().replace(
        'return osp.join(x, "y")', "return clamp(len(x))"))
    second = resolve_source(str(root), home=tmp_path / "home")
    assert second.key != first.key
    grok_static_part(store, second)
    facts = store.one("SELECT facts FROM sources WHERE source_key=?", (second.key,))[0]
    assert '"static_changed_files": 1' in facts
    after = load_graph(store, second.key)
    assert "pkg.util:clamp" in after.uses("pkg.util:helper")
    assert after.uses("pkg.core:Engine.start") == before.uses("pkg.core:Engine.start")
    full = build(extract_all(root, {p: p[:-3].replace("/", ".").removesuffix(".__init__") for p in FILES}))
    assert sorted((e.src, e.dst, e.kind, e.line) for e in after.edges) == \
        sorted((e.src, e.dst, e.kind, e.line) for e in full.edges)


SUBMODULE_FILES = {
    # ``from . import sub`` in the package binds pkg:sub to itself; a use ``sub.name`` elsewhere
    # must reach pkg.sub:name, not the package (nor loop to the depth cap).
    "pkg/__init__.py": """
        from . import sub
        from . import helpers as h
    """,
    "pkg/sub.py": """
        def name(x):
            return x


        class K:
            def m(self):
                return 1
    """,
    "pkg/helpers.py": """
        def helper():
            return 2
    """,
    "pkg/user.py": """
        import pkg
        from pkg import sub
        from pkg import h
        from . import helpers


        def via_package():
            return sub.name(1)


        def via_alias():
            return h.helper()


        def via_relative():
            return helpers.helper()


        def via_dotted():
            return pkg.sub.name(2)


        def via_class():
            return sub.K
    """,
}


def test_a_submodule_imported_by_its_package_resolves_to_its_members(tmp_path):
    root = make_repo(tmp_path / "repo", SUBMODULE_FILES)
    modules = {p: p[:-3].replace("/", ".").removesuffix(".__init__") for p in SUBMODULE_FILES}
    g = build(extract_all(root, modules))
    assert set(g.uses("pkg.user:via_package")) == {"pkg.sub:name"}
    assert set(g.uses("pkg.user:via_alias")) == {"pkg.helpers:helper"}
    assert set(g.uses("pkg.user:via_relative")) == {"pkg.helpers:helper"}
    assert set(g.uses("pkg.user:via_dotted")) == {"pkg.sub:name"}
    assert set(g.uses("pkg.user:via_class")) == {"pkg.sub:K"}
    # no use edge lands on the package itself
    assert not [e for e in g.edges if e.dst == "pkg" and e.kind in ("call", "reference")]
    assert g.table.resolve("pkg:sub") == "pkg.sub"
    assert g.table.resolve("pkg:sub.K.m") == "pkg.sub:K.m"


TYPED_FILES = {
    "pkg/__init__.py": "",
    "pkg/lexer.py": """
        class Token:
            lineno: int
            value: str

            def test(self, expr):
                return self.value == expr


        class Stream:
            def __init__(self):
                self.current = Token()

            def expect(self, expr) -> Token:
                return self.current

            @property
            def last(self) -> "Token":
                return self.current
    """,
    "pkg/env.py": """
        from .lexer import Stream


        class Env:
            def tokenize(self, source) -> Stream:
                return Stream()
    """,
    "pkg/parser.py": """
        import typing as t

        if t.TYPE_CHECKING:
            from .env import Env


        def make(env: "Env"):
            return env.tokenize("")


        class Parser:
            def __init__(self, env: "Env", source):
                self.stream = env.tokenize(source)
                self.other = self.fresh()

            def fresh(self) -> "Parser":
                return self

            def parse_name(self):
                token = self.stream.expect("name")
                return token.lineno, self.stream.current.value

            def parse_last(self):
                return self.stream.last.test("x")

            def parse_other(self):
                return self.other.parse_name()

            def parse_unknown(self):
                return self.stream.nothing.value, make.__name__
    """,
}


def test_values_are_typed_by_return_annotations_and_instance_attributes_of_other_files(tmp_path):
    root = make_repo(tmp_path / "repo", TYPED_FILES)
    modules = {p: p[:-3].replace("/", ".").removesuffix(".__init__") for p in TYPED_FILES}
    g = build(extract_all(root, modules))
    # token = self.stream.expect(...): the attribute typed by env.tokenize's return annotation,
    # expect's return annotation types the local; Stream.current is typed in Stream's __init__
    assert set(g.uses("pkg.parser:Parser.parse_name")) == {"pkg.lexer:Stream.expect", "pkg.lexer:Token.lineno",
                                                           "pkg.lexer:Token.value"}
    # a property's return annotation types what follows it
    assert set(g.uses("pkg.parser:Parser.parse_last")) == {"pkg.lexer:Stream.last", "pkg.lexer:Token.test"}
    # self.other = self.fresh(): the method's annotated return class
    assert set(g.uses("pkg.parser:Parser.parse_other")) == {"pkg.parser:Parser.parse_name"}
    # what no annotation types is dropped; an attribute of a function is not its result's
    assert set(g.uses("pkg.parser:Parser.parse_unknown")) == {"pkg.parser:make"}
    assert set(g.uses("pkg.parser:make")) == {"pkg.env:Env.tokenize"}


def test_a_graph_grokked_by_an_older_resolver_is_built_again(tmp_path):
    from regrow.store.sources import source_row, update_facts

    root = make_repo(tmp_path / "repo", TYPED_FILES)
    store = Store(tmp_path / "regrow.sqlite")
    source = resolve_source(str(root), home=tmp_path / "home")
    grok_static_part(store, source)
    assert "pkg.lexer:Token.lineno" in load_graph(store, source.key).uses("pkg.parser:Parser.parse_name")
    # as a store written before return annotations were followed: no type rows, version 1
    with store.write() as w:
        w.execute("DELETE FROM edges WHERE source_key=? AND (kind='type' OR dst='pkg.lexer:Token.lineno')",
                  (source.key,))
    update_facts(store, source.key, graph_version=1)
    assert "pkg.lexer:Token.lineno" not in load_graph(store, source.key).uses("pkg.parser:Parser.parse_name")
    logs = []
    grok_static_part(store, source, source_row(store, source.key), log=logs.append)
    assert "pkg.lexer:Token.lineno" in load_graph(store, source.key).uses("pkg.parser:Parser.parse_name")
    assert any("built again" in m for m in logs)


def test_a_changed_return_annotation_reresolves_the_files_that_import_it(tmp_path):
    files = {**TYPED_FILES, "pkg/env.py": TYPED_FILES["pkg/env.py"].replace("import Stream", "import Stream, Token")}
    root = make_repo(tmp_path / "repo", files)
    store = Store(tmp_path / "regrow.sqlite")
    grok_static_part(store, resolve_source(str(root), home=tmp_path / "home"))
    assert "pkg.lexer:Token.test" in load_graph(store, resolve_source(str(root), home=tmp_path / "home").key) \
        .uses("pkg.parser:Parser.parse_last")
    # Env.tokenize now says it returns a Token (no name env.py binds changed): parser.py did
    # not change, its edges do
    env = root / "pkg" / "env.py"
    env.write_text(env.read_text().replace("-> Stream:", "-> Token:"))
    source = resolve_source(str(root), home=tmp_path / "home")
    grok_static_part(store, source)
    uses = load_graph(store, source.key).uses("pkg.parser:Parser.parse_last")
    assert "pkg.lexer:Stream.last" not in uses and "pkg.lexer:Token.test" not in uses
