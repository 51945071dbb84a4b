"""The reward service: a FastAPI app over a `Catalog` of prepared sources and a `Scorer`.

`RewardService` holds the state (scorer, request ledger, admission, episodes, metrics);
`create_app(service)` builds the routes; `serve(...)` prepares the sources and runs uvicorn
(what `regrow serve` calls). Endpoints (docs/service.md):

* ``POST /v1/score``: a batch ``[{task_id, completion, request_id?, source?}]`` → one result per
  item. A ``request_id`` already answered is answered again from the ledger, not verified twice.
* ``GET /v1/tasks``: the valid tasks, filtered by source, module and strength.
* ``POST /reset``, ``POST /step``, ``GET /state``, ``GET /health``, ``GET /schema``,
  ``GET /metadata``: the environment in the OpenEnv shape, one session per episode.
* ``GET /metrics``: Prometheus; ``GET /openapi.json``: the schema.

Every refusal happens before any work and says why in one shape (``{"error": {code, message}}``):
401 without a valid key, 413 past the body or batch limit, 429 with ``Retry-After`` past the
in-flight limit, 503 while shutting down, 504 past a request's deadline (whose verdicts are still
stored under their request ids when they finish).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Body, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from regrow.core.verdict import Verdict
from regrow.errors import RegrowError
from regrow.service.limits import Admission, BodyLimit, ServeConfig, key_ok
from regrow.service.metrics import CONTENT_TYPE_LATEST, Metrics
from regrow.service.scorer import Catalog, LocalScorer, ScoreItem, Scorer, Unknown
from regrow.service.sessions import Full, SessionTable, draw
from regrow.service.wire import (EpisodeResponse, EpisodeState, ErrorBody, HealthResponse, MetadataResponse,
                                 RegrowAction, RegrowObservation, ResetRequest, SchemaResponse, ScoreRequestItem,
                                 ScoreResponse, ScoreResult, SourceInfo, StepRequest, TasksResponse, verdict_body)
from regrow.store.ledger import LEDGER_FILE, Ledger

__all__ = ["RewardService", "ServiceError", "create_app", "build_service", "serve", "listen_socket", "LOGGER"]

LOGGER = "regrow.service"
log = logging.getLogger(LOGGER)


class ServiceError(Exception):
    """An HTTP error in the service's one shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _event(event: str, **fields) -> None:
    """One structured log line (JSON). Nothing secret is ever passed here."""
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str))


def fingerprint(item: ScoreItem) -> str:
    return hashlib.sha256(json.dumps([item.source, item.task_id, item.completion]).encode()).hexdigest()


def _item_error(item: ScoreRequestItem, code: str, message: str) -> dict:
    return ScoreResult(request_id=item.request_id, task_id=item.task_id, source=item.source, status="error",
                       error={"code": code, "message": message}).model_dump(mode="json")


