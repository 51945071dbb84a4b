"""Record calls into the target's functions while its tests run. Target side; stdlib only.

Installed by ``regrow_pytest`` at import when ``REGROW_RECORD`` names an output file, before any
conftest imports the target. A meta-path finder wraps each function and method of every module
under ``REGROW_RECORD_ROOTS`` (test files excluded) right after the module executes, so every
later ``from pkg import f`` gets the recording wrapper. Each of the first `PER_FUNCTION` calls
(at most `PER_TEST` from one test) writes one JSON line: qualname, test id, the arguments pickled
at entry (base64, None when not picklable or over `MAX_PICKLE` bytes), their type names and short
reprs, and the return value's canonical form (not for iterators, and not for values holding one:
they are never consumed) or the exception type. After the cap a wrapper costs one counter check.

Recording must not change what the program does, so a wrapper is a faithful stand-in or there is
none:

- it has the function's own parameters (names, kinds, defaults: ``__code__``'s argument counts and
  names, ``inspect.getfullargspec``, binding errors raised at call time), its flags (a generator
  function's wrapper is a generator function delegating with ``yield from``; a coroutine
  function's is an ``async def`` that records the awaited result or exception), and
  ``functools.wraps``'s metadata (``__wrapped__``, names, doc, module, a copy of ``__dict__`` with
  markers such as ``_is_coroutine``); it is kept only when ``inspect`` and ``asyncio`` say the same
  of it as of the function (signature, generator / coroutine / async generator function);
- not wrapped: async generator functions (no faithful delegation without ``yield from``),
  ``types.coroutine`` generators, functions referenced from anywhere but the one namespace slot
  being replaced (registered by identity at import: a registry, a default argument, a closure,
  a weak reference), functions that look at their callers' frames or warn with a ``stacklevel``
  (one more frame would move what they see), properties and other descriptors than
  ``staticmethod``/``classmethod``, and methods of classes whose metaclass overrides
  ``__setattr__``.

A coroutine's recorded call is replayed by awaiting it (``regrow_child._replay``).
"""

import base64
import importlib.machinery
import inspect
import json
import os
import pickle
import sys
import types
import weakref
from functools import update_wrapper

PER_FUNCTION = 50
PER_TEST = 5
MAX_PICKLE = 64 * 1024
MAX_FILE = 256 * 1024 * 1024

CO_VARARGS, CO_VARKEYWORDS = inspect.CO_VARARGS, inspect.CO_VARKEYWORDS
CO_GENERATOR, CO_COROUTINE = inspect.CO_GENERATOR, inspect.CO_COROUTINE
CO_ITERABLE_COROUTINE, CO_ASYNC_GENERATOR = inspect.CO_ITERABLE_COROUTINE, inspect.CO_ASYNC_GENERATOR
# Names whose presence in a function's code says it looks at the stack around it.
_FRAME_NAMES = frozenset(("_getframe", "currentframe", "getouterframes", "getinnerframes", "getframeinfo",
                          "extract_stack", "print_stack", "format_stack", "walk_stack", "f_back",
                          "_getframemodulename", "stacklevel"))

_fd = None
_roots = ()
_busy = [False]
_written = [0]
_factories = {}  # (kind, parameter shape) -> compiled wrapper factory
_BASE = [None]  # sys.getrefcount of a function held by one dict only, as `_refs` measures it


def _is_test(path):
    base = os.path.basename(path)
    parts = path.replace(os.sep, "/").split("/")
    return (base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"
            or any(p in ("tests", "test", "testing") for p in parts[:-1]))


def _current_test():
    mod = sys.modules.get("regrow_pytest")
    return getattr(mod, "current_test", "") if mod is not None else ""


def _write(rec):
    if _fd is None or _written[0] > MAX_FILE:
        return
    data = (json.dumps(rec) + "\n").encode("utf-8", "replace")
    _written[0] += len(data)
    try:
        os.write(_fd, data)
    except OSError:
        pass


# ---------------------------------------------------------------- what the wrappers call

