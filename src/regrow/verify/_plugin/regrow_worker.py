"""regrow's warm worker. Runs in the target's interpreter; imports nothing from regrow.

Started once per (source snapshot, interpreter) by `regrow.engine`, with its working directory
in a private copy of the source. It imports pytest and collects the suite once (so the target's
third-party dependencies are imported and the test modules' bytecode is cached), then forgets
every module of the copy. Each request is served by a forked child:

- the child gets its own session and process group, resource limits, a private temporary
  directory, an unprivileged user id when the worker is root, a private mount namespace with the
  candidate's file bind-mounted over the original (root) or served from memory by an import hook
  (everywhere), an audit hook that blocks and reports hostile actions, and no network (the worker
  runs in a network namespace where the machine allows it; the audit hook blocks sockets
  otherwise);
- the child reports over a pipe that only it and the worker hold, one JSON line per event, as
  each event happens (per-test outcomes, flags, a session-end sentinel); it leaves by
  ``os._exit`` so no exit hook of the candidate runs;
- the worker waits for the child with a wall deadline, kills its group and every descendant
  (the worker is a child subreaper, so nothing can escape by double-forking), checks that the
  copy was not written to, and answers the engine with one JSON line.

Protocol on stdin/stdout: one JSON object per line each way. The first line the worker writes
is ``{"ready": ...}``.
"""

import ctypes
import errno
import importlib.abc
import importlib.util
import io
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

_childside = None  # regrow_child, the sandboxed child's side: imported by main() once sys.path is set

CONFIG_NAMES = ("conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "sitecustomize.py",
                "usercustomize.py", ".pytest.ini")
MAX_RECORDS_BYTES = 32 * 1024 * 1024
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
_worker_pid = os.getpid()  # this module runs as the worker's main script: the children's parent
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")

_cfg = {}
_proto_in = _proto_out = None
_baseline = None
_libc = None
_THIS = os.path.abspath(__file__)


# ---------------------------------------------------------------- worker (trusted) side

def _send(obj):
    data = (json.dumps(obj) + "\n").encode("utf-8", "replace")
    while data:
        n = os.write(_proto_out, data)
        data = data[n:]


def _libc_handle():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    return _libc


def _hide_paths(paths):
    """Cover each path with an empty read-only tmpfs (dirs) or /dev/null (files). Needs a mount namespace."""
    hidden = []
    for p in paths:
        try:
            if os.path.isdir(p):
                cmd = ["mount", "-t", "tmpfs", "-o", "ro,size=4k,mode=000", "tmpfs", p]
            elif os.path.exists(p):
                cmd = ["mount", "--bind", "/dev/null", p]
            else:
                continue
            if subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
                hidden.append(p)
        except OSError:
            pass
    return hidden


