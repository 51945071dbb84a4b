"""Canonical serialisation of Python values, with exact types. Runs in the target's interpreter.

``canon(value)`` turns a value into nested JSON-able lists whose first item names the exact type,
so two values compare equal only when their types and contents match: ``1`` and ``True`` and
``1.0`` all differ, a subclass of ``int`` differs from ``int``, and an object whose ``__eq__``
always returns True is serialised by its type and state, never by what it claims to equal.

Lazy iterators are consumed up to `MAX_ITEMS` items (their concrete type is not compared: a
generator and a ``map`` object are both ``"iterator"``), unless `CONSUME` is false (the call
recorder's process, where the program still owns them): then `canon` raises `Unconsumed`.
Anything that cannot be taken apart safely becomes ``["opaque", type name]``.

``kinds(value)`` names deceptive shapes (always-equal objects, NaN, mocks, proxies, subclasses of
builtin types) so the parent can say what a mismatching candidate tried. Imports nothing from
regrow; stdlib only.
"""

import json
import math
import reprlib

MAX_ITEMS = 1000
MAX_DEPTH = 12
MAX_STR = 100000
_HUGE = 10 ** 4000  # ints this long are not written out (str() of them is slow, and refused past 4300 digits)
_EXACT = (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)
_SEQ = (list, tuple)
_dumps = json.JSONEncoder(default=str).encode  # canonical forms hold lists, str, bool, None, int
_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 8
CONSUME = True  # False where iterators met inside a value belong to a running program


class Unconsumed(Exception):
    """`canon` met an iterator with `CONSUME` off: the value has no canonical form here."""


def type_name(tp) -> str:
    mod = getattr(tp, "__module__", "") or ""
    qual = getattr(tp, "__qualname__", None) or getattr(tp, "__name__", "?")
    return qual if mod == "builtins" else "%s.%s" % (mod, qual)


def short_repr(value) -> str:
    try:
        return _short.repr(value)[:200]
    except BaseException:  # a hostile or broken __repr__
        return "<%s>" % type_name(type(value))


def _sort_key(item):
    return _dumps(item)


def _str_key(item):
    return item[0][1]


def canon(value, depth: int = 0, _path=None):
    """The canonical form of ``value`` (see the module docstring).

    A container or object met again inside itself becomes ``["ref", n]``: the n-th enclosing
    container on the way down (1: the one directly around it). Linked structures (rings of
    nodes, parent pointers) are then written once, whole, instead of unrolled to `MAX_DEPTH`.
    Identity is tested with ``is`` only (``id()`` raises an audit event in a sandboxed child).
    """
    tp = type(value)
    if depth > MAX_DEPTH:
        return ["deep", type_name(tp)]
    if value is None:
        return ["None"]
    if tp is bool:
        return ["bool", bool(value)]
    if tp is int:
        return ["int", str(value) if -_HUGE < value < _HUGE else "huge"]
    if tp is float:
        return ["float", repr(value)]
    if tp is complex:
        return ["complex", repr(value)]
    if tp is str:
        return ["str", value if len(value) <= MAX_STR else value[:MAX_STR] + "...%d" % len(value)]
    if tp in (bytes, bytearray):
        return [tp.__name__, bytes(value[:MAX_STR]).hex()]
    if _path is None:
        _path = []
    for n in range(len(_path)):
        if _path[-1 - n] is value:
            return ["ref", n + 1]
    _path.append(value)
    try:
        return _canon_container(value, tp, depth, _path)
    finally:
        _path.pop()


def _canon_container(value, tp, depth, path):
    if tp in _SEQ:
        if len(value) > MAX_ITEMS:
            return [tp.__name__ + "-long", len(value)]
        return [tp.__name__, [canon(v, depth + 1, path) for v in value]]
    if tp in (set, frozenset):
        if len(value) > MAX_ITEMS:
            return [tp.__name__ + "-long", len(value)]
        return [tp.__name__, sorted((canon(v, depth + 1, path) for v in value), key=_sort_key)]
    if isinstance(value, dict) and type_name(tp) in ("dict", "collections.OrderedDict", "collections.defaultdict",
                                                      "collections.Counter"):
        if len(value) > MAX_ITEMS:
            return [type_name(tp) + "-long", len(value)]
        items = [[canon(k, depth + 1, path), canon(v, depth + 1, path)] for k, v in list(value.items())]
        # Keys that are all plain strings are distinct: sort by them (cheap); else by the whole item.
        items.sort(key=_str_key if all(k[0] == "str" for k, _v in items) else _sort_key)
        return [type_name(tp), items]
    if isinstance(value, BaseException):
        return ["raise", type_name(tp), [canon(a, depth + 1, path) for a in value.args[:8]]]
    if _is_iterator(value):
        if not CONSUME:
            raise Unconsumed(type_name(tp))
        items = []
        for item in value:
            if len(items) >= MAX_ITEMS:
                return ["iterator", items, "truncated"]
            items.append(canon(item, depth + 1, path))
        return ["iterator", items]
    if tp.__name__ in ("function", "builtin_function_or_method", "method", "method-wrapper", "type", "module",
                       "code", "frame", "cell", "wrapper_descriptor", "method_descriptor"):
        return ["opaque", type_name(tp)]
    state = _state(value)
    if state is None:
        return ["opaque", type_name(tp)]
    return ["object", type_name(tp), canon(state, depth + 1, path)]


def _is_iterator(value) -> bool:
    tp = type(value)
    return hasattr(tp, "__next__") and hasattr(tp, "__iter__")


def _state(value):
    """An object's plain attributes (``__dict__`` and slots), or None when it has none we can read."""
    out = {}
    try:
        d = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        d = None
    if isinstance(d, dict):
        out.update({k: v for k, v in d.items() if isinstance(k, str)})
    for klass in type(value).__mro__:
        for name in getattr(klass, "__slots__", ()) or ():
            if isinstance(name, str) and name not in ("__dict__", "__weakref__"):
                try:
                    out[name] = object.__getattribute__(value, name)
                except AttributeError:
                    pass
    if not out and d is None:
        return None
    return out


def kinds(value, depth: int = 0) -> list:
    """Deceptive shapes found in ``value`` (top level and one container level down)."""
    found = []
    tp = type(value)
    try:
        if tp is float and math.isnan(value):
            found.append("nan")
        mod = getattr(tp, "__module__", "") or ""
        if mod.startswith("unittest.mock") or "Mock" in tp.__name__:
            found.append("mock")
        elif tp not in _EXACT:
            base = next((b for b in _EXACT if b is not type(None) and isinstance(value, b)), None)
            if base is not None:
                found.append("subclass")
            if "__getattr__" in _own_names(tp) or "__getattribute__" in _own_names(tp):
                found.append("proxy")
            if "__eq__" in _own_names(tp):
                sentinel = object()
                try:
                    if value == sentinel:
                        found.append("eq-always-true")
                except BaseException:
                    pass
        if depth == 0 and tp in (list, tuple, set, frozenset) and len(value) <= MAX_ITEMS:
            for item in value:
                found.extend(kinds(item, 1))
        if depth == 0 and tp is dict and len(value) <= MAX_ITEMS:
            for item in value.values():
                found.extend(kinds(item, 1))
    except BaseException:
        found.append("opaque")
    return sorted(set(found))


def _own_names(tp) -> set:
    names = set()
    for klass in tp.__mro__:
        if klass is object or klass in _EXACT:
            break
        names.update(vars(klass))
    return names
