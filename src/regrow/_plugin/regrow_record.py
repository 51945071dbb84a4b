"""Record calls into the target's functions while its tests run. Target side; stdlib only.

Installed by ``regrow_pytest`` at import when ``REGROW_RECORD`` names an output file, before any
conftest imports the target. A meta-path finder wraps each function and method of every module
under ``REGROW_RECORD_ROOTS`` (test files excluded) right after the module executes, so every
later ``from pkg import f`` gets the recording wrapper. Each of the first `PER_FUNCTION` calls
(at most `PER_TEST` from one test) writes one JSON line: qualname, test id, the arguments pickled
at entry (base64, None when not picklable or over `MAX_PICKLE` bytes), their type names and short
reprs, and the return value's canonical form (not for iterators, which must not be consumed) or
the exception type. After the cap a wrapper costs one counter check.
"""

import base64
import functools
import importlib.machinery
import inspect
import json
import os
import pickle
import sys
import types

PER_FUNCTION = 50
PER_TEST = 5
MAX_PICKLE = 64 * 1024
MAX_FILE = 256 * 1024 * 1024

_fd = None
_roots = ()
_busy = [False]
_written = [0]


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
    os.write(_fd, data)


def _wrap(fn, qualname):
    import regrow_canon as canon

    state = {"n": 0, "per_test": {}}
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _busy[0] or state["n"] >= PER_FUNCTION:
            return fn(*args, **kwargs)
        test = _current_test()
        if not test or state["per_test"].get(test, 0) >= PER_TEST:
            return fn(*args, **kwargs)
        state["n"] += 1
        state["per_test"][test] = state["per_test"].get(test, 0) + 1
        seq = state["n"]
        _busy[0] = True
        try:
            rec = {"q": qualname, "seq": seq, "test": test}
            try:
                data = pickle.dumps((args, kwargs), protocol=4)
                rec["args"] = base64.b64encode(data).decode() if len(data) <= MAX_PICKLE else None
            except BaseException:
                rec["args"] = None
            names = {}
            summary = {}
            try:
                bound = sig.bind(*args, **kwargs) if sig is not None else None
                items = list(bound.arguments.items()) if bound is not None else []
            except BaseException:
                items = []
            if not items:
                items = [("arg%d" % i, a) for i, a in enumerate(args)] + list(kwargs.items())
            for name, value in items:
                names[name] = canon.type_name(type(value))
                summary[name] = canon.short_repr(value)
            rec["arg_types"], rec["summary"] = names, summary
        finally:
            _busy[0] = False
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            rec["exception"] = canon.type_name(type(exc))
            _busy[0] = True
            try:
                _write(rec)
            finally:
                _busy[0] = False
            raise
        _busy[0] = True
        try:
            rec["return_type"] = canon.type_name(type(result))
            rec["summary"]["return"] = canon.short_repr(result)
            if not canon._is_iterator(result):
                try:
                    rec["result"] = canon.canon(result)
                except BaseException:
                    rec["result"] = None
            _write(rec)
        finally:
            _busy[0] = False
        return result

    wrapper.__regrow_recording__ = True
    return wrapper


def _wrap_module(module):
    name = module.__name__
    path = getattr(module, "__file__", None) or ""
    for attr, obj in list(vars(module).items()):
        if isinstance(obj, types.FunctionType) and obj.__module__ == name and obj.__code__.co_filename == path:
            setattr(module, attr, _wrap(obj, "%s:%s" % (name, obj.__qualname__)))
        elif isinstance(obj, type) and obj.__module__ == name:
            _wrap_class(obj, name, path, 0)


def _wrap_class(cls, modname, path, depth):
    if depth > 3:
        return
    for attr, obj in list(vars(cls).items()):
        try:
            if isinstance(obj, types.FunctionType) and obj.__code__.co_filename == path:
                setattr(cls, attr, _wrap(obj, "%s:%s" % (modname, obj.__qualname__)))
            elif isinstance(obj, staticmethod) and isinstance(obj.__func__, types.FunctionType):
                setattr(cls, attr, staticmethod(_wrap(obj.__func__, "%s:%s" % (modname, obj.__func__.__qualname__))))
            elif isinstance(obj, classmethod) and isinstance(obj.__func__, types.FunctionType):
                setattr(cls, attr, classmethod(_wrap(obj.__func__, "%s:%s" % (modname, obj.__func__.__qualname__))))
            elif isinstance(obj, type) and obj.__module__ == modname and obj.__qualname__.startswith(cls.__qualname__):
                _wrap_class(obj, modname, path, depth + 1)
        except (AttributeError, TypeError):
            pass


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
