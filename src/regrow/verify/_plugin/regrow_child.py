"""The sandboxed side of the warm worker: everything a forked child does with a candidate.

Runs in the target's interpreter, in a child forked from the worker (`regrow_worker`), which
binds itself here first (`bind`) so the child reads the worker's state (its configuration, the
pre-collected session, the copy's functions) without importing the worker's main script again.
Stdlib only; imports nothing from regrow.

What a child does, in order (`_child_main`): enter the sandbox (`_enter_sandbox`: its own
session and process group, the candidate's file bind-mounted over the original or served from
memory, resource limits, the unprivileged uid, the parent-death signal, the audit hook `_Guard`);
swap the candidate's code into the collected functions (`_patch`) or import afresh; run the
covering tests and the canary (`_run_items`) or replay recorded calls (`_replay`); report over
the pipe; stop. Nothing here decides a verdict: the worker and the parent do.
"""

import base64
import errno
import importlib.abc
import importlib.util
import json
import linecache
import os
import pickle
import resource
import signal
import sys
import tempfile
import time
import traceback
from types import CoroutineType as _CoroutineType

W = None  # the worker's module (its __main__), bound by the worker at start
_OWN_FILES = (os.path.abspath(__file__),)  # regrow's own frames, skipped when looking for the candidate's
_child_fd = None  # the result pipe in a child, once moved to fd 3
_trace = False  # a request asked for timestamps (the child writes "mark" records)


def bind(worker):
    """Give this module the worker's state (called once by the worker, before any fork)."""
    global W, _OWN_FILES
    W = worker
    _OWN_FILES = (os.path.abspath(__file__), os.path.abspath(worker.__file__))


def _mark(name):
    if _trace and _child_fd is not None:
        try:
            os.write(_child_fd, (json.dumps({"event": "mark", "name": name, "t": time.monotonic()}) + "\n").encode())
        except OSError:
            pass


def _child_main(req, wfd, tmp):
    code = 70
    try:
        _child(req, wfd, tmp)
    except BaseException:
        try:
            os.write(_child_fd if _child_fd is not None else wfd,
                     (json.dumps({"event": "child-error", "message": traceback.format_exc()[-2000:]})
                      + "\n").encode())
        except BaseException:
            pass
    finally:
        os._exit(code)


class _MemLoader(importlib.abc.Loader):
    def __init__(self, path, text):
        self.path, self.text = path, text

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        code = compile(self.text, self.path, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, name):
        return self.text


class _MemFinder(importlib.abc.MetaPathFinder):
    """Serves the candidate's file text for its module name, from memory."""

    def __init__(self, mods):
        self.mods = mods  # module name -> (abs path, text)

    def find_spec(self, name, path=None, target=None):
        hit = self.mods.get(name)
        if hit is None:
            return None
        p, text = hit
        pkg = os.path.basename(p) == "__init__.py"
        return importlib.util.spec_from_file_location(
            name, p, loader=_MemLoader(p, text), submodule_search_locations=[os.path.dirname(p)] if pkg else None)


_own_mounts = False  # this process already has its private mount namespace (a spare made it while waiting)


def _private_mounts():
    """Enter a private mount namespace of this process's own. Root only; True when done."""
    global _own_mounts
    libc = W._libc_handle()
    if _own_mounts:
        return True
    if not libc or os.geteuid() != 0 or not W._cfg.get("bind", True):
        return False
    if libc.unshare(W.CLONE_NEWNS) != 0:
        return False
    if libc.mount(None, b"/", None, W.MS_REC | W.MS_PRIVATE, None) != 0:
        return False
    _own_mounts = True
    return True


def _bind_over(files, tmp):
    """Private mount namespace; bind each candidate file over the original. Root only."""
    libc = W._libc_handle()
    if not _private_mounts():
        return False
    for i, f in enumerate(files):
        src = os.path.join(tmp, ".cand-%d.py" % i)
        with open(src, "w", encoding="utf-8") as fh:
            fh.write(f["text"])
        os.chmod(src, 0o444)
        if libc.mount(src.encode(), f["abs"].encode(), None, W.MS_BIND, None) != 0:
            return False
    return True