def _begin(state, args, kwargs):
    """The record of this call, its arguments taken; None when this call is not recorded."""
    if _busy[0] or state["n"] >= PER_FUNCTION:
        return None
    test = _current_test()
    if not test or state["per_test"].get(test, 0) >= PER_TEST:
        return None
    import regrow_canon as canon

    state["n"] += 1
    state["per_test"][test] = state["per_test"].get(test, 0) + 1
    _busy[0] = True
    try:
        args, kwargs = _as_called(state["fn"], args, kwargs)
        rec = {"q": state["q"], "seq": state["n"], "test": test}
        try:
            data = pickle.dumps((args, kwargs), protocol=4)
            rec["args"] = base64.b64encode(data).decode() if len(data) <= MAX_PICKLE else None
        except BaseException:
            rec["args"] = None
        names = {}
        summary = {}
        try:
            sig = state["sig"]
            items = list(sig.bind(*args, **kwargs).arguments.items()) if sig is not None else []
        except BaseException:
            items = []
        if not items:
            items = [("arg%d" % i, a) for i, a in enumerate(args)] + list(kwargs.items())
        for name, value in items:
            names[name] = canon.type_name(type(value))
            summary[name] = canon.short_repr(value)
        rec["arg_types"], rec["summary"] = names, summary
        return rec
    except BaseException:
        return None
    finally:
        _busy[0] = False


def _as_called(fn, args, kwargs):
    """``args``/``kwargs`` without the trailing arguments that are their parameter's default object.

    The wrapper passes every parameter on; the replay should get what the caller wrote, so that a
    sentinel default stays the function's own (an unpickled copy of it would not be ``is`` it).
    """
    defaults = fn.__defaults__ or ()
    n = fn.__code__.co_argcount
    if defaults and len(args) == n:  # (with more, a *args part follows: every parameter was given)
        first = n - len(defaults)
        cut = n
        while cut > first and args[cut - 1] is defaults[cut - 1 - first]:
            cut -= 1
        args = args[:cut]
    kwdefaults = fn.__kwdefaults__
    if kwdefaults and kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k not in kwdefaults or v is not kwdefaults[k]}
    return args, kwargs


def _fail(rec, exc):
    import regrow_canon as canon

    _busy[0] = True
    try:
        rec["exception"] = canon.type_name(type(exc))
        _write(rec)
    except BaseException:
        pass
    finally:
        _busy[0] = False


def _end(rec, result):
    import regrow_canon as canon

    _busy[0] = True
    try:
        rec["return_type"] = canon.type_name(type(result))
        rec["summary"]["return"] = canon.short_repr(result)
        if not canon._is_iterator(result):
            try:
                rec["result"] = canon.canon(result)  # raises rather than consume an iterator inside
            except BaseException:
                rec["result"] = None
        _write(rec)
    except BaseException:
        pass
    finally:
        _busy[0] = False


# ---------------------------------------------------------------- building a wrapper

_BODIES = {
    "sync": (
        "    def _regrow_wrapper({params}):\n"
        "        _regrow_a, _regrow_k = {call}\n"
        "        _regrow_r = _regrow_begin(_regrow_state, _regrow_a, _regrow_k)\n"
        "        if _regrow_r is None:\n"
        "            return _regrow_fn(*_regrow_a, **_regrow_k)\n"
        "        try:\n"
        "            _regrow_v = _regrow_fn(*_regrow_a, **_regrow_k)\n"
        "        except BaseException as _regrow_e:\n"
        "            _regrow_fail(_regrow_r, _regrow_e)\n"
        "            raise\n"
        "        _regrow_end(_regrow_r, _regrow_v)\n"
        "        return _regrow_v\n"),
    "gen": (  # the generator function's own generator runs under ``yield from``: sends, throws, close
        "    def _regrow_wrapper({params}):\n"
        "        _regrow_a, _regrow_k = {call}\n"
        "        _regrow_r = _regrow_begin(_regrow_state, _regrow_a, _regrow_k)\n"
        "        if _regrow_r is None:\n"
        "            return (yield from _regrow_fn(*_regrow_a, **_regrow_k))\n"
        "        try:\n"
        "            _regrow_v = _regrow_fn(*_regrow_a, **_regrow_k)\n"
        "        except BaseException as _regrow_e:\n"
        "            _regrow_fail(_regrow_r, _regrow_e)\n"
        "            raise\n"
        "        _regrow_end(_regrow_r, _regrow_v)\n"
        "        return (yield from _regrow_v)\n"),
    "async": (  # records what the call awaits to
        "    async def _regrow_wrapper({params}):\n"
        "        _regrow_a, _regrow_k = {call}\n"
        "        _regrow_r = _regrow_begin(_regrow_state, _regrow_a, _regrow_k)\n"
        "        if _regrow_r is None:\n"
        "            return await _regrow_fn(*_regrow_a, **_regrow_k)\n"
        "        try:\n"
        "            _regrow_v = await _regrow_fn(*_regrow_a, **_regrow_k)\n"
        "        except BaseException as _regrow_e:\n"
        "            _regrow_fail(_regrow_r, _regrow_e)\n"
        "            raise\n"
        "        _regrow_end(_regrow_r, _regrow_v)\n"
        "        return _regrow_v\n"),
}