def _setup():
    global _proto_in, _proto_out
    _proto_in, _proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # stray prints in the worker must not corrupt the protocol
    os.close(devnull)
    copy = _cfg["copy"]
    os.chdir(copy)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p not in ("", here, os.getcwd())]
    sys.path[0:0] = [copy, here] + [os.path.join(copy, r) if r not in ("", ".") else copy for r in _cfg["roots"]]
    facts = {"netns": bool(_cfg.get("netns")), "hidden": []}
    if _cfg.get("netns"):
        subprocess.call(["ip", "link", "set", "lo", "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if _cfg.get("mountns"):
        facts["hidden"] = _hide_paths(_cfg.get("hide", []))
    libc = _libc_handle()
    if libc:
        facts["subreaper"] = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    if _cfg.get("uid") == "auto":
        if _cfg.get("mountns"):
            _cfg["uid"] = 300000 + os.getpid()  # unique while this worker lives; never a real user
            facts["remapped"] = _remap_unreachable()
        else:
            _cfg["uid"] = None  # without a mount namespace the interpreter may be unreadable to it
    facts["uid"] = _cfg.get("uid")
    return facts


# regrow_pytest is handed to pytest as a module object (it is imported before pytest starts):
# naming it with -p would make pytest warn that it cannot rewrite its asserts, an error in a
# project with filterwarnings = error.
RUN_ARGS = ["-p", "no:cacheprovider", "-q", "--tb=native", "-s", "-o", "console_output_style=classic"]
_session = None  # the pre-collected pytest session (fast path)
_items = {}  # node id -> collected item
_funcs = {}  # (file, first line) -> function objects whose code lives in the copy
_import_called = set()  # (file, first line) of the copy's functions that ran while importing
_canaries = {}  # test module node id -> its must-fail item, named as the engine asked
_snapshot = None  # identities of the runner's critical functions and builtins, taken once in the worker
_trash = []  # candidates' temporary directories, removed after the answer is sent


def _world_reachable(path):
    """Whether any user can list ``path`` (every ancestor searchable by others)."""
    path = os.path.abspath(path)
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        p = "/".join(parts[:i]) or "/"
        try:
            mode = os.stat(p).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _remap_unreachable():
    """Bind-mount sys.path entries an unprivileged child could not read somewhere it can.

    A pyenv interpreter under /root is the usual case: the stdlib must stay importable after the
    child drops to its own uid. Packages already imported get their ``__path__`` rewritten.
    """
    mapping = {}
    base = os.path.join(os.path.dirname(_cfg["tmp"]), "paths")
    for entry in list(sys.path):
        if not entry or entry in mapping or not os.path.isdir(entry) or _world_reachable(entry):
            continue
        dst = os.path.join(base, str(len(mapping)))
        os.makedirs(dst, exist_ok=True)
        os.chmod(base, 0o755)
        if subprocess.call(["mount", "--bind", "-o", "ro", entry, dst], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            mapping[entry] = dst
    if not mapping:
        return 0

    def remap(p):
        for old, new in mapping.items():
            if p == old or p.startswith(old + "/"):
                return new + p[len(old):]
        return p

    sys.path[:] = [remap(p) for p in sys.path]
    for mod in list(sys.modules.values()):
        paths = getattr(mod, "__path__", None)
        if isinstance(paths, list):
            paths[:] = [remap(p) for p in paths]
    sys.path_importer_cache.clear()
    return len(mapping)


def _warm():
    """Import pytest and the suite, configure a session and collect every test, once.

    Each child then swaps one function's code object (every reference to the function sees
    it) and runs the already collected items it needs. The functions that ran at import time
    are noted: a candidate for one of them gets a fresh import instead (slow path).
    """
    global _session, _items
    start = time.perf_counter()
    sys.dont_write_bytecode = False  # cache bytecode (and pytest's rewritten tests) in the copy
    import pytest  # noqa: F401
    import regrow_pytest  # noqa: F401
    import regrow_canon  # noqa: F401
    _cache_distributions()
    facts = {"collected": 0, "collect_errors": 0}
    if _cfg.get("collect", True):
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = io.StringIO()
        copy = _cfg["copy"].rstrip("/") + "/"

        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_filename.startswith(copy):
                _import_called.add((frame.f_code.co_filename, frame.f_code.co_firstlineno))

        try:
            sys.setprofile(profile)
            _session = _start_session(list(_cfg.get("pytest_args", [])))
            _items = {item.nodeid: item for item in _session.items}
            for nodeid, key in regrow_pytest.stable_keys(_session.items).items():
                _items.setdefault(key, _items[nodeid])  # a test id recorded as its stable key
            _prewarm(_session)
            facts["collected"] = len(_items)
            facts["collect_errors"] = int(_session.testsfailed)
        except BaseException as exc:  # a suite that does not collect in-process: slow path only
            facts["session_error"] = "%s: %s" % (type(exc).__name__, exc)
            _session = None
        finally:
            sys.setprofile(None)
            sys.stdout, sys.stderr = old
            os.dup2(saved, 2)
            os.close(saved)
        _index_functions()
    sys.dont_write_bytecode = True
    global _snapshot
    if _session is not None:
        _snapshot = regrow_pytest._take_snapshot()  # what every child's runner must still be (same ids after fork)
    import gc
    gc.collect()
    gc.freeze()  # children need not scan (or copy) the worker's objects on each collection
    facts.update({"warm_seconds": time.perf_counter() - start, "modules": len(sys.modules),
                  "functions": len(_funcs), "import_called": len(_import_called)})
    return facts


PREWARM_ROUNDS = 12  # enough calls for CPython to specialise the runner's code paths


def _prewarm(session):
    """Exercise pytest's machinery in the worker on throwaway tests, never the suite's own.

    Children forked from a worker whose runner code has never run pay for it on every item:
    first calls, lazily computed attributes, imports and caches for formatting failures, and
    CPython's specialisation of hot bytecode (each a write to a shared page, so a copy per
    child). Passing and failing throwaway tests, plain and unittest-style, run a few rounds
    here, and every collected item's lazy attributes are computed, so children start from a
    runner that is already warm. The suite's own tests never run in the worker: what they
    would leave behind (caches filled by the reference code) must not reach a candidate.
    """
    import inspect

    import pytest
    import regrow_pytest

    if not session.items:
        return
    for item in session.items:  # the canary of each test module, built once (see _run_items)
        mod = item.getparent(pytest.Module)
        if mod is not None and mod.nodeid not in _canaries and _cfg.get("canary"):
            try:
                _canaries[mod.nodeid] = pytest.Function.from_parent(mod, name=_cfg["canary"],
                                                                    callobj=regrow_pytest._canary_test)
            except Exception:
                pass
    module = session.items[0].getparent(pytest.Module)
    if module is None:
        return

    def regrow_prewarm():
        assert [1, 2] == [1, 3], "prewarm"

    def regrow_prewarm_pass():
        assert [1, 2] == [1, 2]

    dummies = [pytest.Function.from_parent(module, name=name, callobj=fn)
               for name, fn in (("regrow_prewarm", regrow_prewarm), ("regrow_prewarm_pass", regrow_prewarm_pass))]
    dummies.extend(_unittest_dummies(module))
    for _ in range(PREWARM_ROUNDS):
        for i, item in enumerate(dummies):
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=dummies[i + 1] if i + 1 < len(dummies) else None)
    for item in session.items:  # lazily computed, cached on the item: compute them once, here
        try:
            item.location, item.keywords, item.ihook, item.obj  # noqa: B018
            list(item.iter_markers())
        except Exception:
            pass
    inspect.getmodule(regrow_prewarm)
    session.testsfailed = 0


def _unittest_dummies(module):
    """A passing and a failing unittest-style throwaway item in ``module`` (none if that fails)."""
    import unittest

    from _pytest.unittest import UnitTestCase

    class RegrowPrewarm(unittest.TestCase):
        def test_pass(self):
            self.assertEqual([1, 2], [1, 2])

        def test_fail(self):
            self.assertEqual([1, 2], [1, 3])

    name = "RegrowPrewarm_%d" % id(RegrowPrewarm)
    target = module.obj
    setattr(target, name, RegrowPrewarm)  # the collector looks its class up on the module
    try:
        cls = UnitTestCase.from_parent(module, name=name)
        cls.obj  # noqa: B018 - resolved now, while the module holds it
        items = list(cls.collect())
        for item in items:
            item.obj  # noqa: B018
        return items
    except Exception:
        return []
    finally:
        try:
            delattr(target, name)
        except AttributeError:
            pass


def _start_session(extra):
    from _pytest.config import _prepareconfig
    from _pytest.main import Session

    import regrow_pytest

    config = _prepareconfig(RUN_ARGS + extra, plugins=[regrow_pytest])
    config._do_configure()
    session = Session.from_config(config)
    config.hook.pytest_sessionstart(session=session)
    session.perform_collect()
    return session


def _index_functions():
    import gc
    import types

    copy = _cfg["copy"].rstrip("/") + "/"
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType:
            code = obj.__code__
            if code.co_filename.startswith(copy):
                _funcs.setdefault((code.co_filename, code.co_firstlineno), []).append(obj)


class _Dist:
    """A distribution whose entry points were read once (pytest scans them on every session)."""

    def __init__(self, dist):
        self._dist = dist
        self.entry_points = dist.entry_points

    def __getattr__(self, name):
        return getattr(self._dist, name)


def _cache_distributions():
    import importlib.metadata as md

    original = md.distributions
    cached = [_Dist(d) for d in original()]

    def distributions(**kwargs):
        return original(**kwargs) if kwargs else iter(cached)

    md.distributions = distributions


def _purge():
    copy = _cfg["copy"].rstrip("/") + "/"
    gone = []
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None) or ""
        paths = list(getattr(mod, "__path__", None) or [])
        if (f and os.path.abspath(f).startswith(copy)) or any(str(p).startswith(copy) for p in paths):
            gone.append(name)
            del sys.modules[name]
    importlib.invalidate_caches()
    return len(gone)


def _fingerprint():
    """(path -> stat facts) for the copy, and the mtimes of the interpreter's site directories."""
    out = {}
    for top in [_cfg["copy"]] + list(_cfg.get("watch", [])):
        for dirpath, dirnames, filenames in os.walk(top):
            if top != _cfg["copy"]:
                dirnames[:] = []
            try:
                st = os.lstat(dirpath)
                out[dirpath] = (st.st_mtime_ns, st.st_ctime_ns)
            except OSError:
                continue
            if top != _cfg["copy"]:
                continue
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                out[p] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return out


def _tamper_flags(before, after):
    flags = set()
    changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p)]
    for p in changed:
        base = os.path.basename(p)
        rel = os.path.relpath(p, _cfg["copy"])
        if base in CONFIG_NAMES or base.endswith(".pth") or _is_test_path(rel):
            flags.add("test-file-tamper")
        else:
            flags.add("writes-outside")
    return sorted(flags), changed[:10]