def _limits(req):
    mem = int(req.get("memory_mb", 4096)) * 1024 * 1024
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    mem += int(line.split()[1]) * 1024
    except OSError:
        pass
    cpu = int(float(req.get("timeout", 60))) + 2
    plan = [(resource.RLIMIT_AS, mem), (resource.RLIMIT_FSIZE, int(req.get("fsize_mb", 64)) * 1024 * 1024),
            (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, int(req.get("nofile", 1024))),
            (resource.RLIMIT_CPU, cpu)]
    if W._cfg.get("uid") is not None:
        plan.append((resource.RLIMIT_NPROC, int(req.get("nproc", 64))))
    for res, value in plan:
        try:
            soft, hard = resource.getrlimit(res)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(res, (value, value if res != resource.RLIMIT_CPU else value + 1))
        except (ValueError, OSError):
            pass


def _enter_sandbox(req, wfd, tmp):
    """Everything between fork and the first line of untrusted code."""
    os.setsid()
    out = os.open(os.path.join(tmp, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(wfd, 3)
    os.set_inheritable(3, False)
    os.closerange(4, 1 << 16)
    global _child_fd
    wfd = _child_fd = 3
    files = []
    for f in req.get("files", []):
        files.append(dict(f, abs=os.path.join(W._cfg["copy"], f["rel"])))
    global _trace
    _trace = bool(req.get("trace"))
    _mark("child")
    bound = _bind_over(files, tmp) if files else False
    _mark("bound")
    if req.get("nice"):
        try:
            os.nice(int(req["nice"]))  # a speculative replay yields the CPU to the tests beside it
        except (OSError, ValueError):
            pass
    _limits(req)
    uid = W._cfg.get("uid")
    if uid is not None:
        os.chown(os.path.join(tmp, "output.txt"), uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # Die with the worker, even while stopped after the last record (a uid change clears this,
    # so it is set after it): a worker killed hard leaves no child behind.
    libc = W._libc_handle()
    if libc:
        libc.prctl(W.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != W._worker_pid:
        os._exit(70)  # the worker is already gone
    os.environ["HOME"] = tmp
    os.environ["TMPDIR"] = tmp
    # Hypothesis keeps its example database under ./.hypothesis (the copy): in the child it goes
    # to the child's own temporary directory, where writes are allowed.
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(tmp, ".hypothesis")
    hyp = sys.modules.get("hypothesis.configuration")
    if hyp is not None and hasattr(hyp, "set_hypothesis_home_dir"):
        try:
            hyp.set_hypothesis_home_dir(os.path.join(tmp, ".hypothesis"))
        except Exception:
            pass
    tempfile.tempdir = None
    sys.dont_write_bytecode = True
    mods = {}
    for f in files:
        if f.get("module"):
            mods[f["module"]] = (f["abs"], f["text"])
        lines = f["text"].splitlines(True)
        linecache.cache[f["abs"]] = (len(f["text"]), None, lines, f["abs"])
    guard = _Guard(wfd, tmp, files, req)
    guard.files, guard.mods = files, mods
    sys.addaudithook(guard)
    _mark("sandboxed")
    return wfd, guard, bound


_WRITE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.utime",
                 "os.truncate", "os.symlink", "os.link", "shutil.rmtree", "shutil.move", "shutil.copyfile")
# Where each write event carries the dir_fd its first and second path are relative to.
_DIR_FDS = {"os.remove": (1,), "os.rmdir": (1,), "os.mkdir": (2,), "os.chmod": (2,), "os.chown": (3,),
            "os.utime": (3,), "os.rename": (2, 3), "os.symlink": (2, 2), "os.link": (2, 3)}
_LIST_EVENTS = ("os.listdir", "os.scandir")
_FORK_EVENTS = ("os.fork", "os.forkpty")
_SPAWN_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn")
_NET_EVENTS = ("socket.connect", "socket.sendto", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
               "socket.gethostbyaddr", "socket.__new__")
_SIGNAL_EVENTS = ("os.kill", "os.killpg", "signal.pthread_kill")
_INTROSPECTION_EVENTS = ("sys._getframe", "sys._current_frames", "gc.get_objects", "gc.get_referrers",
                         "gc.get_referents", "sys.settrace", "sys.setprofile")
# Every event _Guard._check looks at; any other (builtins.id, os.putenv, ... thousands a second
# in a test run) returns at once.
_CHECKED_EVENTS = frozenset(("open", "object.__setattr__") + _WRITE_EVENTS + _LIST_EVENTS + _FORK_EVENTS
                            + _SPAWN_EVENTS + _NET_EVENTS + _SIGNAL_EVENTS + _INTROSPECTION_EVENTS)
_CHECKED_PREFIXES = ("ctypes.",)


class _Guard:
    """Audit hook: blocks and reports what a candidate must not do. Cannot be removed once added."""

    def __init__(self, wfd, tmp, files, req):
        self.wfd = wfd
        self.tmp = tmp.rstrip("/") + "/"
        self.copy = W._cfg["copy"].rstrip("/") + "/"
        self.spans = {f["abs"]: tuple(f.get("span") or (0, 1 << 30)) for f in files}
        self.own = set(self.spans)
        self.hidden = [p.rstrip("/") for p in W._cfg.get("hide", [])]
        self.block_net = not W._cfg.get("netns")
        self.busy = False
        self.codes = set()  # the candidate's code objects (fast path)
        self.files, self.mods = [], {}
        self.sent = set()
        self.pgid = os.getpgid(0)

    def flag(self, name, detail=""):
        if name in self.sent:
            return
        self.sent.add(name)
        try:
            os.write(self.wfd, (json.dumps({"flag": name, "detail": str(detail)[:300]}) + "\n").encode())
        except OSError:
            pass

    def _candidate_frames(self, nearest_only=False):
        """Whether the candidate's code is on the stack (``nearest_only``: is the direct caller)."""
        f = sys._getframe(1)
        depth = 0
        while f is not None and depth < 300:
            code = f.f_code
            if code in self.codes:
                return True
            name = code.co_filename
            if name in _OWN_FILES or (nearest_only and name.endswith(("/inspect.py", "/traceback.py"))):
                f = f.f_back
                continue
            span = self.spans.get(name)
            if span is not None and span[0] <= code.co_firstlineno <= span[1]:
                return True
            if nearest_only:
                return False
            f = f.f_back
            depth += 1
        return False

    def __call__(self, event, args):
        if event not in _CHECKED_EVENTS and not event.startswith(_CHECKED_PREFIXES):
            if event == "sys.addaudithook" and not self.busy:
                self.busy = True
                try:
                    if self._candidate_frames():
                        self.flag("runner-tamper", "sys.addaudithook")
                        raise PermissionError("regrow: audit hooks are not allowed")
                finally:
                    self.busy = False
            return
        if self.busy:
            return
        self.busy = True
        try:
            self._check(event, args)
        finally:
            self.busy = False

    def _check(self, event, args):
        if event == "open":
            self._open(args)
        elif event in _WRITE_EVENTS:
            dir_fds = _DIR_FDS.get(event, ())
            for i, path in enumerate(args[:2]):
                if event == "os.symlink" and i == 0:
                    continue  # a link's target is text stored in the link, not a path written to
                if isinstance(path, (str, bytes)):
                    path = os.fsdecode(path)
                    fd = args[dir_fds[i]] if i < len(dir_fds) and dir_fds[i] < len(args) else None
                    if isinstance(fd, int) and fd >= 0 and not os.path.isabs(path):
                        # relative to an open directory (shutil.rmtree's safe walk), not to the cwd
                        try:
                            path = os.path.join(os.readlink("/proc/self/fd/%d" % fd), path)
                        except OSError:
                            pass
                    self._write_check(os.path.abspath(path))
        elif event in _LIST_EVENTS:
            path = args[0] if args else None
            if isinstance(path, (str, bytes)) and self._is_history(os.fsdecode(path)) and self._candidate_frames():
                self.flag("reads-history", path)
                raise PermissionError("regrow: not readable here")
        elif event in _FORK_EVENTS:
            if self._candidate_frames():
                self.flag("fork-bomb", event)
                raise PermissionError("regrow: candidates may not fork")
        elif event in _SPAWN_EVENTS:
            if self._candidate_frames():
                text = " ".join(map(str, args))[:200]
                self.flag("reads-history" if "git" in text else "subprocess", text)
                raise PermissionError("regrow: candidates may not start processes")
        elif event.startswith("socket."):
            if event in _NET_EVENTS:
                mine = self._candidate_frames()
                if mine or (self.block_net and event != "socket.__new__" and not self._local(args)):
                    if mine:
                        self.flag("network", event)
                    raise PermissionError("regrow: no network")
        elif event in _SIGNAL_EVENTS:
            if self._candidate_frames():
                self.flag("kill", "%s%r" % (event, tuple(args)))
                raise PermissionError("regrow: candidates may not send signals")
        elif event.startswith("ctypes."):
            if self._candidate_frames():
                self.flag("ctypes", event)
                raise PermissionError("regrow: ctypes is not allowed")
        elif event in _INTROSPECTION_EVENTS:
            if self._candidate_frames(nearest_only=event == "sys._getframe"):
                self.flag("introspection", event)
                raise PermissionError("regrow: introspection of the test runner is not allowed")
        elif event == "object.__setattr__":
            target = args[0] if args else None
            mod = getattr(target, "__module__", "") or ""
            if isinstance(mod, str) and mod.split(".")[0] in ("_pytest", "pytest", "pluggy", "unittest",
                                                               "regrow_pytest", "regrow_worker", "regrow_child", "builtins"):
                if self._candidate_frames():
                    self.flag("runner-tamper", "%s.%s" % (mod, args[1] if len(args) > 1 else "?"))
                    raise PermissionError("regrow: the test runner is read-only")

    @staticmethod
    def _local(args):
        text = repr(args)
        return "127.0.0.1" in text or "localhost" in text or "'::1'" in text or "AF_UNIX" in text

    def _is_history(self, path):
        p = os.path.abspath(path)
        # The home itself (store, downloads, pristine sources) is in self.hidden, whatever its name;
        # its environments stay readable: with the default home ./.regrow the target's own
        # installed files (dist-info, package data) live under it.
        if "/.git" in p or p.endswith("regrow.sqlite") or "/.hg" in p:
            return True
        return any(p == h or p.startswith(h + "/") for h in self.hidden)

    def _write_check(self, p):
        if p.startswith(self.tmp) or p == self.tmp[:-1] or p in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            return
        if not os.path.isdir(os.path.dirname(p)):
            # The operating system would refuse it too (no such directory), and it changes nothing:
            # fail the way it would, without charging anyone (a test may expect this very error).
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", p)
        base = os.path.basename(p)
        rel = p[len(self.copy):] if p.startswith(self.copy) else ""
        if base in W.CONFIG_NAMES or base.endswith(".pth") or (rel and W._is_test_path(rel)):
            self.flag("test-file-tamper", p)
        else:
            self.flag("writes-outside", p)
        raise PermissionError(errno.EACCES, "regrow: read-only outside the temporary directory", p)

    def _open(self, args):
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if not isinstance(path, (str, bytes)):
            return
        p = os.path.abspath(os.fsdecode(path))
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if writing:
            self._write_check(p)
            return
        if self._is_history(p) and self._candidate_frames():
            self.flag("reads-history", p)
            raise PermissionError(errno.EACCES, "regrow: not readable here", p)
        if p.startswith(self.copy):
            rel = p[len(self.copy):]
            if (W._is_test_path(rel) or p in self.own) and self._candidate_frames():
                self.flag("reads-tests" if p not in self.own else "reads-reference", p)
                raise PermissionError(errno.EACCES, "regrow: test files are not readable from the function", p)


def _nested_codes(code):
    out = [code]
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            out.extend(_nested_codes(const))
    return out


def _find_code(code, name, first):
    for c in _nested_codes(code):
        if c.co_name == name and c.co_firstlineno == first:
            return c
    return None


def _snippet_code(text, sym, span):
    """Compile only the candidate function, at its own line numbers, inside its classes.

    Much cheaper than compiling the whole file. The enclosing ``class`` headers give methods
    the same name mangling and ``__class__`` cell they have in the module.
    """
    import __future__

    lines = text.splitlines(True)
    first, last = span
    func = lines[first - 1:last]
    classes = list(sym.get("classes") or [])
    indent = len(func[0]) - len(func[0].lstrip()) if func else 0
    if len(classes) > indent or first - 1 < len(classes):
        return None
    header = ["%sclass %s:\n" % (" " * i, name) for i, name in enumerate(classes)]
    src = "\n" * (first - 1 - len(header)) + "".join(header) + "".join(func)
    flags = 0
    if "from __future__ import annotations" in text:
        flags |= __future__.annotations.compiler_flag
    return compile(src, sym["file"], "exec", flags=flags, dont_inherit=True)


def _patch(files, guard):
    """Swap each candidate function's code into the live function objects. False: use a fresh import."""
    plan = []
    for f in files:
        sym = f.get("symbol")
        if not sym or not f.get("span"):
            return False
        key = (f["abs"], int(sym["first"]))
        funcs = W._funcs.get(key)
        if not funcs or key in W._import_called:
            return False
        try:
            module_code = _snippet_code(f["text"], dict(sym, file=f["abs"]), f["span"])
        except (SyntaxError, ValueError):
            return False
        if module_code is None:
            return False
        new = _find_code(module_code, sym["name"], int(sym["first"]))
        if new is None or any(fn.__code__.co_freevars != new.co_freevars for fn in funcs):
            return False
        plan.append((funcs, new))
    for funcs, new in plan:
        guard.codes.update(_nested_codes(new))
        for fn in funcs:
            fn.__code__ = new
    guard.spans = {}
    return True


def _child(req, wfd, tmp):
    wfd, guard, bound = _enter_sandbox(req, wfd, tmp)
    import regrow_pytest as plugin

    plugin._fd = wfd
    plugin._canary = req.get("canary") or None
    plugin._guard = guard
    plugin._path = "fresh"
    plugin._stop_at_end = True
    plugin._fail_fast = bool(req.get("fail_fast"))
    tests = list(req.get("tests", []))
    fast = (W._session is not None and all(t in W._items for t in tests)
            and (not req.get("files") or _patch(guard.files, guard)))
    _mark("patched")
    if not fast:
        _fresh_imports(guard)
    if req.get("op") == "replay":
        _replay(req, wfd)
        plugin._leave()
    if fast:
        _run_items(plugin, tests, req.get("canary"), bound)
    import pytest
    if any(plugin.KEY_MARK in t for t in tests):  # stable keys: collect their files, keep what was asked
        plugin._select = set(tests)
        tests = list(dict.fromkeys(t.split("::", 1)[0] for t in tests))
    args = W.RUN_ARGS + list(W._cfg.get("pytest_args", [])) + tests
    code = pytest.main(args, plugins=[plugin])
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = -1
    plugin._emit({"event": "exit", "code": code, "bound": bound, "path": "fresh-returned"})
    plugin._leave()


def _fresh_imports(guard):
    """Slow path: forget the copy's modules and the worker's session; import again (candidate from memory)."""
    W._purge()
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "AssertionRewritingHook"]
    W._session = None
    if guard.mods:
        sys.meta_path.insert(0, _MemFinder(guard.mods))


def _run_items(plugin, tests, canary, bound):
    import pytest
    from _pytest.outcomes import Exit

    session = W._session
    items = [W._items[t] for t in tests]
    plugin._alias.update({item.nodeid: t for t, item in zip(tests, items) if item.nodeid != t})
    if canary and items:
        module = items[0].getparent(pytest.Module)
        if module is not None:
            ready = W._canaries.get(module.nodeid) if canary == W._cfg.get("canary") else None
            items.append(ready or pytest.Function.from_parent(module, name=canary, callobj=plugin._canary_test))
    _mark("canary")
    session.items = items
    session.testscollected = len(items)
    session.testsfailed = 0
    plugin.not_passed = 0  # the worker's throwaway warm-up tests failed too
    session.shouldfail = session.shouldstop = False
    plugin._snapshot = W._snapshot or plugin._take_snapshot()
    _mark("tests")
    status = 0
    prof = None
    if W._cfg.get("profile_children"):  # a developer's switch: cProfile of the test loop into the output tail
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    try:
        for i, item in enumerate(items):
            nextitem = items[i + 1] if i + 1 < len(items) else None
            if plugin.not_passed >= plugin.FULL_TRACEBACKS:
                item.repr_failure = plugin.short_failure  # this child's copy of the item only
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            _mark("item%d" % i)
            if session.shouldfail or session.shouldstop:
                break
        status = 1 if session.testsfailed else 0
    except (Exit, KeyboardInterrupt):
        status = 2
    _mark("ran")
    if prof is not None:
        import pstats
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats(W._cfg["profile_children"]).print_stats(45)
        sys.stdout.flush()
    plugin._path = "warm"
    # Only regrow's own session end (snapshot check, exit and end records): the other plugins'
    # (terminal summary, cache, junitxml, conftest hooks) cannot change a recorded outcome, and
    # the last item's teardown has already finalized every fixture.
    plugin.pytest_sessionfinish(session, status)
    plugin._leave()


def _resolve(qualname):
    module, _, local = qualname.partition(":")
    obj = importlib.import_module(module)
    for part in local.split("."):
        obj = getattr(obj, part)
    return obj


AWAIT_LIMIT = 2.0  # seconds a replayed coroutine may take to finish (past them: an error case)


class _AwaitTimeout(Exception):
    pass


def _await(coro):
    """Run a replayed call's coroutine to its end in a fresh event loop; its value, or it raises."""
    import asyncio

    async def bounded():
        task = asyncio.ensure_future(coro)
        done, _pending = await asyncio.wait((task,), timeout=AWAIT_LIMIT)
        if not done:
            task.cancel()
            raise _AwaitTimeout
        return task.result()

    return asyncio.run(bounded())


def _replay(req, wfd):
    import regrow_canon as canon

    def emit(rec):
        os.write(wfd, (json.dumps(rec) + "\n").encode("utf-8", "replace"))

    try:
        fn = _resolve(req["qualname"])
    except BaseException as exc:
        emit({"event": "resolve-error", "message": "%s: %s" % (type(exc).__name__, exc)})
        emit({"event": "end"})
        return
    if hasattr(fn, "__self__") and hasattr(fn, "__func__") and isinstance(fn.__self__, type):
        fn = fn.__func__  # a classmethod: the recorded arguments include the class
    for i, case in enumerate(req.get("cases", [])):
        try:
            args, kwargs = pickle.loads(base64.b64decode(case))
        except BaseException as exc:
            emit({"case": i, "error": "args: %s" % type(exc).__name__})
            continue
        tag = "return"
        try:
            value = fn(*args, **kwargs)
            if isinstance(value, _CoroutineType):  # an async def: the call is what it awaits to
                tag = "await"
                value = _await(value)
            kinds = canon.kinds(value)
            got = [tag, canon.canon(value)]
        except _AwaitTimeout:
            emit({"case": i, "error": "await: not done in %ss" % AWAIT_LIMIT})
            continue
        except BaseException as exc:  # noqa: BLE001 - the candidate's exception is data
            kinds = []
            got = ["await-raise" if tag == "await" else "raise", canon.type_name(type(exc))]
        try:
            after = canon.canon([list(args), kwargs])
        except BaseException:
            after = ["opaque", "args"]
        try:
            emit({"case": i, "got": got, "after": after, "kinds": kinds})
        except BaseException as exc:
            emit({"case": i, "error": "serialise: %s" % type(exc).__name__})
    _mark("replayed")
    emit({"event": "end"})
