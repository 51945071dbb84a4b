"""The symbol graph: which definition uses which, resolved statically (part of grok).

Two steps, so that a changed file is re-read alone:

1. `extract` reads one file (``ast``) and says what it defines (functions, methods, classes,
   module constants, class attributes), what its module-level imports bind, and what each
   definition refers to, as *syntactic* paths (``pkg.mod:Name.attr`` or ``a.b.c``). Names are
   looked up the way Python does: locals, enclosing functions, module globals, imports;
   ``self``/``cls`` name the method's class, ``super()`` its bases, an annotated parameter or a
   variable assigned from ``Class(...)`` names that class, and ``self.x = Class(...)`` types
   the instance attribute ``x`` for every method of the class.
2. `resolve` turns those paths into definitions of the repository, following re-exports
   (``from regrow.core import f`` in ``__init__.py``), submodules, star imports and inheritance
   (method lookup walks the bases). What does not resolve to the repository (the standard
   library, third-party packages, dynamic attributes) is dropped.

Edges (``Edge.kind``):

* ``call`` / ``reference``: a name used in a body (called or not);
* ``signature``: a decorator, annotation or default value in a ``def`` or ``class`` header;
* ``inherit``: a class and its base;
* ``import``: a module and a repository module it imports.

Stored in the ``edges`` table with more kinds that let one file be resolved again without
reading the others: ``define:<kind>`` (container → definition, line = first line), ``bind``
(``mod:alias`` → the syntactic target of a module-level import), ``base`` and ``type``
(``mod:f`` → the class its return annotation names; ``mod:Cls#attr`` → what an instance
attribute was assigned: ``self.stream = env.tokenize(src)`` types ``self.stream.x`` in every
file through ``tokenize``'s ``-> TokenStream``).
"""

from __future__ import annotations

import ast
import bisect
import builtins
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from regrow.core import pyast
from regrow.grok.parse import is_test_path, read_source
from regrow.store import Store
from regrow.store.graph import has_edges, importers, replace_edges, replace_module_edges, structure_rows, use_rows
from regrow.store.index import file_modules
from regrow.store.ranking import drop_ranking

USE_KINDS = ("call", "reference")  # what a body uses
GRAPH_VERSION = 2  # bump when resolution changes: stored graphs are built again (2: return annotations)
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True, slots=True)
class Definition:
    """Something a name can resolve to: function, method, class, constant or class attribute."""

    qualname: str  # "pkg.mod:Class.meth"; module-level constants are "pkg.mod:NAME"
    kind: str  # "function" | "method" | "class" | "constant" | "attribute"
    path: str
    line: int  # first line (decorators included)

    @property
    def module(self) -> str:
        return self.qualname.split(":", 1)[0]

    @property
    def local_name(self) -> str:
        return self.qualname.split(":", 1)[1]

    @property
    def container(self) -> str:
        """The module or class (qualname) holding this definition."""
        mod, local = self.qualname.split(":", 1)
        head = local.rpartition(".")[0]
        return f"{mod}:{head}" if head else mod


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    src: str
    dst: str
    kind: str
    line: int


@dataclass(slots=True)
class FileFacts:
    """What one file says before it is resolved against the others."""

    path: str
    module: str
    defs: list[Definition] = field(default_factory=list)
    binds: dict[str, str] = field(default_factory=dict)  # module-level alias -> syntactic target
    stars: list[str] = field(default_factory=list)  # modules star-imported at module level
    refs: list[Edge] = field(default_factory=list)  # dst is a syntactic path
    # What a value's type is, as a syntactic path: a function's annotated return class
    # (``mod:f`` -> ``mod:Cls``) and an instance attribute's (``mod:Cls#attr`` -> the class,
    # or the function whose result it was assigned)
    types: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def exported(self) -> frozenset[str]:
        """Names other files can import from this one, and the value types they can reach
        through it (a change here may change their edges)."""
        return frozenset([d.qualname for d in self.defs] + list(self.binds) + self.stars
                         + [f"{key}->{path}" for key, path in self.types.items()])


# --------------------------------------------------------------------------- extraction


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module of a (possibly relative) ``from  import``."""
    if level == 0:
        return name or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    base = ".".join(parts)
    if name:
        return f"{base}.{name}" if base else name
    return base


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; ``super().m`` as ["super()", "m"]; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super":
        parts.append("super()")
    else:
        return None
    parts.reverse()
    return parts


def _annotation_chain(node: ast.expr | None) -> list[str] | None:
    """The class an annotation names: ``Foo``, ``m.Foo``, ``Optional[Foo]``, ``Foo | None``, ``"Foo"``."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = pyast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        for side in (node.left, node.right):
            if not (isinstance(side, ast.Constant) and side.value is None):
                return _annotation_chain(side)
        return None
    if isinstance(node, ast.Subscript):
        outer = _chain(node.value)
        if outer and outer[-1] in ("Optional", "Annotated", "Type", "type", "ClassVar", "Final"):
            inner = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
            return _annotation_chain(inner)
        return outer
    return _chain(node)


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BLOCKS = (ast.If, ast.Try, ast.With, ast.AsyncWith, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))