def _is_test_path(rel):
    parts = rel.replace(os.sep, "/").split("/")
    base = parts[-1]
    return (base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"
            or any(p in ("tests", "test", "testing") for p in parts[:-1]))


def _uid_leftovers(uid):
    found = []
    for top in WORLD_WRITABLE:
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        if entry.stat(follow_symlinks=False).st_uid == uid:
                            found.append(entry.path)
                    except OSError:
                        pass
        except OSError:
            pass
    for p in found:
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass
    return found


def _children_of(pid):
    kids = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return kids
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                data = fh.read()
            ppid = int(data[data.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(name))
    return kids


def _kill_uid(uid):
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


def _kids():
    """This process's children: /proc/self/task/<pid>/children, else a scan of /proc."""
    try:
        with open("/proc/self/task/%d/children" % os.getpid()) as fh:
            return [int(x) for x in fh.read().split()]
    except (OSError, ValueError):
        return _children_of(os.getpid())


def _reap_all(uid):
    """Kill and reap every descendant but the idle spares and the children already killed after
    stopping (`_dying`: reaped here once dead; orphans are re-parented to this subreaper).
    Returns how many were killed."""
    killed = 0
    for _ in range(200):
        try:
            while True:
                pid, _status = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    break
                _forget_spare(pid)
                _dying.discard(pid)
        except ChildProcessError:
            _dying.clear()
            return killed
        spare = {sp[0] for sp in _spares}
        kids = [k for k in _kids() if k not in spare and k not in _dying]
        if not kids:
            return killed
        if uid is not None:
            _kill_uid(uid)
        for kid in kids:
            killed += 1
            _sigkill(kid)
        time.sleep(0.005)
    return killed


_END = b'"event": "end"'


def _stopped(pid):
    """Whether child ``pid`` is stopped (its state stays for the waitpid that reaps it)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return info is not None and info.si_code == os.CLD_STOPPED


def _drain(rfd, pid, deadline):
    """Read the child's records until it exits (pidfd), stops after its end record (see
    regrow_pytest._leave), or the deadline. Returns (bytes, timed_out, overflow, stopped)."""
    chunks, size = [], 0

    def keep(data: bytes) -> bool:
        """Keep ``data`` while under the records limit; False once over it (the rest is dropped)."""
        nonlocal size
        if size >= MAX_RECORDS_BYTES:
            return False
        chunks.append(data)
        size += len(data)
        return True

    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
    timed_out = overflow = stopped = False
    watch = [rfd] + ([pidfd] if pidfd is not None else [])
    exited = False
    ended = False  # an end record came: from now on, look for the stop that follows it
    tail = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if ended and _stopped(pid):
                stopped = True
                break
            wait = 0.0002 if ended else (0.05 if pidfd is None else left)
            ready, _, _ = select.select(watch, [], [], min(left, wait))
            if rfd in ready:
                data = os.read(rfd, 1 << 16)
                if not data:
                    break
                overflow = not keep(data) or overflow
                if not ended:
                    ended = _END in tail + data
                    tail = data[-len(_END):]
                continue
            if pidfd is not None and pidfd in ready:
                exited = True
            elif pidfd is None:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    exited = True
            if exited:
                # the child is gone; take what is already in the pipe (grandchildren may hold it open)
                while True:
                    r, _, _ = select.select([rfd], [], [], 0)
                    if not r:
                        break
                    data = os.read(rfd, 1 << 16)
                    if not data:
                        break
                    keep(data)
                break
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return b"".join(chunks), timed_out, overflow, stopped


_dying = set()  # stopped children killed after their answer; reaped by the next _reap_all


def _stray_kids(pid):
    """Processes a stopped child started that are still alive (its own children, every thread)."""
    kids = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as fh:
                kids.extend(int(x) for x in fh.read().split())
    except (OSError, ValueError):
        pass
    return kids


def _idle_priority(pid, idle):
    """Put ``pid`` (0: this process) under SCHED_IDLE, where it runs only on a CPU nothing else
    wants, or back under SCHED_OTHER. Whether that worked."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE if idle else os.SCHED_OTHER, os.sched_param(0))
        return True
    except (OSError, AttributeError):
        return False


