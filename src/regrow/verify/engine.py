"""The warm verification engine: long-lived workers that fork a sandboxed child per candidate.

A worker (``_plugin/regrow_worker.py``) is the target's own interpreter, started once per
(source snapshot, interpreter) in a private *copy* (not links: nothing a candidate writes can
reach the pristine tree). It has imported pytest and the target's dependencies and collected
the suite; each request forks a child that sees the candidate's file instead of the original
and runs only the requested tests (or replays recorded calls), under the isolation the worker
docstring lists. This module owns the workers: starts them (in a network and mount namespace
with ``unshare`` when the machine allows it), pools them for parallel verification, replaces one
that died or whose copy was written to, and turns its answers into `Outcome` records.

The parent (this process) decides; a worker only reports. What a child sends is parsed
defensively: the first record for a test wins, the session-end sentinel and the must-fail
canary are checked here.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regrow.errors import EngineError
from regrow.verify.sandbox import PLUGIN_DIR, Outcome, parse_records
from regrow.source.workspace import private_copy

WORKER = PLUGIN_DIR / "regrow_worker.py"
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_UNSHARE: bool | None = None
_UNSHARE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the warm engine isolates and how many workers it keeps."""

    workers: int = 2  # parallel candidates (one forked child per worker at a time)
    namespaces: bool = True  # run workers under `unshare --net --mount` when that works (root)
    drop_privileges: bool = True  # children run as a per-worker unprivileged uid when the worker is root
    bind_candidate: bool = True  # bind-mount the candidate file over the original in the child (root)
    collect: bool = True  # collect the whole suite once at start (imports dependencies, caches bytecode)
    fingerprint: bool = True  # after each child, check that the copy was not written to (no uid drop)
    hide: tuple[str, ...] = ()  # paths children must not see (history, the store): covered by empty mounts
    start_timeout: float = 300.0
    grace: float = 15.0  # seconds past a request's own timeout before the worker itself is killed
    pytest_args: tuple[str, ...] = ()
    spares: int = 2  # children each worker keeps forked ahead of requests (0: fork on each request)
    # A waiting spare copies the worker's private memory ahead of its request (the copy-on-write
    # faults a child would otherwise take while running tests), stopping as soon as a request comes.
    prefault: bool = True
    prefault_mb: int = 64  # at most this much per spare (a large worker heap is not copied whole)


def unshare_works() -> bool:
    """Whether ``unshare --net --mount`` works here (root, or user namespaces allowed)."""
    global _UNSHARE
    with _UNSHARE_LOCK:
        if _UNSHARE is None:
            exe = shutil.which("unshare")
            if exe is None or os.geteuid() != 0:
                _UNSHARE = False
            else:
                try:
                    _UNSHARE = subprocess.run([exe, "--net", "--mount", "--propagation", "private", "true"],
                                              capture_output=True, timeout=20).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    _UNSHARE = False
        return _UNSHARE