@dataclass(slots=True)
class _Raw:
    """One pass over a body: what it binds, what it loads, and the definitions nested in it."""

    names: set[str] = field(default_factory=set)
    globals: set[str] = field(default_factory=set)
    binds: dict[str, str] = field(default_factory=dict)  # function-level imports
    assigns: list[tuple[str, list[str]]] = field(default_factory=list)  # x = Chain(...)
    self_attrs: list[tuple[str, ast.expr | None, bool]] = field(default_factory=list)  # (target, value, annotated)
    chains: list[tuple[list[str], int, str]] = field(default_factory=list)  # (dotted parts, line, kind)
    children: list[ast.AST] = field(default_factory=list)  # nested defs, classes and lambdas


def _scan(nodes: Iterable[ast.AST | None], module: str, is_package: bool, kind: str | None = None) -> _Raw:
    raw = _Raw()
    stack = [n for n in nodes if n is not None]
    stack.reverse()
    chains, names = raw.chains, raw.names
    while stack:
        node = stack.pop()
        t = type(node)
        if t is ast.Name:
            if isinstance(node.ctx, ast.Load):
                chains.append(([node.id], node.lineno, kind or "reference"))
            else:
                names.add(node.id)
            continue
        if t is ast.Attribute:
            if isinstance(node.ctx, ast.Load):
                parts = _chain(node)
                if parts is not None:
                    chains.append((parts, node.lineno, kind or "reference"))
                    if kind is None:
                        chains.extend((parts[:k], node.lineno, "prefix") for k in range(2, len(parts)))
                    continue
            stack.append(node.value)
            continue
        if t is ast.Call:
            parts = _chain(node.func)
            children = [*node.keywords, *node.args]
            if parts is not None:
                chains.append((parts, node.lineno, kind or "call"))
                if kind is None:
                    chains.extend((parts[:k], node.lineno, "prefix") for k in range(2, len(parts)))
                base = node.func
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Call):  # super(A, self).m(...)
                    children.extend(base.args)
            else:
                children.append(node.func)
            stack.extend(reversed(children))
            continue
        if t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            names.add(node.name)
            raw.children.append(node)
            continue
        if t is ast.Lambda:
            raw.children.append(node)
            continue
        if t is ast.Assign:
            if len(node.targets) == 1:
                target = node.targets[0]
                if type(target) is ast.Name and type(node.value) is ast.Call:
                    parts = _chain(node.value.func)
                    if parts:
                        raw.assigns.append((target.id, parts))
                elif type(target) is ast.Attribute and type(target.value) is ast.Name:
                    raw.self_attrs.append((target, node.value, False))
        elif t is ast.AnnAssign:
            target = node.target
            if type(target) is ast.Attribute and type(target.value) is ast.Name:
                raw.self_attrs.append((target, node.annotation, True))
        elif t is ast.Import or t is ast.ImportFrom:
            for alias in node.names:
                if alias.name == "*":
                    continue
                if t is ast.Import:
                    top = alias.name.split(".")[0]
                    raw.binds[alias.asname or top] = alias.name if alias.asname else top
                else:
                    base = _absolute(module, is_package, node.level, node.module)
                    raw.binds[alias.asname or alias.name] = f"{base}:{alias.name}"
            continue
        elif t is ast.Global:
            raw.globals.update(node.names)
            continue
        elif t is ast.Nonlocal:
            continue
        elif t is ast.ExceptHandler or t is ast.MatchAs or t is ast.MatchStar:
            if node.name:
                names.add(node.name)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return raw


def _params(args: ast.arguments) -> list[ast.arg]:
    out = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    return out + [a for a in (args.vararg, args.kwarg) if a is not None]


@dataclass(slots=True)
class _Scope:
    qualname: str  # the definition refs are attributed to
    kind: str  # "module" | "class" | "function"
    names: set[str] = field(default_factory=set)  # bound locally
    types: dict[str, str] = field(default_factory=dict)  # local -> syntactic path of its class
    local_binds: dict[str, str] = field(default_factory=dict)  # function-level imports
    self_name: str | None = None
    class_path: str | None = None  # the enclosing class of a method
    class_bases: tuple[str, ...] = ()