def _kill_stopped():
    """Kill the children that stopped after their last record (`_wait_status`), once their answer
    is out: tearing down a child's memory takes milliseconds of CPU, and started while regrow was
    being woken with the answer, it held regrow back by up to 3 ms (measured)."""
    while _to_kill:
        pid = _to_kill.pop()
        if pid in _dying:  # not reaped yet (else its pid may belong to someone else by now)
            _kill(pid)


def _sigkill(pid):
    """SIGKILL a process and the group it leads (children lead their own after setsid)."""
    for fn in (os.killpg, os.kill):
        try:
            fn(pid, signal.SIGKILL)
        except OSError:
            pass


def _kill(pid):
    """SIGKILL a child and its group, its teardown at idle priority (reaped later: `_dying`)."""
    _idle_priority(pid, True)
    _sigkill(pid)
    _dying.add(pid)


def _wait_status(pid, stopped=False):
    """(exit code, signal) of a finished child; kill its group first. A child stopped after its
    last record (or one whose result no longer matters) is not waited for: it stays stopped (it
    cannot run) and is killed after the answer (`_kill_stopped`), then reaped as it dies (`_dying`)."""
    if stopped:
        _to_kill.append(pid)
        _dying.add(pid)
        return 0, None
    try:
        os.killpg(pid, signal.SIGKILL)  # the child's group: pid == pgid after setsid
    except OSError:
        pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None, None
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def _tail(path, limit=8000):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


