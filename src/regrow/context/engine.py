"""The context engine: the right few thousand tokens for one function, each with its reason.

`ContextEngine.load` reads what grok stored for a source (symbols, the symbol graph, the test
map, recorded calls, git facts); `build_context` ranks and packs for one target:

1. **Candidates** come from channels: definitions named in the target's signature, its class
   (siblings, bases and their members), its module (module-level definitions and imports),
   names in its docstring, definitions its covering tests use, its graph neighbourhood, lexical
   matches; plus its callers, its covering tests (shortest first), its runtime facts (argument
   and return values observed at its boundary) and git facts.
2. **Ranking**: a personalized PageRank (networkx) over the symbol graph seeded at the target,
   BM25 (bm25s) over names, signatures and docstrings, and channel priors, summed with fixed
   weights (`WEIGHTS`). Ties break on the subject's name, so the order never depends on the
   hash seed.
3. **Packing** under an exact budget counted with a named tokenizer: signatures of the
   candidates first, in rank order, then bodies in rank order while they fit; the rendered
   pack is counted whole at the end and trimmed until it fits, so it is never over budget.

**Task mode** (the default) shows nothing derived from the target's reference body: not its
text, not the definitions its body uses (its outgoing body edges are removed before ranking,
so "what the target uses" is inferred from its signature, docstring, class, module, callers
and tests), not definitions nested in it, no text overlapping its body lines. Facts at its
boundary (recorded argument and return values, exceptions) are allowed. **Oracle mode** adds
the body and its edges; it is labelled in every render and meant for ablations only.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path

import bm25s
import networkx as nx

from regrow.context import learn
from regrow.grok import gitfacts
from regrow.grok import runtime_facts
from regrow.core.context_item import ContextItem
from regrow.errors import RegrowError
from regrow.grok.graph import USE_KINDS, Definition, SymbolGraph, has_graph, is_test_definition, load_graph
from regrow.core.index import Index
from regrow.grok.parse import read_source
from regrow.store import Store
from regrow.store.calls import call_counts
from regrow.store.gitfacts import load_git_facts
from regrow.store.index import load_index
from regrow.core.symbol import Symbol
from regrow.context.tokenizers import Tokenizer, resolve_tokenizer

FORMAT = "regrow-context/1"
MODES = ("task", "oracle")

# Channel priors and feature weights; a candidate's score is the weighted sum of its features.
WEIGHTS = {
    "uses": 3.0,  # oracle only: the body uses it
    "signature": 2.0,  # named in the target's signature (annotation, default, decorator)
    "docstring": 1.5,  # named in the target's docstring
    "orphan": 1.6,  # module-level name of the target's module that no other code there uses
    "class": 1.0,  # member of the target's class or of one of its bases
    "class_orphan": 0.8,  # ... that no other method of the class uses
    "module": 0.5,  # defined in or imported by the target's module
    "tests": 0.6,  # used by the target's covering tests (share of them)
    "ppr": 1.2,  # personalized PageRank, divided by the largest among candidates
    "bm25": 0.8,  # BM25 of the target's name, signature and docstring, divided by the largest
    "siblings_use": 0.8,  # share of the target's class siblings / module neighbours that use it
    "file_use": 0.6,  # share of the other definitions of the target's file (any class) that use it
    "member": 0.4,  # member of a module the target's module imports (``from pkg import utils``)
    "member_orphan": 0.9,  # ... that no other code of the target's module uses
    "type_member": 0.8,  # member of a class named in the target's signature (``item: Item`` -> Item.value)
}
TASK_FEATURES = tuple(k for k in WEIGHTS if k != "uses")  # what task mode ranks with (and learns)
FEATURES_VERSION = 7  # bump when a feature's meaning changes: stored learned weights are fitted again
OWN_FILE_SHARE = 0.2  # hand default: at most this share of the budget on the target's own file (the prompt shows it)
PRIOR_RUNTIME = 2.5
PRIOR_GIT = 0.45
PRIOR_TEST = 1.3  # first covering test; later ones decay
PRIOR_CALLER = 0.9  # first caller; later ones decay
MAX_CANDIDATES = 400
TEST_LINES = 40  # a longer test body is cut after this many lines
CALLER_WINDOW = 3  # lines around a call site

_WORD = re.compile(r"[A-Za-z][a-z]*|[A-Z]+(?![a-z])|\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def words(text: str) -> list[str]:
    """Identifier-aware tokens for BM25: snake_case and CamelCase split, lower-cased."""
    return [w.lower() for w in _WORD.findall(text)]


# --------------------------------------------------------------------------- the pack


@dataclass(frozen=True, slots=True)
class ContextPack:
    target: str
    mode: str
    budget: int
    tokenizer: str
    items: tuple[ContextItem, ...]
    tokens: int  # the markdown render, counted whole
    ranking: dict | None = None  # the weights the definitions were ranked with (learned or hand)

    def render(self, format: str = "md") -> str:
        if format == "json":
            return json.dumps({"format": FORMAT, "target": self.target, "mode": self.mode, "budget": self.budget,
                               "tokenizer": self.tokenizer, "tokens": self.tokens, "ranking": self.ranking,
                               "items": [i.to_dict() for i in self.items]}, indent=2)
        if format != "md":
            raise RegrowError(f"unknown context format {format!r}: use md or json")
        return render_markdown(self.target, self.mode, self.items)

    @property
    def covered(self) -> set[str]:
        return {q for i in self.items for q in i.covers}


def _header(target: str, mode: str) -> str:
    label = "" if mode == "task" else " [ORACLE MODE: includes the reference body, for ablations only]"
    return f"# Context for `{target}`{label}\n\n"


def _section_head(item: ContextItem) -> str:
    if item.form == "facts":
        return ""
    return f"## {item.path}\n```python\n"


_SECTION_END = "```\n\n"


def _chunk(item_text: str, breadcrumb: str, form: str) -> str:
    if form == "facts":
        return f"{item_text}\n\n"
    return f"# {breadcrumb}\n{item_text}\n\n"


def render_markdown(target: str, mode: str, items: tuple[ContextItem, ...] | list[ContextItem]) -> str:
    """Facts first, then code grouped by file (files in the order of their best item)."""
    if not items:
        return ""
    out = [_header(target, mode)]
    for item in items:
        if item.form == "facts":
            out.append(_chunk(item.text, item.breadcrumb, item.form))
    files: dict[str, list[ContextItem]] = {}
    for item in items:
        if item.form != "facts":
            files.setdefault(item.path, []).append(item)
    for path, group in files.items():
        out.append(_section_head(group[0]))
        out.extend(_chunk(i.text, i.breadcrumb, i.form) for i in group)
        out.append(_SECTION_END)
    return "".join(out)


# --------------------------------------------------------------------------- the engine


@dataclass(slots=True)
class _Candidate:
    subject: str
    channel: str
    score: float
    breadcrumb: str
    path: str
    line: int
    forms: list[tuple[str, str]] | None  # [(form, text)], the smallest first; None until needed
    covers: tuple[str, ...]
    body_covers: tuple[str, ...] = ()
    build: object = None  # fills breadcrumb, forms and body_covers when the packer gets to it

    def ready(self) -> "_Candidate":
        if self.forms is None:
            self.build(self)
        return self


@dataclass
class ContextEngine:
    """What one source's context is built from; load once, query many times."""

    store: Store
    source_key: str
    root: Path
    index: Index
    graph: SymbolGraph
    git: dict
    call_counts: dict
    _texts: dict = field(default_factory=dict)
    _nx: nx.DiGraph | None = None
    _bm25: tuple | None = None
    _matrix: tuple | None = None
    _spans: dict = field(default_factory=dict)
    _tests: dict = field(default_factory=dict)  # qualname -> is test code
    _names: dict | None = None  # last name -> qualnames
    _by_file: dict | None = None  # path -> its symbols, in line order
    _by_local: dict | None = None  # (path, local name) -> qualname
    _uses: dict = field(default_factory=dict)  # (qualname, nested) -> what it uses
    _members: dict = field(default_factory=dict)  # module -> what module.X reaches
    ranking: object = None  # regrow.context.learn.RankingModel, or None for the hand weights
    _counts: dict = field(default_factory=dict)  # (tokenizer, text) -> tokens

    def count(self, tok: Tokenizer, text: str) -> int:
        """Token count, remembered across queries (a warm engine counts each text once)."""
        key = (tok.name, text)
        n = self._counts.get(key)
        if n is None:
            if len(self._counts) > 200_000:
                self._counts.clear()
            n = self._counts[key] = tok.count(text)
        return n

    def is_test(self, qualname: str) -> bool:
        hit = self._tests.get(qualname)
        if hit is None:
            hit = self._tests[qualname] = is_test_definition(self.graph.defs[qualname])
        return hit

    def direct_uses(self, qualname: str) -> dict[str, int]:
        """``graph.uses(qualname, nested=False)``, remembered (neighbours are asked about often)."""
        key = (qualname, False)
        hit = self._uses.get(key)
        if hit is None:
            hit = self._uses[key] = self.graph.uses(qualname, nested=False)
        return hit

    def all_uses(self, qualname: str) -> dict[str, int]:
        """``graph.uses(qualname)`` (nested definitions included), remembered."""
        key = (qualname, True)
        hit = self._uses.get(key)
        if hit is None:
            hit = self._uses[key] = self.graph.uses(qualname)
        return hit

    def file_symbols(self, path: str) -> list[Symbol]:
        if self._by_file is None:
            by: dict[str, list[Symbol]] = {}
            for s in self.index.symbols.values():
                by.setdefault(s.path, []).append(s)
            self._by_file = {p: sorted(v, key=lambda s: (s.start, s.qualname)) for p, v in by.items()}
        return self._by_file.get(path, [])

    def names(self) -> dict[str, list[str]]:
        if self._names is None:
            out: dict[str, list[str]] = {}
            for q in sorted(self.graph.defs):
                out.setdefault(q.rsplit(".", 1)[-1].rsplit(":", 1)[-1], []).append(q)
            self._names = out
        return self._names

    def matrix(self):
        """(nodes, index, row-stochastic transition matrix, dangling mask, its transpose) of `nx_graph`, built once."""
        if self._matrix is None:
            import numpy as np
            import scipy.sparse as sp

            g = self.nx_graph()
            nodes = list(g.nodes)
            a = nx.to_scipy_sparse_array(g, nodelist=nodes, weight="weight", format="csr", dtype=float)
            out = np.asarray(a.sum(axis=1)).ravel()
            inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
            p = sp.csr_array(sp.diags(inv) @ a)
            self._matrix = (nodes, {n: i for i, n in enumerate(nodes)}, p, out == 0, sp.csr_array(p.T))
        return self._matrix

    @classmethod
    def load(cls, store: Store, source_key: str, root: Path, index: Index | None = None, *,
             learned: bool = True) -> "ContextEngine":
        """``learned``: rank with the weights learned on this source (`regrow.context.learn`,
        fitted and stored on the first load that finds none); False: the hand `WEIGHTS`."""
        if not has_graph(store, source_key):
            raise RegrowError(f"no symbol graph for source {source_key}; grok it first (regrow grok SOURCE)")
        index = index or load_index(store, source_key)
        engine = cls(store, source_key, Path(root), index, load_graph(store, source_key),
                     load_git_facts(store, source_key), call_counts(store, source_key))
        if learned:
            engine.ranking = ensure_ranking(engine)
        return engine

    def weights_for(self, path: str) -> tuple[dict, dict, float]:
        """(weights of other files' candidates, weights of own-file candidates, own-file budget
        share) for a target in ``path``."""
        if self.ranking is None:
            return WEIGHTS, WEIGHTS, OWN_FILE_SHARE
        return self.ranking.for_path(path)

    # -- files ------------------------------------------------------------------------------
    def lines(self, path: str) -> list[str]:
        if path not in self._texts:
            text = read_source(self.root / path)[0]
            self._texts[path] = text.splitlines() if text is not None else []
        return self._texts[path]

    def span(self, d: Definition) -> tuple[int, int]:
        """(first line, last line) of a definition; classes and constants by indentation."""
        if d.qualname not in self._spans:
            self._spans[d.qualname] = self._span(d)
        return self._spans[d.qualname]

    def _span(self, d: Definition) -> tuple[int, int]:
        sym = self.index.symbols.get(d.qualname)
        if sym is not None:
            return sym.start, sym.end
        lines = self.lines(d.path)
        if not lines or d.line > len(lines):
            return d.line, d.line
        first = d.line
        while first <= len(lines) and lines[first - 1].lstrip().startswith("@"):
            first += 1
        indent = len(lines[first - 1]) - len(lines[first - 1].lstrip())
        end = first
        for n in range(first + 1, len(lines) + 1):
            text = lines[n - 1]
            if not text.strip():
                continue
            ind = len(text) - len(text.lstrip())
            if ind > indent or (ind == indent and text.lstrip()[:1] in ")]}"):
                end = n
            else:
                break
        return d.line, end

    # -- graph views --------------------------------------------------------------------------
    def nx_graph(self) -> nx.DiGraph:
        """Use edges both ways (callers weigh less) and containment (module/class ↔ member)."""
        if self._nx is None:
            weights: dict[tuple[str, str], float] = {}

            def add(a: str, b: str, w: float) -> None:
                weights[(a, b)] = weights.get((a, b), 0.0) + w

            for e in self.graph.edges:
                if e.kind in ("call", "reference", "signature", "inherit"):
                    add(e.src, e.dst, 1.0)
                    add(e.dst, e.src, 0.4)
            for q, d in self.graph.defs.items():
                add(d.container, q, 0.3)
                add(q, d.container, 0.6)
            g = nx.DiGraph()
            g.add_nodes_from(sorted({n for pair in weights for n in pair}))
            g.add_weighted_edges_from(sorted((a, b, w) for (a, b), w in weights.items()))
            self._nx = g
        return self._nx

    def bm25(self) -> tuple[bm25s.BM25, list[str]]:
        if self._bm25 is None:
            subjects, corpus = [], []
            for q, d in sorted(self.graph.defs.items()):
                if is_test_definition(d):
                    continue
                sym = self.index.symbols.get(q)
                text = d.local_name.replace(".", " ")
                if sym is not None:
                    text += f" {sym.signature} {(sym.docstring or '').split(chr(10) * 2)[0]}"
                subjects.append(q)
                corpus.append(words(text) or ["_"])
            retriever = bm25s.BM25()
            retriever.index(corpus, show_progress=False)
            self._bm25 = (retriever, subjects)
        return self._bm25

    def users(self, qualname: str, hidden: tuple[str, ...]) -> list[str]:
        """Sources of use edges into ``qualname``, hidden ones left out."""
        return sorted({e.src for e in self.graph.in_edges(qualname)
                       if e.kind in USE_KINDS and not _is_hidden(e.src, hidden)})

    def symbol(self, qualname: str) -> Symbol:
        sym = self.index.symbols.get(qualname)
        if sym is None:
            raise RegrowError(f"no function or method {qualname!r} in this source; "
                              "names look like pkg.module:function or pkg.module:Class.method")
        return sym

    def find(self, query: str, limit: int = 20) -> list[str]:
        """Definitions whose qualname contains ``query``, else the best BM25 matches."""
        q = query.strip()
        hits = sorted(s for s in self.graph.defs if q and q in s)
        if hits:
            return sorted(hits, key=lambda s: (len(s), s))[:limit]
        retriever, subjects = self.bm25()
        toks = words(q) or ["_"]
        docs, scores = retriever.retrieve([toks], k=min(limit, len(subjects)), show_progress=False)
        return [subjects[int(i)] for i, s in zip(docs[0], scores[0]) if s > 0]