class RewardService:
    """What the routes share. ``scorer`` defaults to a `LocalScorer` over the catalog."""

    def __init__(self, catalog: Catalog, *, ledger: Ledger, config: ServeConfig = ServeConfig(),
                 scorer: Scorer | None = None):
        self.catalog = catalog
        self.config = config
        self.ledger = ledger
        self.scorer = scorer if scorer is not None else LocalScorer(catalog)
        workers = int(getattr(self.scorer, "workers", 0) or len(catalog.rewards))
        self.admission = Admission(config.max_inflight, workers)
        self.metrics = Metrics()
        self.sessions = SessionTable(config.max_sessions, config.session_ttl_s)
        # Threads that wait on a request's batch (the scorer bounds the verifications themselves).
        self._batches = ThreadPoolExecutor(max_workers=min(config.max_inflight, 256), thread_name_prefix="regrow-batch")
        self._pending: dict[str, tuple[str, asyncio.Future]] = {}  # request_id -> (fingerprint, its batch)
        self.draining = False
        self._abort: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.counts = {"verified": 0, "replayed": 0, "failed_at_shutdown": 0}

    # ------------------------------------------------------------------------------ lifecycle

    def started(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._abort = asyncio.Event()

    def begin_drain(self) -> None:
        """Refuse new work (503); in-flight work has ``grace_s`` to finish, then fails explicitly."""
        if self.draining:
            return
        self.draining = True
        _event("draining", inflight=self.admission.inflight, grace_s=self.config.grace_s)
        if self.loop is not None and self._abort is not None:
            self.loop.call_later(self.config.grace_s, self._abort.set)

    def close(self) -> None:
        """Stop: candidates not started are dropped (their requests were answered 503 already),
        verifications running finish and their verdicts are stored, then the ledger is closed."""
        self._batches.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.scorer, "close", None)
        if close is not None:
            close()
        self._batches.shutdown(wait=True)
        self.ledger.close()
        _event("stopped", **self.counts)

    # ------------------------------------------------------------------------------ scoring

    def _refuse_if_draining(self) -> None:
        if self.draining:
            self.metrics.rejected.labels("shutting_down").inc()
            raise ServiceError(503, "shutting_down", "the server is shutting down; retry on its successor",
                               {"Retry-After": "5"})

    async def score_items(self, items: list[ScoreRequestItem], timeout_s: float | None) -> list[dict]:
        """One result dict (`ScoreResult`) per item, in order."""
        return (await self.score_timed(items, timeout_s))[0]

    async def score_timed(self, items: list[ScoreRequestItem], timeout_s: float | None) -> tuple[list[dict], float]:
        """(results, seconds this request's own batch spent in the scorer)."""
        if len(items) > self.config.max_batch:
            self.metrics.rejected.labels("too_large").inc()
            raise ServiceError(413, "too_many_items", f"{len(items)} items in one request; the limit is "
                                                      f"{self.config.max_batch}")
        self._refuse_if_draining()
        deadline = time.monotonic() + min(timeout_s or self.config.deadline_s, 86400.0)
        results: list[dict | None] = [None] * len(items)
        jobs: list[tuple[ScoreItem, str] | None] = []
        for i, it in enumerate(items):
            try:
                reward = self.catalog.resolve(it.task_id, it.source)
            except Unknown as exc:
                results[i] = _item_error(it, "unknown_task", str(exc))
                self.metrics.item_errors.labels("unknown_task").inc()
                jobs.append(None)
                continue
            job = ScoreItem(it.task_id, it.completion, reward.prepared.source.name)
            jobs.append((job, fingerprint(job)))
        rids = [it.request_id for it in items if it.request_id]
        stored = self.ledger.get_many(rids) if rids else {}
        to_run: dict[tuple, tuple[ScoreItem, str, list[int]]] = {}
        waits: list[tuple[int, str, asyncio.Future]] = []
        for i, (it, job) in enumerate(zip(items, jobs)):
            if job is None:
                continue
            rid, fp = it.request_id, job[1]
            if rid is not None and rid in stored:
                if stored[rid][0] != fp:
                    results[i] = self._conflict(it)
                else:
                    results[i] = {**stored[rid][1], "replayed": True}
                    self.metrics.replays.inc()
                    self.counts["replayed"] += 1
                continue
            if rid is not None and rid in self._pending:
                if self._pending[rid][0] != fp:
                    results[i] = self._conflict(it)
                else:
                    waits.append((i, rid, self._pending[rid][1]))
                continue
            key = ("rid", rid) if rid is not None else ("item", i)
            if key in to_run:
                if to_run[key][1] != fp:
                    results[i] = self._conflict(it)
                else:
                    to_run[key][2].append(i)
                continue
            to_run[key] = (job[0], fp, [i])
        batch = None
        if to_run:
            n = len(to_run)
            if n > self.admission.limit:  # could never be admitted: retrying would not help
                self.metrics.rejected.labels("too_large").inc()
                raise ServiceError(413, "too_many_items", f"{n} items to verify in one request; the in-flight "
                                                          f"limit is {self.admission.limit}: split the batch")
            if not self.admission.try_admit(n):
                self.metrics.rejected.labels("overloaded").inc()
                retry = self.admission.retry_after(n)
                raise ServiceError(429, "overloaded", f"{self.admission.inflight} candidates in flight; {n} more "
                                                      f"would pass the limit of {self.admission.limit}",
                                   {"Retry-After": str(retry)})
            self._gauges()
            batch = self.loop.run_in_executor(self._batches, self._verify, list(to_run.items()))
            for key in to_run:
                if key[0] == "rid":
                    self._pending[key[1]] = (to_run[key][1], batch)
            batch.add_done_callback(lambda f, keys=list(to_run), n=n: self._finished(f, keys, n))
        futures = ([batch] if batch is not None else []) + [f for _, _, f in waits]
        if futures:
            await self._wait(futures, deadline, len(to_run) + len(waits))
        if batch is not None:
            out, scoring = batch.result()
            for key, (_, _, idx) in to_run.items():
                for i in idx:
                    results[i] = out[key]
        for i, rid, fut in waits:
            results[i] = {**fut.result()[0][("rid", rid)], "replayed": True}
        return [r for r in results if r is not None], (scoring if batch is not None else 0.0)

    def _conflict(self, item: ScoreRequestItem) -> dict:
        self.metrics.item_errors.labels("conflict").inc()
        return _item_error(item, "conflict", f"request_id {item.request_id!r} was already used for another "
                                             "task or completion")

    def _finished(self, batch: asyncio.Future, keys: list[tuple], n: int) -> None:
        """On the event loop, once a batch is done (answered or not)."""
        self.admission.release(n)
        if not batch.cancelled() and batch.exception() is None:
            self.counts["verified"] += n
        for key in keys:
            if key[0] == "rid":
                self._pending.pop(key[1], None)
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.inflight.set(self.admission.inflight)
        self.metrics.queue_depth.set(self.admission.queued)

    async def _wait(self, futures: list[asyncio.Future], deadline: float, n: int) -> None:
        waiter = asyncio.ensure_future(asyncio.gather(*(asyncio.shield(f) for f in futures)))
        aborter = asyncio.ensure_future(self._abort.wait())
        try:
            done, _ = await asyncio.wait({waiter, aborter}, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborter.cancel()
        if waiter in done:
            exc = waiter.exception()
            if exc is not None:
                log.error(json.dumps({"event": "scorer_failed", "error": f"{type(exc).__name__}: {exc}"}))
                message = str(exc) if isinstance(exc, RegrowError) else f"{type(exc).__name__}"
                raise ServiceError(503, "scorer_failed", f"verification failed on the server: {message}",
                                   {"Retry-After": "5"})
            return
        waiter.cancel()
        if self._abort.is_set():
            self.counts["failed_at_shutdown"] += n
            self.metrics.rejected.labels("shutting_down").inc()
            raise ServiceError(503, "shutting_down", f"the server is shutting down: {n} items were not answered; "
                                                     "retry them with the same request_id", {"Retry-After": "5"})
        self.metrics.rejected.labels("deadline").inc()
        raise ServiceError(504, "deadline", f"{n} items did not finish by the deadline; items with a request_id "
                                            "keep verifying and their results are stored: retry with the same "
                                            "request_id to collect them")

    def _verify(self, jobs: list[tuple[tuple, tuple[ScoreItem, str, list[int]]]]) -> tuple[dict[tuple, dict], float]:
        """In a batch thread: verify, count, and commit every result with a request id before any
        is sent."""
        start = time.perf_counter()
        verdicts = self.scorer.score_batch([job for _, (job, _, _) in jobs])
        scoring = time.perf_counter() - start
        per = scoring / max(1, len(jobs))
        self.admission.observe(per)
        out, rows = {}, []
        for (key, (job, fp, _)), verdict in zip(jobs, verdicts, strict=True):
            rid = key[1] if key[0] == "rid" else None
            out[key] = self._result(job, verdict, rid)
            if rid is not None:
                rows.append((rid, fp, out[key]))
            self.metrics.verdicts.labels(verdict.status).inc()
            if verdict.integrity_flags:
                self.metrics.flagged.inc()
            self.metrics.candidate_seconds.observe(verdict.duration or per)
        first = self.ledger.put_many(rows)
        for rid, (_, result) in first.items():
            out[("rid", rid)] = result  # an id stored before (another process) keeps its first result
        return out, scoring

    def _result(self, job: ScoreItem, verdict: Verdict, request_id: str | None) -> dict:
        reward = self.catalog.by_name[job.source]
        return ScoreResult(request_id=request_id, task_id=job.task_id, source=job.source,
                           reward=float(reward.value(verdict)), solved=verdict.solved, status=verdict.status,
                           flags=list(verdict.flags), tests_passed=verdict.tests_passed,
                           tests_total=verdict.tests_total, similarity=float(verdict.func_similarity or 0.0),
                           verdict=verdict_body(verdict)).model_dump(mode="json")

    # ------------------------------------------------------------------------------ episodes

    def reset(self, req: ResetRequest) -> dict:
        self._refuse_if_draining()
        from regrow.solve.prompt import build_messages

        try:
            if req.task_id is not None:
                reward, task = self.catalog.task(req.task_id, req.source)
            else:
                rewards = [self.catalog.reward_of(req.source)] if req.source is not None else self.catalog.rewards
                pairs = [(r, tid) for r in rewards for tid in sorted(r.tasks)]
                if not pairs:
                    raise Unknown("the served sources have no valid task")
                reward, tid = pairs[draw(len(pairs), req.seed)]
                task = reward.tasks[tid]
        except Unknown as exc:
            raise ServiceError(404, "unknown_task", str(exc)) from None
        try:
            session = self.sessions.open(reward, task, self.config.max_turns, req.episode_id)
        except Full as exc:
            self.metrics.rejected.labels("overloaded").inc()
            raise ServiceError(429, "too_many_episodes", str(exc), {"Retry-After": "10"}) from None
        self.metrics.episodes.set(len(self.sessions))
        messages = [{"role": m["role"], "content": m["content"]} for m in build_messages(task)]
        obs = RegrowObservation(task_id=task.task_id, prompt="\n\n".join(m["content"] for m in messages),
                                messages=messages, metadata={"source": session.source})
        return EpisodeResponse(observation=obs, reward=None, done=False,
                               metadata={"episode_id": session.episode_id, "turn": 0,
                                         "max_turns": session.max_turns}).model_dump(mode="json")

    async def step(self, req: StepRequest) -> dict:
        session = self.sessions.get(req.episode_id)
        if session is None:
            raise ServiceError(404, "not_found", f"no open episode {req.episode_id!r} (call /reset; episodes "
                                                 "do not survive a restart)")
        async with session.lock:
            if req.request_id is not None and req.request_id in session.answered:
                return session.answered[req.request_id]
            if session.done:
                raise ServiceError(409, "episode_over", f"episode {req.episode_id!r} is over "
                                                        f"({'solved' if session.solved else 'no turns left'}); "
                                                        "call /reset")
            item = ScoreRequestItem(task_id=session.task.task_id, completion=req.action.completion,
                                    source=session.source)
            [res] = await self.score_items([item], req.timeout_s)
            session.turn += 1
            solved = bool(res["solved"])
            truncated = not solved and session.turn >= session.max_turns
            session.done, session.solved, session.value = solved or truncated, solved, res["reward"]
            verdict = res["verdict"] or {}
            feedback = "" if solved else (verdict.get("feedback") or f"Not solved ({res['status']}).")
            obs = RegrowObservation(done=session.done, reward=res["reward"], task_id=session.task.task_id,
                                    prompt=feedback, turn=session.turn, status=res["status"],
                                    tests_passed=res["tests_passed"], tests_total=res["tests_total"],
                                    metadata={"flags": res["flags"], "similarity": res["similarity"]})
            answer = EpisodeResponse(observation=obs, reward=res["reward"], done=session.done,
                                     metadata={"episode_id": session.episode_id, "turn": session.turn,
                                               "max_turns": session.max_turns, "terminated": solved,
                                               "truncated": truncated}).model_dump(mode="json")
            if req.request_id is not None:
                session.answered[req.request_id] = answer
            return answer

    def state(self, episode_id: str) -> dict:
        session = self.sessions.get(episode_id)
        if session is None:
            raise ServiceError(404, "not_found", f"no open episode {episode_id!r}")
        return EpisodeState(episode_id=session.episode_id, step_count=session.turn, task_id=session.task.task_id,
                            source=session.source, done=session.done, solved=session.solved,
                            max_turns=session.max_turns, reward=session.value).model_dump(mode="json")


# ---------------------------------------------------------------------------------- the app

_ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in {
    401: "No valid API key", 413: "The body or the batch is over its limit", 422: "The body does not match the schema",
    429: "Over the in-flight limit (see Retry-After)", 503: "Shutting down, or the scorer failed (see Retry-After)",
}.items()}
_ROUTES = {"/v1/score", "/v1/tasks", "/reset", "/step", "/state", "/health", "/schema", "/metadata", "/metrics",
           "/openapi.json", "/docs"}