# Children are forked ahead of requests ("spares"): a spare has done nothing but fork and close
# the worker's descriptors, and waits, still in the worker's process group and as the worker's
# user, for one request on a pipe of its own. Taking one moves fork and the first page faults
# off the request's path. A spare whose worker dies reads end-of-file and exits.
_spares = []  # (pid, request write end, result read end, tmp dir)
SPARES = 2


def _forget_spare(pid):
    for sp in list(_spares):
        if sp[0] == pid:
            _spares.remove(sp)
            for fd in sp[1:3]:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _set_name(name):
    libc = _libc_handle()
    if libc:
        libc.prctl(15, name, 0, 0, 0)  # PR_SET_NAME


def _new_tmp():
    tmp = tempfile.mkdtemp(prefix="regrow-cand-", dir=_cfg.get("tmp"))
    uid = _cfg.get("uid")
    if uid is not None:
        os.chown(tmp, uid, uid)
    return tmp


# Spares (and the worker's own work after an answer) go to idle priority only where the worker
# can lift them back (root): a spare left under SCHED_IDLE would run its candidate's tests only
# when nothing else wants a CPU.
_CAN_IDLE = os.geteuid() == 0
_to_kill = []


def _spawn():
    """Fork one spare child."""
    tmp = _new_tmp()
    qr, qw = os.pipe()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # ---- spare child: wait for its request
        try:
            os.close(qw)
            os.close(rfd)
            for fd in (_proto_in, _proto_out):
                os.close(fd)
            for sp in _spares:
                for fd in sp[1:3]:
                    os.close(fd)
            _set_name(b"regrow-spare")  # what a spare is, for anyone listing processes
            _childside._private_mounts()  # the request's bind mount then only mounts
            if _CAN_IDLE:  # its prefault takes only CPU time nothing else wants (see _launch)
                _idle_priority(0, True)
            if _cfg.get("prefault"):
                _prefault(qr)
            buf = b""
            while True:
                data = os.read(qr, 1 << 20)
                if not data:
                    break
                buf += data
            os.close(qr)
            if not buf:
                os._exit(0)  # the worker went away, or dropped this spare
            _set_name(b"regrow-child")
            req = json.loads(buf)
        except BaseException:
            os._exit(0)
        _childside._child_main(req, wfd, tmp)
    os.close(qr)
    os.close(wfd)
    _spares.append((pid, qw, rfd, tmp))