def _is_hidden(qualname: str, hidden: tuple[str, ...]) -> bool:
    for h in hidden:
        if qualname.startswith(h) and (len(qualname) == len(h) or qualname[len(h)] == "."):
            return True
    return False


# --------------------------------------------------------------------------- ranking


def _signature_form(engine: ContextEngine, d: Definition, compact: bool = False) -> str:
    """Decorators, the ``def`` line(s) and the docstring's first line; ``compact`` (tight
    budgets): the ``def`` line(s) ending in ``...``, a constant's first line."""
    lines = engine.lines(d.path)
    sym = engine.index.symbols.get(d.qualname)
    if sym is not None:
        head = lines[sym.start - 1: sym.def_line - 1 + len(sym.signature.splitlines())]
        if compact and head:
            return textwrap.dedent("\n".join(head[:-1] + [head[-1].rstrip() + " ..."]))
        doc = (sym.docstring or "").strip().splitlines()
        indent = " " * (len(lines[sym.def_line - 1]) - len(lines[sym.def_line - 1].lstrip()) + 4) if lines else "    "
        body = f'{indent}"""{doc[0]}"""' if doc else f"{indent}..."
        return textwrap.dedent("\n".join(head + [body]))
    start, end = engine.span(d)
    if d.kind == "class":
        text = []
        for n in range(start, min(end, start + 30) + 1):
            text.append(lines[n - 1])
            if lines[n - 1].rstrip().endswith(":") and not lines[n - 1].lstrip().startswith("@"):
                break
        return textwrap.dedent("\n".join(text))
    if compact and end > start:
        return textwrap.dedent(lines[start - 1]).rstrip() + " ..."
    text = lines[start - 1: min(end, start + 7)]
    if end > start + 7:
        text.append("    ...")
    return textwrap.dedent("\n".join(text))