class _Extractor:
    def __init__(self, path: str, module: str, is_package: bool):
        self.facts = FileFacts(path, module)
        self.module, self.is_package = module, is_package
        self.module_names: set[str] = set()  # defined at module level (defs, classes, assignments)
        self.attr_types: dict[str, dict[str, str]] = {}  # class path -> instance attribute -> type path

    def scan(self, nodes, kind: str | None = None) -> _Raw:
        return _scan(nodes, self.module, self.is_package, kind)

    # -- names --------------------------------------------------------------------------
    def path_of(self, parts: list[str], scopes: list[_Scope]) -> str | None:
        """The syntactic path of a dotted name as seen from the innermost scope ("|" joins several)."""
        head, rest = parts[0], parts[1:]
        if head == "super()":
            inner = next((s for s in reversed(scopes) if s.kind == "function"), None)
            if inner is None or inner.class_path is None or not rest:
                return None
            return "|".join(f"{b}.{'.'.join(rest)}" for b in inner.class_bases) or None
        innermost = scopes[-1]
        for scope in reversed(scopes):
            if scope.kind == "function":
                if head in scope.local_binds:
                    return _join(scope.local_binds[head], rest)
                if head == scope.self_name and scope.class_path:
                    if not rest:
                        return None
                    attr_type = self.attr_types.get(scope.class_path, {}).get(rest[0])
                    if attr_type and len(rest) > 1:
                        return "?" + _join(attr_type, rest[1:])
                    return f"!{scope.class_path}#{'.'.join(rest)}"  # a member of the class, or nothing
                if head in scope.types:
                    return "?" + _join(scope.types[head], rest) if rest else None
                if head in scope.names:
                    return None
            elif scope.kind == "class" and scope is innermost and head in scope.names:
                return _join(f"{scope.qualname}.{head}", rest)  # class bodies only see their own names
        if head in self.facts.binds:
            return _join(self.facts.binds[head], rest)
        if head in self.module_names:
            return _join(f"{self.module}:{head}", rest)
        if head in _BUILTINS:
            return None
        if self.facts.stars:
            return _join(f"{self.module}:{head}", rest)  # maybe from a star import
        return None

    def emit(self, scopes: list[_Scope], raw: _Raw, kind: str | None = None) -> None:
        src = scopes[-1].qualname
        refs = self.facts.refs
        for parts, line, k in raw.chains:
            path = self.path_of(parts, scopes)
            if path:
                for p in path.split("|"):
                    refs.append(Edge(src, p, kind or k, line))
        for child in raw.children:
            self.visit_def(child, scopes)

    def code(self, scopes: list[_Scope], nodes, kind: str | None = None) -> None:
        """Refs of code that runs in the innermost scope (module or class level, or a header)."""
        self.emit(scopes, self.scan(nodes, kind))

    # -- definitions --------------------------------------------------------------------
    def module_level(self, tree: ast.Module) -> None:
        for node in _flatten(tree.body):
            if isinstance(node, _DEFS):
                self.module_names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for sub in ast.walk(t):
                        if isinstance(sub, ast.Name):
                            self.module_names.add(sub.id)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    self.facts.binds[alias.asname or top] = alias.name if alias.asname else top
                    self.facts.refs.append(Edge(self.module, alias.name, "import", node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(self.module, self.is_package, node.level, node.module)
                self.facts.refs.append(Edge(self.module, base, "import", node.lineno))
                for alias in node.names:
                    if alias.name == "*":
                        self.facts.stars.append(base)
                    else:
                        self.facts.binds[alias.asname or alias.name] = f"{base}:{alias.name}"
        self.module_names -= set(self.facts.binds)
        self.visit_body(tree.body, [_Scope(self.module, "module")], container=self.module, in_class=False)

    def visit_body(self, body: list[ast.stmt], scopes: list[_Scope], *, container: str, in_class: bool,
                   prescanned: dict | None = None) -> None:
        """Module or class body: definitions, and the refs of module-level / class-level code."""
        seen: set[str] = set()
        for node in body:
            if isinstance(node, _DEFS):
                self.visit_def(node, scopes, (prescanned or {}).get(id(node)))
            elif isinstance(node, _BLOCKS):
                heads = [getattr(node, "test", None), *[i.context_expr for i in getattr(node, "items", [])]]
                heads += [h.type for h in getattr(node, "handlers", []) or []]
                self.code(scopes, heads)
                for fld in ("body", "orelse", "finalbody"):
                    self.visit_body(getattr(node, fld, []) or [], scopes, container=container, in_class=in_class,
                                    prescanned=prescanned)
                for handler in getattr(node, "handlers", []) or []:
                    self.visit_body(handler.body, scopes, container=container, in_class=in_class,
                                    prescanned=prescanned)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                for t in targets:
                    if isinstance(t, (ast.Tuple, ast.List)):
                        names += [e.id for e in t.elts if isinstance(e, ast.Name)]
                defined = []
                for name in names:
                    if name not in seen and (in_class or name not in self.facts.binds):
                        seen.add(name)
                        qual = f"{container}.{name}" if in_class else f"{container}:{name}"
                        self.facts.defs.append(Definition(qual, "attribute" if in_class else "constant",
                                                          self.facts.path, node.lineno))
                        defined.append(qual)
                # The value's refs belong to the constant when it is alone on the line.
                value_scopes = [*scopes[:-1], replace(scopes[-1], qualname=defined[0])] if len(defined) == 1 else scopes
                self.code(value_scopes, [node.value, getattr(node, "annotation", None)])
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            else:
                self.code(scopes, [node])

    def visit_def(self, node: ast.AST, scopes: list[_Scope], raw: _Raw | None = None) -> None:
        outer = scopes[-1]
        if isinstance(node, ast.Lambda):
            self.code(scopes, [*node.args.defaults, *[d for d in node.args.kw_defaults if d]])
            raw = self.scan([node.body])
            raw.names.update(a.arg for a in _params(node.args))
            self.emit([*scopes, _Scope(outer.qualname, "function", raw.names)], raw)
            return
        qual = f"{outer.qualname}.{node.name}" if ":" in outer.qualname else f"{outer.qualname}:{node.name}"
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        head = [*scopes[:-1], replace(outer, qualname=qual)]
        if isinstance(node, ast.ClassDef):
            self.facts.defs.append(Definition(qual, "class", self.facts.path, start))
            self.code(head, node.decorator_list, "signature")
            self.code(head, node.bases, "inherit")
            self.code(head, [k.value for k in node.keywords], "signature")
            bases = tuple(part for b in node.bases if (c := _chain(b)) and (joined := self.path_of(c, scopes))
                          for part in joined.split("|"))
            members = {n.name for n in node.body if isinstance(n, _DEFS)}
            members |= {t.id for n in node.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                        for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
            prescanned = {id(fn): self.scan(fn.body) for fn in node.body
                          if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))}
            self._attr_types(node, qual, scopes, prescanned)
            cls_scope = _Scope(qual, "class", members, class_path=qual, class_bases=bases)
            self.visit_body(node.body, [*scopes, cls_scope], container=qual, in_class=True, prescanned=prescanned)
            return
        in_class = outer.kind == "class"
        self.facts.defs.append(Definition(qual, "method" if in_class else "function", self.facts.path, start))
        args = node.args
        params = _params(args)
        self.code(head, [*node.decorator_list, *[a.annotation for a in params], node.returns, *args.defaults,
                         *[d for d in args.kw_defaults if d]], "signature")
        returns = _annotation_chain(node.returns)
        returns = self.path_of(returns, scopes) if returns else None
        if returns and "|" not in returns and not returns.startswith(("!", "?")):
            self.facts.types[qual] = returns
        raw = raw or self.scan(node.body)
        scope = _Scope(qual, "function", (raw.names | {a.arg for a in params}) - raw.globals, local_binds=raw.binds)
        positional = [*args.posonlyargs, *args.args]
        decos = {(_chain(d) or ["?"])[-1] for d in node.decorator_list}
        if in_class and positional and "staticmethod" not in decos:
            scope.self_name = positional[0].arg
            scope.class_path, scope.class_bases = outer.qualname, outer.class_bases
        elif outer.kind == "function" and outer.class_path:
            scope.class_path, scope.class_bases = outer.class_path, outer.class_bases
        for a in params:
            chain = _annotation_chain(a.annotation)
            path = self.path_of(chain, scopes) if chain else None
            if path and "|" not in path and not path.startswith("!"):
                scope.types[a.arg] = path
        inner = [*scopes, scope]
        for name, chain in raw.assigns:
            if name not in scope.types:
                path = self.path_of(chain, inner)
                if path and "|" not in path:
                    scope.types[name] = path  # a class, or a function whose annotated return type is the value's
        self.emit(inner, raw)

    def _attr_types(self, cls: ast.ClassDef, qual: str, scopes: list[_Scope], prescanned: dict) -> None:
        """Instance attributes whose class is known: ``x: Foo`` in the class body, ``self.x = Foo(...)``."""
        types: dict[str, str] = {}

        def note(attr: str, chain: list[str] | None, me: str | None = None) -> None:
            if chain and me and chain[0] == me and len(chain) > 1:  # self.x = self.make(): the class's member
                path = f"!{qual}#{'.'.join(chain[1:])}"
            else:
                path = self.path_of(chain, scopes) if chain else None
            if path and "|" not in path:
                types.setdefault(attr, path)

        for item in cls.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                note(item.target.id, _annotation_chain(item.annotation))
        for fn in cls.body:
            raw = prescanned.get(id(fn))
            positional = [*fn.args.posonlyargs, *fn.args.args] if raw is not None else []
            if not positional:
                continue
            me = positional[0].arg
            params = {a.arg: _annotation_chain(a.annotation) for a in _params(fn.args)}
            for target, value, annotated in raw.self_attrs:
                if target.value.id != me or target.attr in types:
                    continue
                if annotated:
                    note(target.attr, _annotation_chain(value))
                elif isinstance(value, ast.Call):
                    chain = _chain(value.func)
                    if chain and params.get(chain[0]) and chain[0] != me:  # self.x = param.make(): param's class
                        chain = params[chain[0]] + chain[1:]
                    note(target.attr, chain, me)
                elif isinstance(value, ast.Name) and params.get(value.id):
                    note(target.attr, params[value.id])
        self.attr_types[qual] = types
        self.facts.types.update((f"{qual}#{attr}", path) for attr, path in types.items())


def _join(base: str, rest: list[str]) -> str:
    """``base`` + attributes; for a bare module path the module/attribute split is found later."""
    return base + "." + ".".join(rest) if rest else base


def _flatten(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    for node in body:
        yield node
        if isinstance(node, _BLOCKS):
            for fld in ("body", "orelse", "finalbody"):
                yield from _flatten(getattr(node, fld, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                yield from _flatten(handler.body)


def extract(text: str, relpath: str, module: str) -> FileFacts:
    """The facts of one file (see the module docstring). A file that does not parse has none."""
    try:
        tree = pyast.parse(text, filename=relpath)
    except (SyntaxError, ValueError) as exc:
        return FileFacts(relpath, module, error=f"syntax-error: {exc}")
    ex = _Extractor(relpath, module, Path(relpath).name == "__init__.py")
    ex.module_level(tree)
    return ex.facts


def extract_file(root: Path, relpath: str, module: str) -> FileFacts:
    text, error = read_source(Path(root) / relpath)
    if text is None:
        return FileFacts(relpath, module, error=error)
    return extract(text, relpath, module)


# --------------------------------------------------------------------------- resolution


class NameTable:
    """Every module's names, to resolve syntactic paths to repository definitions."""

    def __init__(self) -> None:
        self.defs: dict[str, Definition] = {}
        self.members: dict[str, dict[str, str]] = {}  # module or class qualname -> name -> qualname
        self.binds: dict[str, dict[str, str]] = {}  # module -> alias -> syntactic target
        self.stars: dict[str, list[str]] = {}
        self.bases: dict[str, list[str]] = {}  # class -> syntactic base paths
        self.types: dict[str, str] = {}  # FileFacts.types of every file
        self.modules: dict[str, str] = {}  # module -> path
        self._memo: dict[str, str | None] = {}

    def add(self, facts: FileFacts) -> None:
        self.modules[facts.module] = facts.path
        for d in facts.defs:
            self.defs[d.qualname] = d
            self.members.setdefault(d.container, {})[d.qualname.rsplit(".", 1)[-1].rsplit(":", 1)[-1]] = d.qualname
        self.binds[facts.module] = dict(facts.binds)
        self.stars[facts.module] = list(facts.stars)
        for e in facts.refs:
            if e.kind == "inherit":
                self.bases.setdefault(e.src, []).append(e.dst)
        self.types.update(facts.types)
        self._memo.clear()

    def remove(self, module: str) -> None:
        path = self.modules.pop(module, None)
        for q in [q for q, d in self.defs.items() if d.path == path]:
            del self.defs[q]
        for c in [c for c in self.members if c == module or c.startswith(module + ":")]:
            del self.members[c]
        for c in [c for c in self.bases if c.startswith(module + ":")]:
            del self.bases[c]
        for c in [c for c in self.types if c.startswith(module + ":")]:
            del self.types[c]
        self.binds.pop(module, None)
        self.stars.pop(module, None)
        self._memo.clear()

    # -- lookups --------------------------------------------------------------------------
    def resolve(self, path: str, *, min_depth: int = 0) -> str | None:
        """The definition (or module) a syntactic path names, or None outside the repository.

        ``min_depth``: how many attributes after the root must resolve (1 for ``self.x``).
        """
        key = f"{min_depth}{path}"
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # guards cycles
        found = self._resolve(path, min_depth, 0)
        self._memo[key] = found
        return found

    def _resolve(self, path: str, min_depth: int, depth: int) -> str | None:
        if depth > 12:
            return None
        if path.startswith("?"):  # through an inferred type: every attribute must resolve
            return self._resolve(path[1:], -1, depth + 1)
        if path.startswith("!"):  # "!mod:Class#attr.attr": a member of the class (or of a base)
            cls_path, _, rest = path[1:].partition("#")
            cls = self._resolve(cls_path, 0, depth + 1)
            if cls is None or cls not in self.defs:
                return None
            return self._walk(cls, rest.split("."), -1 if min_depth < 0 else max(1, min_depth), depth)
        if ":" in path:
            mod, rest = path.split(":", 1)
            if mod not in self.modules:
                return None
            return self._walk(mod, rest.split("."), min_depth, depth)
        dotted = path.split(".")
        for i in range(len(dotted), 0, -1):
            if ".".join(dotted[:i]) in self.modules:
                return self._walk(".".join(dotted[:i]), dotted[i:], min_depth, depth)
        return None

    def _walk(self, current: str, parts: list[str], min_depth: int, depth: int) -> str | None:
        """Member lookup along ``parts``. A function on the way is a dead end, except in a typed
        value's path (``min_depth`` != 0: ``x = make()``, ``self.prop``) where it stands for its
        result: the walk goes on in the class its return annotation names."""
        resolved = 0
        for i, name in enumerate(parts):
            if not name:
                break
            base = current
            if base in self.defs and self.defs[base].kind in ("function", "method"):
                base = self._value_class(base, depth) if min_depth != 0 else None
                if base is None:
                    break
            nxt = self._member(base, name, depth)
            if nxt is None and min_depth != 0 and i + 1 < len(parts) and base in self.defs:
                # an instance attribute whose type is known (``self.x = Foo()`` in the class)
                typed = next((t for c in self.mro(base) if (t := self.types.get(f"{c}#{name}"))), None)
                nxt = self._value_class(typed, depth, path=True) if typed else None
            if nxt is None:
                break
            current, resolved = nxt, resolved + 1
            if current in self.defs and self.defs[current].kind not in ("class", "function", "method"):
                break  # attributes of a constant are not followed
        if min_depth < 0:  # strict
            return current if resolved == len(parts) else None
        return current if resolved >= min_depth else None

    def _value_class(self, fn_or_path: str, depth: int, path: bool = False) -> str | None:
        """The class of a value: a function's annotated return class (``path``: first resolve a
        syntactic path, which may name a class or a function)."""
        q = self._resolve(fn_or_path, 0, depth + 1) if path else fn_or_path
        for _ in range(4):
            if q is None or q not in self.defs:
                return None
            if self.defs[q].kind == "class":
                return q
            ret = self.types.get(q) if self.defs[q].kind in ("function", "method") else None
            q = self._resolve(ret, 0, depth + 1) if ret else None
        return None

    def _member(self, container: str, name: str, depth: int, seen: frozenset = frozenset()) -> str | None:
        found = self.members.get(container, {}).get(name)
        if found:
            return found
        if container in self.modules:  # a module
            sub = f"{container}.{name}"
            target = self.binds.get(container, {}).get(name)
            if target == f"{container}:{name}":
                target = None  # ``from . import sub`` in pkg/__init__.py binds pkg:sub to itself: the submodule
            if target:
                hit = self._resolve(target, 0, depth + 1)
                if hit is not None and hit != container:
                    return hit
                if sub in self.modules:  # an import that names a submodule the loop above could not reach
                    return sub
                return hit
            if sub in self.modules:
                return sub
            for star in self.stars.get(container, ()):
                if star in self.modules and star not in seen:
                    hit = self._member(star, name, depth + 1, seen | {container})
                    if hit:
                        return hit
            return None
        if container in self.defs and self.defs[container].kind == "class":
            for base in self.bases.get(container, ()):
                if depth > 12:
                    break
                base_q = self._resolve(base, 0, depth + 1)
                if base_q and base_q not in seen and base_q != container:
                    hit = self._member(base_q, name, depth + 1, seen | {container})
                    if hit:
                        return hit
        return None

    def mro(self, cls: str) -> list[str]:
        """The class and its repository bases, depth first (cycles cut)."""
        out, stack = [], [cls]
        while stack:
            c = stack.pop(0)
            if c in out or c not in self.defs:
                continue
            out.append(c)
            stack.extend(q for b in self.bases.get(c, ()) if (q := self.resolve(b)))
        return out


def resolve_refs(table: NameTable, facts: FileFacts) -> list[Edge]:
    """The file's refs as edges between repository definitions (or modules, for imports)."""
    out: set[Edge] = set()
    for e in facts.refs:
        dst = table.resolve(e.dst)
        if dst is None:
            continue
        if e.kind == "import":
            dst = dst if dst in table.modules else table.defs[dst].module if dst in table.defs else dst
        if dst == e.src:
            continue
        kind = e.kind
        if kind == "prefix":  # ``a.b`` inside ``a.b.c``: a use of what it names, never of a module
            if dst in table.modules:
                continue
            kind = "reference"
        out.add(Edge(e.src, dst, kind, e.line))
    return sorted(out)


def structure_edges(facts: FileFacts) -> list[Edge]:
    """The ``define:*`` and ``bind`` rows that let the table be rebuilt from the store."""
    rows = [Edge(d.container, d.qualname, f"define:{d.kind}", d.line) for d in facts.defs]
    rows += [Edge(f"{facts.module}:{alias}", target, "bind", 0) for alias, target in sorted(facts.binds.items())]
    rows += [Edge(facts.module, star, "bind", 0) for star in facts.stars]
    rows += [Edge(e.src, e.dst, "base", e.line) for e in facts.refs if e.kind == "inherit"]
    rows += [Edge(key, path, "type", 0) for key, path in sorted(facts.types.items())]
    return rows


# --------------------------------------------------------------------------- the graph


@dataclass(slots=True)
class SymbolGraph:
    """Definitions and the resolved edges between them."""

    defs: dict[str, Definition]
    edges: list[Edge]
    modules: dict[str, str]  # module -> path
    table: NameTable | None = None
    _out: dict[str, list[Edge]] | None = None
    _in: dict[str, list[Edge]] | None = None
    _sorted: list[str] | None = None

    def _adjacency(self) -> None:
        out: dict[str, list[Edge]] = {}
        inn: dict[str, list[Edge]] = {}
        for e in self.edges:
            out.setdefault(e.src, []).append(e)
            inn.setdefault(e.dst, []).append(e)
        self._out, self._in = out, inn

    def out_edges(self, qualname: str) -> list[Edge]:
        if self._out is None:
            self._adjacency()
        return self._out.get(qualname, [])

    def in_edges(self, qualname: str) -> list[Edge]:
        if self._in is None:
            self._adjacency()
        return self._in.get(qualname, [])

    def uses(self, qualname: str, *, nested: bool = True, kinds: tuple[str, ...] = USE_KINDS) -> dict[str, int]:
        """Definitions ``qualname``'s body uses ({qualname: first line}), nested functions included."""
        found: dict[str, int] = {}
        srcs = [qualname]
        if nested:
            srcs += self.nested(qualname)
        inside = tuple(srcs)
        for src in srcs:
            for e in self.out_edges(src):
                if e.kind in kinds and e.dst in self.defs and e.dst not in inside \
                        and not e.dst.startswith(qualname + "."):
                    found[e.dst] = min(found.get(e.dst, e.line), e.line)
        return dict(sorted(found.items()))

    def callers(self, qualname: str) -> list[Edge]:
        return sorted((e for e in self.in_edges(qualname) if e.kind in USE_KINDS), key=lambda e: (e.src, e.line))

    def nested(self, qualname: str) -> list[str]:
        """Definitions inside ``qualname`` (members of a class, functions nested in a function)."""
        if self._sorted is None:
            self._sorted = sorted(self.defs)
        prefix = qualname + "."
        i = bisect.bisect_left(self._sorted, prefix)
        out = []
        while i < len(self._sorted) and self._sorted[i].startswith(prefix):
            out.append(self._sorted[i])
            i += 1
        return out

    def members(self, container: str) -> list[str]:
        """Direct members of a class (or module-level definitions of a module)."""
        if ":" not in container:
            return sorted(q for q, d in self.defs.items() if d.container == container)
        n = len(container) + 1
        return [q for q in self.nested(container) if "." not in q[n:]]


def build(facts: dict[str, FileFacts]) -> SymbolGraph:
    """Resolve every file against all the others."""
    table = NameTable()
    for f in facts.values():
        table.add(f)
    edges: list[Edge] = []
    for path in sorted(facts):
        edges.extend(resolve_refs(table, facts[path]))
    return SymbolGraph(dict(table.defs), edges, dict(table.modules), table)


def extract_all(root: Path, modules: dict[str, str]) -> dict[str, FileFacts]:
    """FileFacts for every ``relpath -> module`` given."""
    return {rel: extract_file(root, rel, mod) for rel, mod in sorted(modules.items())}


# --------------------------------------------------------------------------- the store


def _rows(source_key: str, edges: Iterable[Edge]) -> list[tuple]:
    return [(source_key, e.src, e.dst, e.kind, e.line) for e in edges]


def save_graph(store: Store, source_key: str, facts: dict[str, FileFacts], graph: SymbolGraph) -> None:
    by_file = {path: resolve_refs(graph.table, f) for path, f in facts.items()} if graph.table else {}
    replace_edges(store, source_key, [row for path, f in facts.items()
                                      for row in _rows(source_key, [*structure_edges(f), *by_file.get(path, [])])])


def _file_of(qualname: str, modules: dict[str, str]) -> str | None:
    return modules.get(qualname.split(":", 1)[0])


def load_table(store: Store, source_key: str) -> NameTable:
    """Rebuild the name table from the stored ``define:*``, ``bind`` and ``base`` rows."""
    table = NameTable()
    for path, module in file_modules(store, source_key, ok_only=True).items():
        table.modules[module] = path
    for r in structure_rows(store, source_key):
        kind, src, dst = r["kind"], r["src"], r["dst"]
        if kind.startswith("define:"):
            path = _file_of(dst, table.modules)
            if path is None:
                continue
            d = Definition(dst, kind.split(":", 1)[1], path, r["line"])
            table.defs[dst] = d
            table.members.setdefault(src, {})[dst.rsplit(".", 1)[-1].rsplit(":", 1)[-1]] = dst
        elif kind == "type":
            table.types[src] = dst
        elif kind == "bind":
            if ":" in src:
                mod, alias = src.split(":", 1)
                table.binds.setdefault(mod, {})[alias] = dst
            else:
                table.stars.setdefault(src, []).append(dst)
        else:
            table.bases.setdefault(src, []).append(dst)
    return table


def load_graph(store: Store, source_key: str) -> SymbolGraph:
    table = load_table(store, source_key)
    edges = [Edge(r["src"], r["dst"], r["kind"], r["line"])
             for r in use_rows(store, source_key)]
    return SymbolGraph(dict(table.defs), edges, dict(table.modules), table)


def has_graph(store: Store, source_key: str) -> bool:
    return has_edges(store, source_key)


def regrok_files(store: Store, source_key: str, root: Path, changed: dict[str, str | None],
                 old_modules: dict[str, str] | None = None) -> list[str]:
    """Re-read ``changed`` files (relpath -> module, None when deleted) and replace their rows.

    ``old_modules`` names the module each changed file had before (default: as now). Other
    files keep their edges, except those importing a changed module whose exported names
    changed: they are read again too. Returns the files re-read.
    """
    table = load_table(store, source_key)
    old_modules = dict(old_modules or {})
    touched: set[str] = set()
    old_exports: dict[str, frozenset[str]] = {}
    new_facts: dict[str, FileFacts] = {}
    for rel, module in sorted(changed.items()):
        old_mod = old_modules.get(rel) or module
        if old_mod:
            table.modules.setdefault(old_mod, rel)
            old_exports[old_mod] = frozenset(
                [q for q, d in table.defs.items() if d.path == rel]
                + list(table.binds.get(old_mod, {})) + table.stars.get(old_mod, [])
                + [f"{key}->{path}" for key, path in table.types.items() if key.startswith(old_mod + ":")])
            table.remove(old_mod)
            touched.add(old_mod)
        if module is not None:
            f = extract_file(root, rel, module)
            new_facts[rel] = f
            touched.add(module)
            if f.error is None:
                table.add(f)
    now = {f.module: f.exported() for f in new_facts.values()}
    shifted = sorted(m for m, names in old_exports.items() if names != now.get(m, frozenset()))
    if shifted:
        for mod in sorted(importers(store, source_key, shifted) - touched):
            rel = table.modules.get(mod)
            if rel and rel not in new_facts:
                table.remove(mod)
                f = extract_file(root, rel, mod)
                new_facts[rel] = f
                touched.add(mod)
                if f.error is None:
                    table.add(f)
    replace_module_edges(store, source_key, sorted(touched),
                         [row for f in new_facts.values() if f.error is None
                          for row in _rows(source_key, [*structure_edges(f), *resolve_refs(table, f)])])
    return sorted(new_facts)


def is_test_definition(d: Definition) -> bool:
    return is_test_path(d.path) or d.local_name.split(".")[0].startswith(("test", "Test"))


# --------------------------------------------------------------------------- grok's steps


def file_hashes(root: Path, relpaths: Iterable[str]) -> dict[str, str]:
    """sha256 (16 hex) of each file's bytes: what incremental grok compares."""
    import hashlib

    out = {}
    for rel in sorted(relpaths):
        try:
            out[rel] = hashlib.sha256((Path(root) / rel).read_bytes()).hexdigest()[:16]
        except OSError:
            continue
    return out


def grok_graph(store: Store, source_key: str, root: Path, modules: dict[str, str]) -> SymbolGraph:
    """Extract, resolve and store the graph of every ``relpath -> module`` given."""
    facts = extract_all(root, modules)
    graph = build(facts)
    save_graph(store, source_key, facts, graph)
    drop_ranking(store, source_key)  # learned on the old graph
    return graph