_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault pages in writable, as if each were written
_PREFAULT_CHUNK = 64 * 4096


def _private_ranges():
    """The worker's anonymous private writable mappings (heap, allocator arenas) as (start, end)."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 5 or parts[1] != "rw-p":
            continue
        name = parts[5] if len(parts) > 5 else ""
        if name and name != "[heap]":
            continue  # files' data segments, the stack, vvar: little to gain
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        out.append((lo, hi))
    return out


def _prefault(qr):
    """Take the copy-on-write faults of the worker's private memory now, while this spare waits.

    A child that runs tests writes to a few thousand of the worker's pages (reference counts,
    allocator pools), each write a fault that copies a page: milliseconds on the request's path.
    Populating the heap in advance moves that work here. Chunked, and abandoned the moment the
    request arrives, so a spare taken early is never slower than one that did not prefault.
    """
    libc = _libc_handle()
    if not libc:
        return
    budget = int(_cfg.get("prefault_mb", 64)) * 1024 * 1024  # a large heap is not copied whole
    for lo, hi in _private_ranges():
        for start in range(lo, hi, _PREFAULT_CHUNK):
            if budget <= 0 or select.select([qr], [], [], 0)[0]:
                return
            size = min(_PREFAULT_CHUNK, hi - start)
            budget -= size
            if libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(size), _MADV_POPULATE_WRITE) != 0:
                if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS):
                    return  # an older kernel: nothing to do
        # other errors (a range unmapped meanwhile): go on with the next


def _refill():
    while len(_spares) < int(_cfg.get("spares", SPARES)):
        _spawn()


def _launch(req):
    """Start ``req`` in a child: a spare when one is ready, else a fresh fork. (pid, result fd, tmp)."""
    while _spares:
        pid, qw, rfd, tmp = _spares.pop(0)
        if _CAN_IDLE:
            _idle_priority(pid, False)  # a normal process again before it reads its request
        try:
            data = json.dumps(req).encode()
            while data:
                data = data[os.write(qw, data):]
            os.close(qw)
            return pid, rfd, tmp
        except OSError:  # it died: reap it and take another
            for fd in (qw, rfd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            shutil.rmtree(tmp, ignore_errors=True)
    tmp = _new_tmp()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _childside._child_main(req, wfd, tmp)
    os.close(wfd)
    return pid, rfd, tmp


def _records(raw):
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _signal_flags(sig, overflow):
    flags = []
    if overflow or sig == signal.SIGXFSZ:
        flags.append("huge-output")
    if sig == signal.SIGXCPU:
        flags.append("timeout")
    if sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE):
        flags.append("crash-signal")
    return flags


def _all_passed(raw, canary):
    """Whether a test child's records say every test passed and the session ended (the parent
    judges for itself; this only decides whether a replay running alongside is still wanted)."""
    ended = False
    for rec in _records(raw):
        if "flag" in rec or "collect_error" in rec:
            return False
        if "test" in rec:
            if canary and str(rec["test"]).endswith("::" + str(canary)):
                continue
            if rec.get("outcome") != "passed":
                return False
        elif rec.get("event") == "end":
            ended = True
    return ended


def _serve(req):
    """Run one request in a child; a "run" request with a "replay" part also runs that replay in a
    second child at the same time (each child fresh from the worker, as if run one after the other)."""
    global _baseline
    start = time.monotonic()
    trace = [] if req.get("trace") else None
    uid = _cfg.get("uid")
    jobs = [req]
    if req.get("op") == "run" and isinstance(req.get("replay"), dict):
        sub = dict(req["replay"], op="replay", files=req.get("files", []), timeout=req.get("timeout", 60.0),
                   memory_mb=req.get("memory_mb", 4096), trace=req.get("trace"), nice=10)
        jobs = [dict(req, replay=None), sub]
    started = [_launch(j) for j in jobs]
    if trace is not None:
        trace.append(("forked", time.monotonic()))
    deadline = start + float(req.get("timeout", 60.0))
    results = []
    strays = []
    abandon = False
    for i, (pid, rfd, tmp) in enumerate(started):
        if abandon:  # the replay can no longer matter: kill it now, do not wait for its teardown
            _kill(pid)
            strays.extend(_stray_kids(pid))
            os.close(rfd)
            results.append((b"", False, False, None, signal.SIGKILL, tmp))
            continue
        raw, timed_out, overflow, stopped = _drain(rfd, pid, deadline)
        os.close(rfd)
        if trace is not None:
            trace.append(("drained", time.monotonic()))
        if stopped:
            strays.extend(_stray_kids(pid))
        code, sig = _wait_status(pid, stopped)
        results.append((raw, timed_out, overflow, code, sig, tmp))
        abandon = i == 0 and len(started) > 1 and not _all_passed(raw, req.get("canary"))
    for kid in strays:  # started by a child that stopped: it cannot reap them
        _sigkill(kid)
    if strays and uid is not None:
        _kill_uid(uid)
    leftovers = _reap_all(uid) + len(strays)
    if trace is not None:
        trace.append(("reaped", time.monotonic()))
    common = []
    if leftovers:
        common.append("leftover-processes")
    outside = _uid_leftovers(uid) if uid is not None else []
    if outside:
        common.append("writes-outside")
    dirty = False
    if _cfg.get("fingerprint"):
        after = _fingerprint()
        if after != _baseline:
            tflags, changed = _tamper_flags(_baseline, after)
            common.extend(tflags)
            dirty = True  # the engine replaces a worker whose copy was written to
    answers = []
    for raw, timed_out, overflow, code, sig, tmp in results:
        flags = _signal_flags(sig, overflow) + common
        try:
            if os.path.getsize(os.path.join(tmp, "output.txt")) >= int(req.get("fsize_mb", 64)) * 1024 * 1024:
                flags.append("huge-output")  # the file-size limit was reached (Python ignores SIGXFSZ)
        except OSError:
            pass
        tail = _tail(os.path.join(tmp, "output.txt"))
        _trash.append(tmp)  # its owner's processes are dead: nothing more can appear in it
        answers.append({"records": _records(raw), "timed_out": timed_out, "returncode": code, "signal": sig,
                        "flags": sorted(set(flags)), "output_tail": tail})
    if trace is not None:
        trace.append(("done", time.monotonic()))
        trace.insert(0, ("start", start))
    resp = dict(answers[0], id=req.get("id"), trace=trace, duration=time.monotonic() - start, dirty=dirty,
                outside=outside[:5])
    if len(answers) > 1:
        resp["replay"] = answers[1]
    return resp


# ---------------------------------------------------------------- child (untrusted) side

def _reap_dying_until_request():
    """Reap the children killed after their answer as they finish dying, until a request comes."""
    while _dying:
        for pid in list(_dying):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                _dying.discard(pid)
        if not _dying or select.select([_proto_in], [], [], 0.002)[0]:
            return


def main():
    global _cfg, _baseline
    _cfg = json.loads(sys.argv[1])
    facts = _setup()
    global _childside
    import regrow_child as _childside  # before any fork: every child has it
    _childside.bind(sys.modules[__name__])
    facts.update(_warm())
    if _cfg.get("fingerprint"):
        _baseline = _fingerprint()
    _refill()
    _send(dict(ready=True, pid=os.getpid(), **facts))
    try:
        _loop()
    finally:
        _kill_stopped()  # children stopped after their last answer do not outlive the worker


def _loop():
    buf = b""
    while True:
        while b"\n" not in buf:
            _reap_dying_until_request()
            data = os.read(_proto_in, 1 << 20)
            if not data:
                return
            buf += data
        line, buf = buf.split(b"\n", 1)
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if req.get("op") == "quit":
            return
        try:
            resp = _serve(req)
        except BaseException:
            resp = {"id": req.get("id"), "error": traceback.format_exc()[-3000:]}
        _send(resp)
        # What follows the answer (killing the stopped children, removing their temp dirs,
        # forking new spares) runs at idle priority, so regrow, woken by the answer, gets a CPU at
        # once instead of waiting out the scheduler's wake-up granularity behind it.
        idle = _CAN_IDLE and _idle_priority(0, True)
        _kill_stopped()
        while _trash:
            shutil.rmtree(_trash.pop(), ignore_errors=True)
        try:
            _refill()
        except OSError:
            pass
        if idle:
            _idle_priority(0, False)


if __name__ == "__main__":
    main()