def module_name(relpath: str, import_roots: tuple[str, ...]) -> str | None:
    """The import name of the file ``relpath`` given the import roots, or None when outside them."""
    rel = relpath.replace(os.sep, "/")
    if not rel.endswith(".py"):
        return None
    best = None
    for root in import_roots:
        root = root.strip("/")
        prefix = "" if root in ("", ".") else root + "/"
        if rel.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    if best is None:
        return None
    parts = rel[len(best):-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def sweep_stale(base: Path, min_age: float = 60.0) -> int:
    """Remove engine directories left by processes that died without closing (SIGKILL, SIGTERM)."""
    removed = 0
    for d in base.glob("regrow-engine-*"):
        try:
            if time.time() - d.stat().st_mtime < min_age:
                continue
            owner = int((d / "owner").read_text())
            os.kill(owner, 0)
            continue  # its owner is alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # no owner recorded: not ours to judge
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


def _searchable(path: Path) -> bool:
    """Whether any user may traverse every directory from / down to ``path``."""
    path = path.resolve()
    for p in [*reversed(path.parents), path]:
        try:
            if not os.stat(p).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _hide_plan(hide: tuple[str, ...], keep: list[Path]) -> list[str]:
    """Paths to cover so that ``hide`` is unreadable while everything under ``keep`` stays visible."""
    out: list[str] = []
    keep = [k.resolve() for k in keep]

    def visit(path: Path, depth: int) -> None:
        if not path.exists():
            return
        if not any(k == path or path in k.parents for k in keep):
            out.append(str(path))
            return
        if depth > 6 or not path.is_dir() or any(k == path for k in keep):
            return
        for child in path.iterdir():
            if not child.is_symlink():
                visit(child, depth + 1)

    for p in hide:
        visit(Path(p).resolve(), 0)
    return out


_INTERNAL = ("/_pytest/", "/pluggy/", "regrow_worker.py", "regrow_child.py", "regrow_pytest.py")


def prune_traceback(message: str) -> str:
    """Drop the test runner's own frames from a native traceback (what a model needs is its code and the test)."""
    if "Traceback (most recent call last)" not in message:
        return message
    lines = message.splitlines()
    out: list[str] = []
    skip = False
    for line in lines:
        if line.startswith("  File "):
            skip = any(part in line for part in _INTERNAL)
            if skip:
                continue
        elif skip and line.startswith("    "):
            continue
        else:
            skip = False
        out.append(line)
    return "\n".join(out)


class _Worker:
    """One warm worker process and its private copy."""

    def __init__(self, engine: "Engine", slot: int):
        self.engine, self.slot = engine, slot
        self.proc: subprocess.Popen | None = None
        self.dir: Path | None = None
        self.facts: dict = {}
        self.served = 0
        self._buf = b""
        # stop() may run from the main thread (close on Ctrl-C) while a verify thread also stops
        # this worker after an overrun: only one of them may tear it down.
        self._stop_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        eng = self.engine
        cfg = eng.config
        root_user = os.geteuid() == 0
        base = eng.workdir
        if base is not None and root_user and cfg.drop_privileges and not _searchable(Path(base)):
            base = None  # children with a dropped uid could not reach it
        self.dir = Path(tempfile.mkdtemp(prefix="regrow-engine-", dir=base))
        os.chmod(self.dir, 0o755)  # children with a dropped uid must reach the copy
        (self.dir / "owner").write_text(str(os.getpid()))  # lets a later engine sweep it if we die unclosed
        copy = private_copy(eng.root, self.dir / "src", link=False)
        (self.dir / "tmp").mkdir()
        os.chmod(self.dir / "tmp", 0o755)
        ns = cfg.namespaces and unshare_works()
        uid = "auto" if (root_user and cfg.drop_privileges) else None
        keep = [self.dir, Path(eng.python).parent.parent, PLUGIN_DIR]
        # What candidates must not read (the home: store, downloads, pristine sources; the source
        # itself): covered with empty mounts where namespaces work, and refused by the audit guard
        # everywhere, whatever the home is called.
        hide = _hide_plan(tuple(cfg.hide) + (str(eng.root),), keep)
        worker_cfg = {
            "copy": str(copy), "roots": list(eng.import_roots), "tmp": str(self.dir / "tmp"),
            "netns": ns, "mountns": ns, "hide": hide, "uid": uid, "collect": cfg.collect,
            "fingerprint": cfg.fingerprint and uid is None, "bind": cfg.bind_candidate,
            "pytest_args": list(cfg.pytest_args), "spares": cfg.spares,
            "prefault": cfg.prefault, "prefault_mb": cfg.prefault_mb,
            "profile_children": os.environ.get("REGROW_PROFILE_CHILDREN", ""),
            "watch": [] if uid is not None else eng.site_dirs,
        }
        # The must-fail test's name: random per worker, so the worker can build its items once.
        # Candidates cannot read it (no frames, no gc, no writes that outlive their child).
        self.canary = worker_cfg["canary"] = f"regrow_canary_{secrets.token_hex(6)}"
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        env.update({"HOME": str(self.dir / "tmp"), "TMPDIR": str(self.dir / "tmp"), "PYTHONHASHSEED": "0"})
        argv = [str(eng.python), "-I", str(WORKER), json.dumps(worker_cfg)]
        if ns:
            argv = [shutil.which("unshare") or "unshare", "--net", "--mount", "--propagation", "private", "--", *argv]
        self._log = open(self.dir / "worker.log", "wb")
        self.proc = subprocess.Popen(argv, cwd=copy, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        self._buf = b""
        ready = self._read(time.monotonic() + cfg.start_timeout)
        if not ready or not ready.get("ready"):
            log = self._log_tail()
            self.stop()
            raise EngineError(f"the warm worker for {eng.root} did not start: {log[-1500:] or 'no output'}")
        if uid == "auto":
            ready["uid"] = 300000 + int(ready["pid"])
        self.facts = ready
        self.served = 0

    def _log_tail(self) -> str:
        try:
            return (self.dir / "worker.log").read_text(errors="replace")[-3000:] if self.dir else ""
        except OSError:
            return ""

    def _read(self, deadline: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            data = os.read(fd, 1 << 20)
            if not data:
                return None
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return None

    def request(self, req: dict, timeout: float, while_waiting: Callable[[], object] | None = None) -> dict | None:
        """Send one request; its answer, or None when the worker died or overran (it is then stopped).

        ``while_waiting`` runs in this thread after the request is sent and before its answer is
        read, so the caller's own work overlaps the child's (an exception from it is raised after
        the answer is read, so the worker's pipe stays in step). It does not run when the request
        could not be sent: callers that need its result compute it themselves then."""
        if not self.alive:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        if req.get("canary") is True:
            req["canary"] = self.canary
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stop()
            return None
        failure = None
        if while_waiting is not None:
            try:
                while_waiting()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the answer
                failure = exc
        resp = self._read(time.monotonic() + timeout + self.engine.config.grace)
        if failure is not None:
            if resp is None:
                self.stop()
            raise failure
        if resp is None or "error" in resp:
            if resp is not None:
                self.engine.errors.append(resp["error"])
            self.stop()
            return None
        self.served += 1
        if resp.get("dirty"):
            self.stop()  # its copy was written to: the next request gets a fresh worker
        return resp

    def stop(self) -> None:
        with self._stop_lock:
            proc, self.proc = self.proc, None
            log, self._log = getattr(self, "_log", None), None
            workdir, self.dir = self.dir, None
        if proc is not None:
            try:
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(b'{"op": "quit"}\n')
                    proc.stdin.flush()
                    proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            _kill_uid(self.facts.get("uid"))
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        if log is not None:
            log.close()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _kill_uid(uid) -> None:
    """Kill every process of a worker's sandbox uid (its children die with it, see the worker's
    PR_SET_PDEATHSIG; this sweeps whatever a child started that outlived them). The worker's own
    `_kill_uid` forks; this process may have threads, so the shell's builtin kill does it."""
    if not isinstance(uid, int) or os.geteuid() != 0:
        return
    try:
        subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        pass


@dataclass(frozen=True, slots=True)
class Replay:
    """What replaying recorded calls on one version of a function gave, case by case."""

    cases: dict  # case index -> {"got": canon, "after": canon, "kinds": [...]} or {"error": str}
    finished: bool
    flags: tuple[str, ...]
    timed_out: bool
    duration: float
    message: str = ""


class Engine:
    """A pool of warm workers for one source tree and interpreter. Thread-safe; close() when done."""

    def __init__(self, root: Path, python: Path, import_roots: tuple[str, ...], *,
                 config: EngineConfig = EngineConfig(), workdir: Path | None = None):
        self.root, self.python, self.import_roots = Path(root), Path(python), tuple(import_roots)
        self.config, self.workdir = config, workdir
        self.errors: list[str] = []
        self.site_dirs = self._site_dirs()
        self._slots: queue.Queue[_Worker] = queue.Queue()
        self._all = [_Worker(self, i) for i in range(max(1, config.workers))]
        for w in self._all:
            self._slots.put(w)
        self._closed = False
        atexit.register(self.close)  # workers exit on their own when we do; their copies must go too
        sweep_stale(Path(workdir) if workdir else Path(tempfile.gettempdir()))

    def _site_dirs(self) -> list[str]:
        try:
            out = subprocess.run([str(self.python), "-I", "-c", "import site, json; print(json.dumps(site.getsitepackages()))"],
                                 capture_output=True, text=True, timeout=60)
            return [d for d in json.loads(out.stdout) if os.path.isdir(d)]
        except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
            return []

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker and remove its copy. Idempotent; a later request starts a worker again."""
        for w in self._all:
            w.stop()

    def start(self) -> dict:
        """Start one worker now (otherwise the first request does); its startup facts."""
        w = self._slots.get()
        try:
            if not w.alive:
                w.start()
            return dict(w.facts)
        finally:
            self._slots.put(w)

    def _call(self, req: dict, timeout: float,
              while_waiting: Callable[[], object] | None = None) -> tuple[dict | None, dict]:
        w = self._slots.get()
        try:
            if not w.alive:
                w.start()
            facts = dict(w.facts)
            return w.request(req, timeout, while_waiting), facts
        finally:
            self._slots.put(w)

    def files(self, relpath: str, text: str | None, symbol: tuple[str, int, int] | None = None,
              classes: tuple[str, ...] = ()) -> list[dict]:
        """The request's view of one changed file; ``symbol`` is (name, first line, last line) of the
        candidate function in ``text`` (its code is swapped in place; lines bound the candidate's
        frames) and ``classes`` the names of the classes it is nested in, outermost first."""
        if text is None:
            return []
        entry = {"rel": relpath, "module": module_name(relpath, self.import_roots), "text": text, "span": None,
                 "symbol": None}
        if symbol is not None:
            name, first, last = symbol
            entry["span"] = [first, last]
            entry["symbol"] = {"name": name, "first": first, "classes": list(classes)}
        return [entry]

    def run(self, files: list[dict], test_ids: tuple[str, ...], *, timeout: float = 60.0, memory_mb: int = 4096,
            canary: bool = True, replay: tuple[str, list[str]] | None = None,
            while_waiting: Callable[[], object] | None = None, fail_fast: bool = False) -> Outcome:
        """Run ``test_ids`` in a forked child that sees ``files``; never raises for what the child did.

        ``replay`` (qualname, cases): also replay those calls, in a second fresh child forked at the
        same time (see `replay`); its `Replay` is ``extra["replay"]`` of the outcome.
        ``while_waiting`` runs at most once, while the child works (see `_Worker.request`). ``fail_fast``:
        the child stops at the first test that does not pass (the canary still runs).
        """
        req = {"op": "run", "id": secrets.token_hex(4), "files": files, "tests": list(test_ids),
               "timeout": timeout, "memory_mb": memory_mb, "canary": canary, "fail_fast": fail_fast}
        if replay is not None:
            req["replay"] = {"qualname": replay[0], "cases": list(replay[1])}
        start = time.monotonic()
        resp, facts = self._call(req, timeout, while_waiting)
        name = req["canary"] if isinstance(req["canary"], str) else ""  # the worker's canary name, set by the worker's request()
        if resp is None:
            return Outcome(results={}, collect_errors=(), finished=False, exitstatus=None, returncode=None,
                           timed_out=False, duration=time.monotonic() - start,
                           output_tail="the verification worker died or stopped answering",
                           flags=("worker-killed",), extra={"engine": "warm"})
        records = resp["records"]
        flags = set(resp.get("flags", ()))
        seen: set[str] = set()
        for rec in records:
            if "flag" in rec:
                flags.add(str(rec["flag"]))
            if "test" in rec:
                if rec["test"] in seen:
                    flags.add("runner-tamper")  # a second record for one test: someone writes to our pipe
                seen.add(str(rec["test"]))
        if sum(1 for r in records if r.get("event") == "end") > 1:
            flags.add("runner-tamper")
        for rec in records:
            if "test" in rec and isinstance(rec.get("message"), str):
                rec["message"] = prune_traceback(rec["message"])
        results, collect_errors, finished, exitstatus, collected = parse_records(records)
        timed_out = bool(resp.get("timed_out"))
        child_error = next((r.get("message", "") for r in records if r.get("event") == "child-error"), "")
        exit_rec = next((r for r in records if r.get("event") == "exit"), None)
        exited = exit_rec is not None
        canary_outcome = None
        if name:
            key = next((k for k in results if k.endswith("::" + name)), None)
            if key is not None:
                canary_outcome = results.pop(key)
                collected = max(0, collected - 1)
            if canary_outcome is not None and (canary_outcome.outcome != "failed"
                                               or "regrow canary" not in canary_outcome.message):
                flags.add("runner-tamper")  # the must-fail test did not fail: outcomes were forged
            elif canary_outcome is None and finished and not timed_out and results and not collect_errors:
                flags.add("runner-tamper")  # tests ran to the end, yet the canary never reported
        if timed_out:
            flags.add("timeout")
        elif not child_error:
            if finished and exitstatus == 2:
                flags.add("exit-trick")  # pytest.exit() or an interrupt raised from the tests
            if not finished and not resp.get("signal"):
                flags.add("exit-trick")  # the process left before the session ended
            if resp.get("signal") == signal.SIGKILL:
                flags.add("kill")
            if finished and not exited:
                flags.add("runner-tamper")  # a session end nobody but our plugin should have written
        tail = resp.get("output_tail", "")
        if child_error:
            tail = child_error + "\n" + tail
            self.errors.append(child_error)
        extra = {"engine": "warm", "signal": resp.get("signal"), "worker_seconds": resp.get("duration"),
                 "replay": _replay_result(resp["replay"], time.monotonic() - start) if replay is not None
                 and isinstance(resp.get("replay"), dict) else None,
                 "netns": facts.get("netns"), "uid": facts.get("uid"),
                 "canary": canary_outcome.outcome if canary_outcome else None,
                 "path": exit_rec.get("path") if exit_rec else None}
        return Outcome(results=results, collect_errors=tuple(collect_errors), finished=finished and not timed_out,
                       exitstatus=exitstatus, returncode=resp.get("returncode"), timed_out=timed_out,
                       duration=time.monotonic() - start, output_tail=tail, collected=collected,
                       flags=tuple(sorted(flags)), extra=extra)

    def replay(self, files: list[dict], qualname: str, cases: list[str], *, timeout: float = 60.0,
               memory_mb: int = 4096) -> Replay:
        """Call ``qualname`` (as ``files`` define it) on each pickled argument set, in a fresh child."""
        req = {"op": "replay", "id": secrets.token_hex(4), "files": files, "qualname": qualname, "cases": cases,
               "timeout": timeout, "memory_mb": memory_mb}
        start = time.monotonic()
        resp, _facts = self._call(req, timeout)
        if resp is None:
            return Replay({}, False, ("worker-killed",), False, time.monotonic() - start, "worker died")
        return _replay_result(resp, time.monotonic() - start)


def _replay_result(resp: dict, duration: float) -> Replay:
    """A `Replay` from a worker's answer to a replay (what the child sent is parsed defensively)."""
    flags = set(resp.get("flags", ()))
    got: dict[int, dict] = {}
    finished = False
    message = ""
    for rec in resp.get("records", ()):
        if not isinstance(rec, dict):
            continue
        if "flag" in rec:
            flags.add(str(rec["flag"]))
        elif "case" in rec and isinstance(rec["case"], int) and rec["case"] not in got:
            got[rec["case"]] = rec
        elif rec.get("event") == "end":
            finished = True
        elif rec.get("event") in ("resolve-error", "child-error"):
            message = str(rec.get("message", ""))[:500]
    if resp.get("timed_out"):
        flags.add("timeout")
    elif not finished and not message and not resp.get("signal"):
        flags.add("exit-trick")
    return Replay(got, finished, tuple(sorted(flags)), bool(resp.get("timed_out")), duration, message)