def _errors(*codes: int) -> dict:
    extra = {404: "Unknown episode or task", 409: "The episode is over", 504: "Past the request's deadline"}
    out = {c: v for c, v in _ERRORS.items()}
    for c in codes:
        out[c] = {"model": ErrorBody, "description": extra[c]}
    return out


class _Observe:
    """ASGI middleware: latency and count per route, one structured log line per request."""

    def __init__(self, app, service: RewardService):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def observe(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            seconds = time.perf_counter() - start
            route = scope["path"] if scope["path"] in _ROUTES else "other"
            m = self.service.metrics
            m.requests.labels(route, str(status)).inc()
            m.request_seconds.labels(route).observe(seconds)
            _event("request", method=scope["method"], path=route, status=status, ms=round(seconds * 1000, 2))


def create_app(service: RewardService) -> FastAPI:
    from regrow import __version__

    @asynccontextmanager
    async def lifespan(_app):
        service.started()
        _event("ready", sources=[r.prepared.source.name for r in service.catalog.rewards],
               tasks=sum(len(r.tasks) for r in service.catalog.rewards), api_keys=len(service.config.api_keys),
               max_inflight=service.config.max_inflight, max_batch=service.config.max_batch)
        try:
            yield
        finally:
            service.begin_drain()
            await asyncio.get_running_loop().run_in_executor(None, service.close)

    app = FastAPI(title="regrow reward service", version=__version__, lifespan=lifespan,
                  description="Verifiable rewards for code models: score completions of regrow tasks, or run "
                              "multi-turn episodes (OpenEnv shape). Errors: {\"error\": {code, message}}.")
    keys = service.config.api_keys
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of the server's API keys")
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")

    def require_key(key: str | None = Security(api_key),
                    cred: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
        if not keys:
            return
        if not key_ok(key or (cred.credentials if cred is not None else None), keys):
            service.metrics.rejected.labels("unauthorized").inc()
            raise ServiceError(401, "unauthorized", "a valid API key is needed (X-API-Key: KEY or "
                                                    "Authorization: Bearer KEY)", {"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_key)]

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError):
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse({"error": {"code": "invalid", "message": "; ".join(parts) or "invalid request"}},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        status = 422 if exc.status_code == 400 else exc.status_code  # an unreadable body: as any invalid one
        code = {404: "not_found", 405: "method_not_allowed", 422: "invalid"}.get(status, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=status,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception):
        log.error(json.dumps({"event": "internal_error", "error": f"{type(exc).__name__}: {exc}"}))
        return JSONResponse({"error": {"code": "internal", "message": f"internal error ({type(exc).__name__})"}},
                            status_code=500)

    @app.post("/v1/score", response_model=ScoreResponse, dependencies=auth, responses=_errors(504), tags=["score"],
              summary="Score a batch of completions")
    async def score(items: list[ScoreRequestItem] = Body(..., description="The completions to score"),
                    timeout_s: float | None = Query(None, gt=0, le=86400, description="This request's deadline")):
        start = time.perf_counter()
        results, scoring = await service.score_timed(items, timeout_s)
        # Built from validated models already: sent as they are, not validated a second time.
        body = json.dumps({"format": "regrow-score-batch/1", "results": results}).encode()
        total = time.perf_counter() - start
        # Server-Timing: the scorer's share of the handler's time, so a client can tell the cost
        # of verifying from the cost of serving.
        return Response(body, media_type="application/json",
                        headers={"Server-Timing": f"score;dur={scoring * 1000:.3f}, handler;dur={total * 1000:.3f}"})

    @app.get("/v1/tasks", response_model=TasksResponse, dependencies=auth, responses=_errors(404), tags=["score"],
             summary="The valid tasks, filtered")
    async def tasks(source: str | None = Query(None, max_length=1000),
                    module: str | None = Query(None, max_length=1000),
                    min_strength: float | None = Query(None, ge=0, le=1),
                    max_strength: float | None = Query(None, ge=0, le=1)):
        try:
            rows = service.catalog.listing(source=source, module=module, min_strength=min_strength,
                                           max_strength=max_strength)
        except Unknown as exc:
            raise ServiceError(404, "not_found", str(exc)) from None
        return {"format": "regrow-task-list/1", "total": len(rows), "tasks": rows}

    @app.post("/reset", response_model=EpisodeResponse, dependencies=auth, responses=_errors(404), tags=["env"],
              summary="Start an episode")
    async def reset(req: ResetRequest = Body(default_factory=ResetRequest)):
        return service.reset(req)

    @app.post("/step", response_model=EpisodeResponse, dependencies=auth, responses=_errors(404, 409, 504),
              tags=["env"], summary="Answer in an episode")
    async def step(req: StepRequest):
        return await service.step(req)

    @app.get("/state", response_model=EpisodeState, dependencies=auth, responses=_errors(404), tags=["env"],
             summary="An episode's state")
    async def state(episode_id: str = Query(..., min_length=1, max_length=255)):
        return service.state(episode_id)

    @app.get("/health", response_model=HealthResponse, tags=["env"], summary="Liveness (no key needed)")
    async def health():
        return {"status": "degraded" if service.draining else "healthy"}

    @app.get("/schema", response_model=SchemaResponse, dependencies=auth, responses=_errors(), tags=["env"],
             summary="JSON schemas of the action, observation and state")
    async def schema():
        return {"action": RegrowAction.model_json_schema(), "observation": RegrowObservation.model_json_schema(),
                "state": EpisodeState.model_json_schema()}

    @app.get("/metadata", response_model=MetadataResponse, dependencies=auth, responses=_errors(), tags=["env"],
             summary="What this environment serves")
    async def metadata():
        sources = [SourceInfo(name=r.prepared.source.name, spec=spec, version=r.prepared.source.version,
                              tasks=len(r.tasks)) for spec, r in zip(service.catalog.specs, service.catalog.rewards)]
        return MetadataResponse(description="regrow: hollowed functions of a repository, verified by its own "
                                            "tests; the action is the function's body",
                                version=__version__, max_turns=service.config.max_turns, sources=sources)

    @app.get("/metrics", dependencies=auth, responses={200: {"content": {"text/plain": {}},
                                                             "description": "Prometheus text format"},
                                                       **_errors()},
             response_class=Response, tags=["ops"], summary="Prometheus metrics")
    async def metrics():
        service._gauges()
        service.metrics.episodes.set(len(service.sessions))
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return _wrap(app, service)


def _wrap(app: FastAPI, service: RewardService) -> FastAPI:
    # Outermost first: observe every request (a 413 too), then the body limit, then the app.
    app.add_middleware(BodyLimit, limit=service.config.max_body_bytes,
                       on_refuse=lambda: service.metrics.rejected.labels("too_large").inc())
    app.add_middleware(_Observe, service=service)
    app.state.service = service
    return app


# ---------------------------------------------------------------------------------- serving


def build_service(specs: list[str], run_config, serve_config: ServeConfig, hooks=None, scorer=None) -> RewardService:
    """Prepare every source (environment, grok, validated tasks, warm workers) and the ledger;
    with ``run_config.executor`` ray or ray://ADDRESS, candidates are verified by a
    `ClusterScorer` on that cluster (the sources are still prepared here for the catalog)."""
    from regrow.api import Hooks
    from regrow.reward import Reward

    rewards = []
    try:
        for spec in specs:
            rewards.append(Reward(spec, run_config, hooks or Hooks()))
    except BaseException:
        for reward in rewards:
            reward.close()
        raise
    if scorer is None and run_config.executor != "threads":  # verify on a Ray cluster (docs/scaling.md)
        from regrow.executor import parse_executor
        from regrow.service.cluster import ClusterScorer

        try:
            scorer = ClusterScorer(parse_executor(run_config.executor)[1], list(specs), run_config)
        except BaseException:
            for reward in rewards:
                reward.close()
            raise
    ledger = Ledger(Path(run_config.home) / LEDGER_FILE)
    return RewardService(Catalog(rewards, specs), ledger=ledger, config=serve_config, scorer=scorer)


def _json_logs() -> None:
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port). Made with ``IPPROTO_TCP`` so that
    asyncio sets TCP_NODELAY on every accepted connection (with protocol 0 it does not, and each
    response waits out the client's delayed ACK: 40 ms a request on Linux)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve(service: RewardService, host: str = "127.0.0.1", port: int = 8000, *, access_log: bool = True,
          on_listening=None) -> None:
    """Run ``service`` under uvicorn until SIGINT/SIGTERM, then drain: new work is refused (503),
    in-flight work has ``grace_s`` to finish, what is left fails explicitly (503), running
    verifications finish and their verdicts are stored."""
    import uvicorn

    if access_log:
        _json_logs()
    app = create_app(service)
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        service.close()
        raise RegrowError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"

    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if service.loop is not None:
                service.loop.call_soon_threadsafe(service.begin_drain)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(service.config.grace_s) + 5, timeout_keep_alive=30)
    server = _Server(config)
    _event("listening", url=url)
    if on_listening is not None:
        on_listening(url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the captured SIGINT again once it has shut down
        pass
    finally:
        sock.close()