def _class_outline(engine: ContextEngine, d: Definition, hidden: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The class header, docstring line, attributes and method signatures (never a body)."""
    head = _signature_form(engine, d)
    parts, covers = [head], [d.qualname]
    sym_doc = None
    lines = engine.lines(d.path)
    start, end = engine.span(d)
    after = start + len(head.splitlines())  # the first line after the class header
    while after <= end and not lines[after - 1].strip():
        after += 1
    first = lines[after - 1].strip() if after <= end else ""
    if first.startswith(('"' * 3, "'" * 3, 'r"""')):
        sym_doc = first.lstrip("r").strip("\"'").strip()
    if sym_doc:
        parts.append(f'    """{sym_doc}"""')
    for member in engine.graph.members(d.qualname):
        md = engine.graph.defs[member]
        if _is_hidden(member, hidden[1:]):  # the target's own signature is visible in its file
            continue
        if md.kind == "attribute":
            text = _signature_form(engine, md).splitlines()
            parts.append(textwrap.indent(text[0] if text else md.local_name, "    "))
        elif md.kind in ("method", "class"):
            sig = _signature_form(engine, md).splitlines()
            if md.kind == "method":
                sig = [s for s in sig if s.strip()][:-1] or sig
                if sig:
                    sig[-1] = sig[-1] + " ..."
            else:
                sig = sig[:1]
            parts.append(textwrap.indent("\n".join(sig), "    "))
        covers.append(member)
    return "\n".join(parts), tuple(covers)


@dataclass(slots=True)
class _Features:
    values: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    weights: dict = field(default_factory=lambda: WEIGHTS)

    def add(self, name: str, value: float, reason: str) -> None:
        if value > self.values.get(name, 0.0):
            self.values[name] = value
            self.reasons[name] = reason

    def score(self) -> float:
        w = self.weights
        return sum(w.get(k, WEIGHTS[k]) * v for k, v in self.values.items())

    def best(self) -> tuple[str, str]:
        """The feature that contributes most, for the breadcrumb (a learned weight of 0 never wins
        over one that counts)."""
        w = self.weights
        name = max(self.values, key=lambda k: (w.get(k, WEIGHTS[k]) * self.values[k], self.reasons[k] != "", k))
        return name, self.reasons[name]


_CHANNEL_OF = {"uses": "uses", "signature": "signature", "docstring": "docstring", "orphan": "module",
               "class": "class", "class_orphan": "class", "module": "module", "tests": "tests-use",
               "ppr": "graph", "bm25": "lexical", "siblings_use": "graph", "file_use": "graph",
               "member": "module", "member_orphan": "module", "type_member": "signature"}


def _rank_definitions(engine: ContextEngine, target: Symbol, mode: str, hidden: tuple[str, ...],
                      tests: list[str], weights: dict | None = None,
                      own_weights: dict | None = None) -> dict[str, _Features]:
    """Every candidate definition with its feature values (``weights`` score those of other
    files, ``own_weights`` those of the target's file; the hand `WEIGHTS` when None). Nothing
    here reads the target's body: its edges are skipped."""
    g = engine.graph
    feats: dict[str, _Features] = {}
    weights = weights or WEIGHTS
    own_weights = own_weights or weights

    def f(q: str) -> _Features | None:
        d = g.defs.get(q)
        if d is None or q == target.qualname or _is_hidden(q, hidden) or engine.is_test(q) or _is_dunder_constant(d):
            return None
        x = feats.get(q)
        if x is None:
            x = feats[q] = _Features(weights=own_weights if d.path == target.path else weights)
        return x

    tq = target.qualname
    # Oracle: what the body uses, with its line.
    if mode == "oracle":
        for q, line in g.uses(tq).items():
            if (x := f(q)):
                x.add("uses", 1.0, f"the target uses it on line {line}")
    # Signature edges of the target (annotations, defaults, decorators).
    typed: dict[str, int] = {}
    for e in g.out_edges(tq):
        if e.kind == "signature" and (x := f(e.dst)):
            x.add("signature", 1.0, f"named in the target's signature on line {e.line}")
            if g.defs[e.dst].kind == "class":
                typed.setdefault(e.dst, e.line)
    # Members of the classes its signature names (not of their bases: they flood; not the
    # target's own class or its bases: the class channel has those).
    own_container = g.defs[tq].container if tq in g.defs else target.module
    own_mro = set(g.table.mro(own_container)) if g.table and own_container in g.defs else set()
    for cls, line in sorted(typed.items()):
        if cls in own_mro:
            continue
        for m in g.members(cls):
            if (x := f(m)):
                x.add("type_member", 1.0, f"{g.defs[m].kind} of `{_short(cls)}`, named in the target's signature")
    # Docstring mentions.
    if target.docstring:
        for name, qs in _mentioned(engine, target.module, target.docstring).items():
            for q in qs:
                if (x := f(q)):
                    x.add("docstring", 1.0, f"`{name}` is named in the target's docstring")
    # Class: siblings and inherited members.
    container = g.defs[tq].container if tq in g.defs else target.module
    if target.class_name and container in g.defs:
        mro = g.table.mro(container) if g.table else [container]
        for depth, cls in enumerate(mro):
            if (x := f(cls)) and depth > 0:
                x.add("class", 1.0, f"base class of `{_short(container)}`")
            members = g.members(cls)
            for m in members:
                if not (x := f(m)):
                    continue
                where = "of the same class" if depth == 0 else f"inherited from `{_short(cls)}`"
                x.add("class", 1.0 / (1 + 0.5 * depth), f"{g.defs[m].kind} {where}")
                same_class_users = [u for u in engine.users(m, hidden) if u.startswith(container + ".")]
                if not same_class_users and g.defs[m].kind in ("method", "attribute"):
                    x.add("class_orphan", 1.0 / (1 + depth), f"{g.defs[m].kind} {where}, used by no other method there")
        if (x := f(container)):
            x.add("class", 1.0, "the target's class")
    # Module: module-level definitions and imports.
    mod = target.module
    module_level = sorted(q for q in (g.table.members.get(mod, {}).values() if g.table else g.members(mod))
                          if q in g.defs and g.defs[q].container == mod)
    imported = {}
    imported_modules = {}  # ``from pkg import utils``: module -> alias
    if g.table:
        for alias, syn in sorted(g.table.binds.get(mod, {}).items()):
            q = g.table.resolve(syn)
            if q and q in g.defs:
                imported[q] = alias
            elif q and q in g.modules and q != mod:
                imported_modules.setdefault(q, alias)
    in_module = lambda src: src == mod or src.startswith(mod + ":")  # noqa: E731
    for q in sorted(set(module_level) | set(imported)):
        if not (x := f(q)):
            continue
        users = engine.users(q, hidden)
        local_users = [u for u in users if in_module(u)]
        d = g.defs[q]
        if q in imported:
            x.add("module", 1.0, f"imported by the target's module as `{imported[q]}`")
            if not local_users:
                x.add("orphan", 1.0, f"imported by the target's module as `{imported[q]}` and used by no other code there")
        else:
            x.add("module", 0.8, f"{d.kind} defined in the target's module")
            private = d.local_name.startswith("_")
            if not users and (private or d.kind == "constant"):
                x.add("orphan", 0.9, f"{d.kind} of the target's module used by no other code")
            elif not local_users:
                x.add("orphan", 0.5, f"{d.kind} of the target's module, not used elsewhere in it")
    # Members of the modules the target's module imports (``utils.helper`` through ``from pkg import utils``).
    for other, alias in sorted(imported_modules.items()):
        members = _module_members(engine, other)
        local = {q: [u for u in engine.users(q, hidden) if in_module(u)] for q in members}
        module_unused = not any(local.values())  # the import is there, and only the target can be using it
        for q in members:
            if not (x := f(q)):
                continue
            x.add("member", 1.0, f"member of `{alias}`, which the target's module imports")
            if not local[q]:
                x.add("member_orphan", 1.0 if module_unused else 0.5,
                      f"member of `{alias}` (imported by the target's module), used by no other code there")
    # Definitions the covering tests use.
    if tests:
        counts: dict[str, int] = {}
        test_funcs = [_test_qualname(engine, t) for t in tests]
        for tf in [t for t in test_funcs if t]:
            for q in engine.all_uses(tf):
                counts[q] = counts.get(q, 0) + 1
        n = max(1, len([t for t in test_funcs if t]))
        for q, c in counts.items():
            if (x := f(q)):
                x.add("tests", c / n, f"used by {c} of the target's {n} covering tests")
    # Neighbours' uses: what siblings (same class or same module) use.
    neighbours = [m for m in (g.members(container) if target.class_name else module_level)
                  if m != tq and not _is_hidden(m, hidden) and m in engine.index.symbols][:200]
    if neighbours:
        counts = {}
        for m in neighbours:
            for q in engine.direct_uses(m):
                counts[q] = counts.get(q, 0) + 1
        top = max(counts.values(), default=1)
        for q, c in counts.items():
            if (x := f(q)):
                who = "methods of the class" if target.class_name else "functions of the module"
                x.add("siblings_use", math.log1p(c) / math.log1p(top), f"used by {c} other {who}")
    # What the other definitions of the target's file use (methods of other classes included).
    in_file = [s.qualname for s in engine.file_symbols(target.path)
               if s.qualname != tq and not _is_hidden(s.qualname, hidden) and not s.is_test][:300]
    if in_file:
        counts = {}
        for m in in_file:
            for q in engine.direct_uses(m):
                counts[q] = counts.get(q, 0) + 1
        top = max(counts.values(), default=1)
        for q, c in counts.items():
            if (x := f(q)):
                x.add("file_use", math.log1p(c) / math.log1p(top), f"used by {c} other definitions of {target.path}")
    # Personalized PageRank around the target.
    for q, value, _ in _pagerank(engine, tq, mode, hidden):
        if (x := f(q)):
            x.add("ppr", value, "")  # the path is worked out only for what is shown
    # Lexical match.
    retriever, subjects = engine.bm25()
    query = words(f"{target.class_name or ''} {target.name} {target.signature} "
                  f"{(target.docstring or '').split(chr(10) * 2)[0]}") or ["_"]
    docs, scores = retriever.retrieve([query], k=min(100, len(subjects)), show_progress=False)
    top = float(scores[0][0]) if len(scores[0]) and scores[0][0] > 0 else 1.0
    for i, s in zip(docs[0], scores[0]):
        if s > 0 and (x := f(subjects[int(i)])):
            x.add("bm25", float(s) / top, "similar words in its name, signature or docstring")
    return feats


def _module_members(engine: ContextEngine, module: str) -> list[str]:
    """What ``module.X`` can reach: its own definitions, the names it imports (a package's
    re-exports) and the definitions of the modules it star-imports."""
    g = engine.graph
    if g.table is None:
        return g.members(module)
    hit = engine._members.get(module)
    if hit is None:
        out = set(g.table.members.get(module, {}).values())
        for syn in g.table.binds.get(module, {}).values():
            q = g.table.resolve(syn)
            if q in g.defs:
                out.add(q)
        for star in g.table.stars.get(module, ()):
            out.update(g.table.members.get(star, {}).values())
        hit = engine._members[module] = sorted(q for q in out if q in g.defs and g.defs[q].container != q)
    return hit


def _is_dunder_constant(d: Definition) -> bool:
    """``__all__``, ``__version__``, ...: module bookkeeping, never what a body needs."""
    return d.kind == "constant" and d.local_name.startswith("__") and d.local_name.endswith("__")


def _short(qualname: str) -> str:
    return qualname.split(":", 1)[-1]


def _module_names(engine: ContextEngine, module: str) -> dict[str, list[str]]:
    """Name -> definitions, as seen from ``module``: its own names and imports, else a unique-ish name."""
    g = engine.graph
    local: dict[str, list[str]] = {}
    for q in g.members(module):
        local[g.defs[q].local_name] = [q]
    if g.table:
        for alias, syn in g.table.binds.get(module, {}).items():
            q = g.table.resolve(syn)
            if q in g.defs:
                local[alias] = [q]
    return local


def _mentioned(engine: ContextEngine, module: str, text: str) -> dict[str, list[str]]:
    names = set(_IDENT.findall(text))
    local = _module_names(engine, module)
    everywhere = engine.names()
    return {n: local.get(n) or (everywhere.get(n, []) if len(everywhere.get(n, [])) <= 3 else [])
            for n in sorted(names)}


def _test_qualname(engine: ContextEngine, test_id: str) -> str | None:
    """``tests/test_x.py::TestC::test_y[param]`` -> the graph's qualname of that test function."""
    path, _, rest = test_id.partition("::")
    rest = rest.split("[", 1)[0].replace("::", ".")
    if engine._by_local is None:
        by: dict[tuple[str, str], str] = {}
        for q, d in sorted(engine.graph.defs.items()):
            by.setdefault((d.path, d.local_name), q)
        engine._by_local = by
    return engine._by_local.get((path, rest))


def _pagerank(engine: ContextEngine, tq: str, mode: str, hidden: tuple[str, ...]) -> list[tuple[str, float, str]]:
    """Personalized PageRank seeded at the target over the whole graph (power iteration on the
    networkx graph's transition matrix). In task mode the target's body edges (both directions)
    and everything nested in it are cut first, by correcting the few rows they touch."""
    import numpy as np

    nodes, index, p, dangling, pt = engine.matrix()
    if tq not in index:
        return []
    g = engine.nx_graph()
    t = index[tq]
    cut: set[tuple[str, str]] = set()
    if mode == "task":
        inside = [tq, *engine.graph.nested(tq)]
        for src in inside:
            for e in engine.graph.out_edges(src):
                if e.kind in USE_KINDS:
                    cut.add((src, e.dst))
                    cut.add((e.dst, src))
        for n in inside[1:]:
            if n in g:
                cut.update((n, b) for b in g.successors(n))
                cut.update((a, n) for a in g.predecessors(n))
        cut.update((tq, n) for n in inside[1:])
    rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for a in sorted({a for a, _ in cut if a in index}):
        ia = index[a]
        old_cols = p.indices[p.indptr[ia]: p.indptr[ia + 1]]
        old_vals = p.data[p.indptr[ia]: p.indptr[ia + 1]]
        keep = [(index[b], w["weight"]) for b, w in g[a].items() if (a, b) not in cut]
        total = sum(w for _, w in keep)
        new_cols = np.array([c for c, _ in keep], dtype=np.int64)
        new_vals = np.array([w / total for _, w in keep]) if total > 0 else np.zeros(0)
        rows[ia] = (old_cols, old_vals, new_cols, new_vals)
    now_dangling = dangling.copy()
    for ia, (_, _, cols, _) in rows.items():
        now_dangling[ia] = len(cols) == 0
    alpha = 0.85
    x = np.zeros(len(nodes))
    x[t] = 1.0
    for _ in range(100):
        y = alpha * (pt @ x)  # x @ p, with the transpose built once
        for ia, (oc, ov, nc, nv) in rows.items():
            if x[ia]:
                np.subtract.at(y, oc, alpha * x[ia] * ov)
                np.add.at(y, nc, alpha * x[ia] * nv)
        y[t] += alpha * x[now_dangling].sum() + (1 - alpha)
        done = np.abs(y - x).sum() < 1e-10
        x = y
        if done:
            break
    order = np.argsort(-x, kind="stable")
    out, top = [], None
    for i in order[: MAX_CANDIDATES * 8]:
        q = nodes[int(i)]
        if x[i] <= 0:
            break
        if q == tq or q not in engine.graph.defs or engine.is_test(q) or _is_hidden(q, hidden):
            continue  # test code is never a definition candidate: it must not take a candidate's place
        top = top or float(x[i])
        out.append((q, float(x[i]) / top, ""))
        if len(out) >= MAX_CANDIDATES:
            break
    return out


def _graph_path(engine: ContextEngine, tq: str, q: str, hidden: tuple[str, ...]) -> str:
    """The breadcrumb of a graph-ranked definition: the shortest path from the target, as text."""
    g = engine.nx_graph()
    if tq not in g or q not in g:
        return "graph: near the target"
    near = sorted(n for n in set(g.successors(tq)) | set(g.predecessors(tq)) if not _is_hidden(n, hidden))
    if q in near:
        return f"graph: {_short(tq)} → {_short(q)}"
    for n in near:
        if g.has_edge(n, q) or g.has_edge(q, n):
            return f"graph: {_short(tq)} → {_short(n)} → {_short(q)}"
    return f"graph: 3+ steps from {_short(tq)}"


# --------------------------------------------------------------------------- candidates


COMPACT_BELOW = 4500  # budgets under this show compact signatures, each under its reason alone


def _definition_candidates(engine: ContextEngine, target: Symbol, mode: str, hidden: tuple[str, ...],
                           tests: list[str], weights: dict | None = None,
                           own_weights: dict | None = None, compact: bool = False) -> list[_Candidate]:
    feats = _rank_definitions(engine, target, mode, hidden, tests, weights, own_weights)
    ranked = sorted(feats.items(), key=lambda kv: (-kv[1].score(), kv[0]))[:MAX_CANDIDATES]
    out = []
    for q, x in ranked:
        d = engine.graph.defs[q]
        name, _ = x.best()

        def build(c: _Candidate, d: Definition = d, x: _Features = x, name: str = name) -> None:
            q = d.qualname
            if compact:  # the signature under it names the definition: the reason alone
                c.breadcrumb = x.reasons[name] or "near the target in the graph"
            else:
                reason = x.reasons[name] or _graph_path(engine, target.qualname, q, hidden)
                others = [r for k, r in sorted(x.reasons.items()) if k != name and r and r not in reason
                          and len(reason) + len(r) < 110][:1]  # a second one while the line stays short
                c.breadcrumb = f"{_short(q)} — {reason}" + (f"; {others[0]}" if others else "")
            start, end = engine.span(d)
            sig = _signature_form(engine, d, compact)
            forms = [("signature", sig)]
            c.body_covers = (q,)
            if d.kind == "class":
                outline, c.body_covers = _class_outline(engine, d, hidden)
                if outline.strip() != sig.strip():
                    forms.append(("body", outline))
            elif d.kind in ("function", "method") and not _overlaps(d.path, start, end, target, mode):
                body = textwrap.dedent("\n".join(engine.lines(d.path)[start - 1: end]))
                if body.strip() != sig.strip():
                    forms.append(("body", body))
            c.forms = forms

        out.append(_Candidate(q, _CHANNEL_OF[name], x.score(), "", d.path, d.line, None, (q,), build=build))
    return out


def _overlaps(path: str, start: int, end: int, target: Symbol, mode: str) -> bool:
    """Whether a span shows part of the target's hidden body (task mode)."""
    return mode == "task" and path == target.path and start <= target.end and end >= target.body_start


def _caller_candidates(engine: ContextEngine, target: Symbol, hidden: tuple[str, ...],
                       tests: list[str]) -> list[_Candidate]:
    out = []
    seen: set[str] = {q for t in tests if (q := _test_qualname(engine, t))}  # shown as tests already
    for i, e in enumerate(engine.graph.callers(target.qualname)):
        if e.src in seen or _is_hidden(e.src, hidden):
            continue
        d = engine.graph.defs.get(e.src)
        if d is None or not engine.lines(d.path):
            continue
        seen.add(e.src)
        lines = engine.lines(d.path)
        start, end = engine.span(d)
        lo, hi = max(start, e.line - CALLER_WINDOW), min(end, e.line + CALLER_WINDOW)
        if _overlaps(d.path, lo, hi, target, "task"):
            continue
        window = "\n".join(lines[lo - 1: hi])
        forms = [("signature", textwrap.dedent(window))]
        if not _overlaps(d.path, start, end, target, "task") and end - start < 60:
            forms.append(("body", textwrap.dedent("\n".join(lines[start - 1: end]))))
        verb = "calls" if e.kind == "call" else "refers to"
        test = is_test_definition(d)
        prior = PRIOR_CALLER * (0.6 if test else 1.0) / (1 + 0.3 * len(out))
        out.append(_Candidate(e.src, "caller", prior, f"{_short(e.src)} {verb} the target on line {e.line}",
                              d.path, lo, forms, (), (e.src,) if len(forms) > 1 else ()))
    return out


def _test_candidates(engine: ContextEngine, target: Symbol, tests: list[str]) -> list[_Candidate]:
    found = []
    seen: set[str] = set()
    for t in tests:
        q = _test_qualname(engine, t)
        d = engine.graph.defs.get(q) if q else None
        if d is None or q in seen:
            continue  # parametrized ids of one test function show the same code: once
        seen.add(q)
        start, end = engine.span(d)
        found.append((end - start, t, q, d, start, end))
    out = []
    for rank, (_, t, q, d, start, end) in enumerate(sorted(found)):
        lines = engine.lines(d.path)[start - 1: end]
        head = textwrap.dedent("\n".join(lines[:6] + (["    ..."] if len(lines) > 6 else [])))
        body = textwrap.dedent("\n".join(lines[:TEST_LINES] + (["    ..."] if len(lines) > TEST_LINES else [])))
        forms = [("signature", head)] + ([("body", body)] if body != head else [])
        out.append(_Candidate(t, "test", PRIOR_TEST / (1 + 0.25 * rank), f"tests it: {t}", d.path, start, forms, ()))
    return out


def _facts_candidates(engine: ContextEngine, target: Symbol) -> list[_Candidate]:
    out = []
    summary = runtime_facts.summarize(engine.store, engine.source_key, target.qualname)
    if summary is not None:
        text = f"## Runtime facts (recorded at the target's boundary while the tests ran)\n{summary.text()}"
        first = summary.sentences()[0] if summary.sentences() else f"{summary.calls} calls recorded"
        out.append(_Candidate(f"runtime:{target.qualname}", "runtime", PRIOR_RUNTIME, first, "", 0,
                              [("facts", text)], ()))
    facts = engine.git.get(target.path)
    if facts:
        lines = [f"## Git history of {target.path}",
                 f"- {facts['commits']} commits by {facts['authors']} authors; last change {facts['last_rev']}: "
                 f"{facts['last_subject']}"]
        history = gitfacts.symbol_history(engine.root, target.path, target.def_line, target.def_line)
        if history:
            lines.append(f"- `{target.name}` last changed in {history[0]['rev']}: {history[0]['subject']} "
                         f"({len(history)} recent commits touch its signature)")
        if facts.get("co_changed"):
            lines.append("- changes together with: " + ", ".join(f"{p} ({n}x)" for p, n in facts["co_changed"]))
        out.append(_Candidate(f"git:{target.path}", "git", PRIOR_GIT,
                              f"{target.path} changed in {facts['commits']} commits", "", 0,
                              [("facts", "\n".join(lines))], ()))
    return out


def _oracle_candidate(engine: ContextEngine, target: Symbol) -> _Candidate:
    lines = engine.lines(target.path)
    body = textwrap.dedent("\n".join(lines[target.start - 1: target.end]))
    return _Candidate(target.qualname, "target", 100.0, "the target itself, reference body included (oracle mode)",
                      target.path, target.start, [("body", body)], (target.qualname,))


# --------------------------------------------------------------------------- packing


def build_context(engine: ContextEngine, target: str, *, budget: int, tokenizer: Tokenizer | str,
                  mode: str = "task") -> ContextPack:
    """Rank and pack the context of ``target`` (a qualname) under ``budget`` tokens."""
    if mode not in MODES:
        raise RegrowError(f"unknown context mode {mode!r}: use task or oracle")
    tok = resolve_tokenizer(tokenizer)
    sym = engine.symbol(target)
    hidden = (target,) if mode == "task" else ()
    tests = list(engine.index.covering(target))
    cands = _facts_candidates(engine, sym)
    callers = _caller_candidates(engine, sym, hidden, tests)
    shown_as_caller = {c.subject for c in callers}
    weights, own_weights, own_share = engine.weights_for(sym.path)
    cands += [c for c in _definition_candidates(engine, sym, mode, hidden or (target,), tests, weights, own_weights,
                                                compact=budget < COMPACT_BELOW)
              if c.subject not in shown_as_caller]
    cands += callers
    cands += _test_candidates(engine, sym, tests)
    if mode == "oracle":
        cands.append(_oracle_candidate(engine, sym))
    cands.sort(key=lambda c: (-c.score, c.subject))
    items, tokens = _fit(engine, cands, budget, tok, target, mode, own_share)
    ranking = {"learned": False, "weights": dict(weights), "own_file_weights": dict(own_weights),
               "own_share": own_share}
    if engine.ranking is not None:
        fold = engine.ranking.fold_of(sym.path)
        ranking.update(learned=bool(engine.ranking.learned[fold]), fold=fold, examples=engine.ranking.examples)
    return ContextPack(target, mode, budget, tok.name, tuple(items), tokens, ranking)


def signature_share(budget: int) -> float:
    """The share of the budget given to signatures before any body: 95% up to 1.2k, 5/6 at 4k,
    60% from 9.6k (breadth first: what exists and how it is called, then how some of it works)."""
    return min(0.95, max(0.6, 1 - budget / 24000))


def _pack(engine: ContextEngine, cands: list[_Candidate], budget: int, tok: Tokenizer, target: str,
          mode: str, own_share: float = OWN_FILE_SHARE) -> list[ContextItem]:
    """Signatures in rank order, then bodies in rank order, then trim until the render fits.

    Costs while choosing add up per-chunk counts (remembered by the engine); the render is then
    counted whole, exactly, and the lowest-ranked items dropped until it fits the budget.
    """
    count = lambda text: engine.count(tok, text)  # noqa: E731
    header = count(_header(target, mode))
    if header >= budget:
        return []
    used = header
    chosen: dict[str, tuple[_Candidate, int]] = {}  # subject -> (candidate, form index)
    sections: set[str] = set()
    section_end = count(_SECTION_END) + 1

    def cost(c: _Candidate, k: int) -> int:
        """The chunk's tokens, counted as it is rendered (remembered across queries), plus the
        one that joining it to its neighbours costs on average (measured: ~1 a chunk)."""
        form, text = c.forms[k]
        return count(_chunk(text, c.breadcrumb, form)) + 1

    own_path = engine.index.symbols[target].path if target in engine.index.symbols else None
    own_room = int((budget - header) * own_share)  # the target's own file: the task prompt shows it anyway

    def is_own(c: _Candidate) -> bool:
        return c.path == own_path and c.forms[0][0] != "facts"

    def add_signatures(limit: int, own_capped: bool = True) -> None:
        """Signatures (or the only form) in rank order until ``limit`` is crossed (the item that
        crosses it still goes in if it fits the budget); a miss skips to the next candidate.
        Items from the target's own file take at most ``own_room`` unless ``own_capped`` is off."""
        nonlocal used, own_room
        misses = 0
        for c in cands:
            if used >= limit or budget - used < 12 or misses > 60:
                break
            if c.subject in chosen:
                continue
            c.ready()
            new_section = c.forms[0][0] != "facts" and c.path not in sections
            need = cost(c, 0) + (count(f"## {c.path}\n```python\n") + section_end if new_section else 0)
            own = is_own(c)
            if own and own_capped and need > own_room:
                continue
            if used + need <= budget:
                chosen[c.subject] = (c, 0)
                if c.forms[0][0] != "facts":
                    sections.add(c.path)
                used += need
                if own:
                    own_room -= need
                misses = 0
            else:
                misses += 1

    # 1. signatures first, in rank order, up to a share of the budget that grows as it gets tight
    add_signatures(header + int((budget - header) * signature_share(budget)))
    # 2. bodies of those, in rank order, while they fit (a body far too big is not even counted);
    #    the target's own file stays within its share
    for c in cands:
        if c.subject in chosen and len(c.forms) > 1:
            if len(c.forms[1][1]) > 6 * (budget - used) + len(c.forms[0][1]):
                continue
            extra = cost(c, 1) - cost(c, 0)
            own = is_own(c)
            if own and extra > own_room:
                continue
            if used + extra <= budget:
                chosen[c.subject] = (c, 1)
                used += extra
                if own:
                    own_room -= extra
    # 3. more signatures in what is left: other files first, then the own file fills the rest
    add_signatures(budget)
    add_signatures(budget, own_capped=False)
    order = [c.subject for c in cands if c.subject in chosen]
    items = [_item(c, k, count(_chunk(c.forms[k][1], c.breadcrumb, c.forms[k][0])))
             for c, k in (chosen[s] for s in order)]
    return items


def _fit(engine: ContextEngine, cands: list[_Candidate], budget: int, tok: Tokenizer, target: str,
         mode: str, own_share: float = OWN_FILE_SHARE) -> tuple[list[ContextItem], int]:
    """Pack, then count the whole render: if the estimate was short, pack again with the
    overshoot taken off (twice at most), then drop the lowest-ranked items until it fits.
    Returns the items and the render's exact token count."""
    room = budget
    for _ in range(3):
        items = _pack(engine, cands, room, tok, target, mode, own_share)
        tokens = tok.count(render_markdown(target, mode, items))
        if tokens <= budget:
            return items, tokens
        room -= tokens - budget + 2
    while items and tokens > budget:
        items.pop()
        tokens = tok.count(render_markdown(target, mode, items))
    return items, tokens


def _item(c: _Candidate, k: int, tokens: int) -> ContextItem:
    """``tokens``: the chunk as rendered; a file section's own lines are not in any item."""
    form, text = c.forms[k]
    covers = c.body_covers if form == "body" and c.body_covers else c.covers
    return ContextItem(subject=c.subject, channel=c.channel, path=c.path, line=c.line, text=text, tokens=tokens,
                       score=c.score, breadcrumb=c.breadcrumb, form=form, covers=covers)


# --------------------------------------------------------------------------- learned ranking


def example_targets(engine: ContextEngine, limit: int = learn.MAX_EXAMPLES, seed: int = 0) -> list[str]:
    """The source's labelled examples: functions and methods (not tests, not stubs) whose body
    uses a repository definition, up to ``limit`` chosen by a seeded hash."""
    g = engine.graph
    pool = [s.qualname for s in engine.index.symbols.values()
            if not s.is_test and "stub" not in s.flags and s.n_statements >= 1 and s.qualname in g.defs
            and not engine.is_test(s.qualname) and _gold_uses(engine, s.qualname)]
    pool.sort(key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    return pool[:limit]


def _gold_uses(engine: ContextEngine, qualname: str) -> set[str]:
    return {q for q in engine.graph.uses(qualname) if not engine.is_test(q)}


def example_rows(engine: ContextEngine, qualname: str) -> tuple[str, list[list[float]], list[int], list[bool], int, int]:
    """One example: (its file, the task-mode feature rows of its candidates, whether its body
    uses each, whether each is in its file, its in-file uses, all its uses). Its own body is
    hidden exactly as a target's is."""
    sym = engine.index.symbols[qualname]
    feats = _rank_definitions(engine, sym, "task", (qualname,), list(engine.index.covering(qualname)))
    gold = _gold_uses(engine, qualname)
    rows, labels, own = [], [], []
    for q, x in sorted(feats.items()):
        rows.append([float(x.values.get(k, 0.0)) for k in TASK_FEATURES])
        labels.append(int(q in gold))
        own.append(engine.graph.defs[q].path == sym.path)
    in_file = sum(1 for q in gold if engine.graph.defs[q].path == sym.path)
    return sym.path, rows, labels, own, in_file, len(gold)


def fit_ranking(engine: ContextEngine, *, limit: int = learn.MAX_EXAMPLES, seed: int = 0,
                folds: int = learn.FOLDS) -> "learn.RankingModel":
    """Learn the feature weights on the source's own functions (K folds by file, see `regrow.context.learn`)."""
    import time

    t0 = time.perf_counter()
    examples = [example_rows(engine, q) for q in example_targets(engine, limit, seed)]
    hand = {k: WEIGHTS[k] for k in TASK_FEATURES}
    return learn.fit(examples, hand, OWN_FILE_SHARE, folds=folds, seconds=time.perf_counter() - t0)


def ensure_ranking(engine: ContextEngine, *, refit: bool = False) -> "learn.RankingModel":
    """The stored learned ranking of the engine's source; fitted and stored first when there is
    none (or it was fitted on another feature list)."""
    model = None if refit else learn.stored_model(engine.store, engine.source_key, TASK_FEATURES, FEATURES_VERSION)
    if model is None:
        model = replace(fit_ranking(engine), version=FEATURES_VERSION)
        learn.store_model(engine.store, engine.source_key, model)
    return model


def ranking_summary(engine: ContextEngine) -> dict:
    """What ``regrow context --json`` and docs report: the learned weights beside the hand ones."""
    if engine.ranking is None:
        return {"learned_folds": 0, "weights": {k: WEIGHTS[k] for k in TASK_FEATURES}, "note": "hand weights"}
    return engine.ranking.summary({k: WEIGHTS[k] for k in TASK_FEATURES})


# --------------------------------------------------------------------------- for the model loop

_ENGINES: dict[tuple[str, str, str], ContextEngine] = {}


def engine_for(store: Store, source_key: str, root: Path) -> ContextEngine:
    """A loaded engine, kept for the process (the model loop asks for many tasks of one source)."""
    key = (str(store.path), source_key, str(root))
    if key not in _ENGINES:
        if len(_ENGINES) >= 4:
            _ENGINES.pop(next(iter(_ENGINES)))
        _ENGINES[key] = ContextEngine.load(store, source_key, Path(root))
    return _ENGINES[key]


def context_for_task(task, *, store: Store, source_key: str, root: Path | str, budget: int = 4000,
                     tokenizer: Tokenizer | str = "smollm2") -> str:
    """Markdown context for a hollowed task, in task mode (what a solver may see)."""
    engine = engine_for(store, source_key, Path(root))
    return build_context(engine, task.task_id, budget=budget, tokenizer=tokenizer, mode="task").render("md")


def resolve_symbol(engine: ContextEngine, name: str) -> str:
    """A function's qualname from a qualname or an unambiguous tail (``Class.meth``, ``func``)."""
    if name in engine.index.symbols:
        return name
    tails = sorted(q for q in engine.index.symbols if q.endswith((":" + name, "." + name)))
    if len(tails) == 1:
        return tails[0]
    hint = tails[:8] or engine.find(name, limit=8)
    raise RegrowError(f"no single function named {name!r}" + (f"; candidates: {', '.join(hint)}" if hint else ""))