def _kind(fn):
    flags = fn.__code__.co_flags
    if flags & (CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE):
        return None
    if flags & CO_COROUTINE:
        return "async"
    return "gen" if flags & CO_GENERATOR else "sync"


def _looks_at_frames(code, depth=0):
    if _FRAME_NAMES.intersection(code.co_names) or ("inspect" in code.co_names and "stack" in code.co_names):
        return True
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if depth < 8 and _looks_at_frames(const, depth + 1):
                return True
        elif const == "stacklevel" or (isinstance(const, tuple) and "stacklevel" in const):
            return True
        elif type(const) is int and const >= 2 and "warn" in code.co_names:
            return True  # warnings.warn(message, category, 2): the stack level given by position
    return False


def _factory(kind, code):
    """The compiled factory of wrappers for functions of ``code``'s parameter shape."""
    names = code.co_varnames
    argc, posonly, kwc = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    star = names[argc + kwc] if code.co_flags & CO_VARARGS else None
    dstar = names[argc + kwc + (star is not None)] if code.co_flags & CO_VARKEYWORDS else None
    key = (kind, names[:argc + kwc], posonly, star, dstar)
    made = _factories.get(key)
    if made is not None:
        return made
    pos, kwonly = names[:argc], names[argc:argc + kwc]
    params = list(pos)
    if posonly:
        params.insert(posonly, "/")
    if star:
        params.append("*" + star)
    elif kwonly:
        params.append("*")
    params.extend(kwonly)
    if dstar:
        params.append("**" + dstar)
    positional = "(%s)" % "".join(p + ", " for p in pos)
    if star:
        positional = "%s + %s" % (positional, star) if pos else star
    keywords = "{%s}" % ", ".join(["%r: %s" % (k, k) for k in kwonly] + (["**" + dstar] if dstar else []))
    src = ("def _regrow_factory(_regrow_fn, _regrow_state, _regrow_begin, _regrow_end, _regrow_fail):\n"
           + _BODIES[kind].format(params=", ".join(params), call="%s, %s" % (positional, keywords))
           + "    return _regrow_wrapper\n")
    ns = {}
    exec(compile(src, "<regrow_record>", "exec"), ns)
    made = _factories[key] = ns["_regrow_factory"]
    return made


def _same_face(fn, wrapper):
    """Whether ``inspect`` and ``asyncio`` tell the wrapper from the function in no way we check."""
    checks = [inspect.isgeneratorfunction, inspect.iscoroutinefunction, inspect.isasyncgenfunction]
    aio = sys.modules.get("asyncio")
    if aio is not None:
        checks.append(aio.iscoroutinefunction)
    for check in checks:
        if bool(check(fn)) != bool(check(wrapper)):
            return False

    def sig(f, **kw):
        try:
            return str(inspect.signature(f, **kw))
        except (TypeError, ValueError):
            return None

    return sig(fn) == sig(wrapper) and sig(fn, follow_wrapped=False) == sig(wrapper, follow_wrapped=False)


def _wrap(fn, qualname):
    """A faithful recording stand-in for ``fn``, or None when there cannot be one."""
    kind = _kind(fn)
    code = fn.__code__
    if kind is None or getattr(fn, "__regrow_recording__", False) or _looks_at_frames(code):
        return None
    if any(n.startswith("_regrow_") for n in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount + 2]):
        return None
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    state = {"n": 0, "per_test": {}, "fn": fn, "q": qualname, "sig": sig}
    try:
        wrapper = _factory(kind, code)(fn, state, _begin, _end, _fail)
        replace = {"co_name": code.co_name}
        if hasattr(code, "co_qualname"):
            replace["co_qualname"] = code.co_qualname
        wrapper.__code__ = wrapper.__code__.replace(**replace)  # binding errors name the function
        update_wrapper(wrapper, fn)
        wrapper.__defaults__ = fn.__defaults__
        wrapper.__kwdefaults__ = fn.__kwdefaults__
        wrapper.__regrow_recording__ = True
    except BaseException:
        return None
    return wrapper if _same_face(fn, wrapper) else None


# ---------------------------------------------------------------- which functions are wrapped

def _refs(ns, key):
    return sys.getrefcount(ns[key])


def _calibrate():
    d = {"f": types.FunctionType(compile("0", "<regrow_record>", "eval"), {})}
    return _refs(d, "f")


def _only_here(ns, key, held):
    """Whether ``ns[key]`` is referenced by ``ns`` alone (besides ``held`` references of the caller's).

    A function held anywhere else (a registry filled at import, a default argument, a closure, a
    class attribute under another name, a weak reference) is compared by identity or called as
    it is there: replacing it in ``ns`` would split it in two, so it stays unwrapped.
    """
    if _BASE[0] is None:
        _BASE[0] = _calibrate()
    try:
        return _refs(ns, key) - held <= _BASE[0] and not weakref.getweakrefcount(ns[key])
    except BaseException:
        return False


def _wrap_module(module):
    name = module.__name__
    path = getattr(module, "__file__", None) or ""
    ns = vars(module)
    for attr in [k for k in list(ns) if isinstance(k, str)]:
        try:
            obj = ns.get(attr)
            if isinstance(obj, types.FunctionType):
                if obj.__module__ == name and obj.__code__.co_filename == path and _only_here(ns, attr, 1):
                    wrapper = _wrap(obj, "%s:%s" % (name, obj.__qualname__))
                    if wrapper is not None:
                        setattr(module, attr, wrapper)
            elif isinstance(obj, type) and obj.__module__ == name:
                _wrap_class(obj, name, path, 0)
        except Exception:
            pass
        obj = None


def _wrap_class(cls, modname, path, depth):
    if depth > 3 or type(cls).__setattr__ is not type.__setattr__:
        return
    ns = vars(cls)
    for attr in [k for k in list(ns) if isinstance(k, str)]:
        try:
            obj = ns.get(attr)
            if isinstance(obj, types.FunctionType):
                if obj.__code__.co_filename == path and _only_here(ns, attr, 1):
                    wrapper = _wrap(obj, "%s:%s" % (modname, obj.__qualname__))
                    if wrapper is not None:
                        setattr(cls, attr, wrapper)
            elif isinstance(obj, (staticmethod, classmethod)) and type(obj) in (staticmethod, classmethod):
                fn = obj.__func__
                if isinstance(fn, types.FunctionType) and fn.__code__.co_filename == path \
                        and _only_here({"f": fn}, "f", 1 + 1) and not weakref.getweakrefcount(obj):
                    wrapper = _wrap(fn, "%s:%s" % (modname, fn.__qualname__))
                    if wrapper is not None:
                        setattr(cls, attr, type(obj)(wrapper))
                fn = None
            elif isinstance(obj, type) and obj.__module__ == modname and obj.__qualname__.startswith(cls.__qualname__):
                _wrap_class(obj, modname, path, depth + 1)
        except Exception:
            pass
        obj = None


class _Finder:
    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = os.path.abspath(spec.origin)
        if not any(origin.startswith(r) for r in _roots) or _is_test(origin):
            return None
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            try:
                _wrap_module(module)
            except BaseException:
                pass

        loader.exec_module = exec_module
        return spec


def install(path, roots):
    global _fd, _roots
    import regrow_canon

    regrow_canon.CONSUME = False  # this process only records: a value is never iterated to serialise it
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _roots = tuple(os.path.abspath(r).rstrip("/") + "/" for r in roots.split(os.pathsep) if r)
    sys.meta_path.insert(0, _Finder())
    for mod in list(sys.modules.values()):  # already imported (rare): wrap in place
        f = getattr(mod, "__file__", None) or ""
        if f and any(os.path.abspath(f).startswith(r) for r in _roots) and not _is_test(f):
            try:
                _wrap_module(mod)
            except BaseException:
                pass
