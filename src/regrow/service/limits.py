"""What the service allows: its settings, API keys, the in-flight admission and the body limit.

Keys come from a file (one a line, ``#`` comments) and the ``REGROW_API_KEYS`` environment
variable (comma separated); with no key configured the service is open (it listens on loopback
by default). A key is compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from regrow.errors import ConfigError

__all__ = ["ServeConfig", "load_api_keys", "Admission", "BodyLimit", "KEYS_ENV"]

KEYS_ENV = "REGROW_API_KEYS"


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """The service's limits. Every count is checked before any work starts."""

    api_keys: frozenset[str] = frozenset()  # empty: no key needed
    max_body_bytes: int = 8 << 20  # a request body larger than this is refused (413)
    max_batch: int = 512  # items in one POST /v1/score (413 past it)
    max_inflight: int = 256  # candidates admitted and not finished, all requests together (429 past it)
    deadline_s: float = 300.0  # a request's default deadline (504 past it; its verdicts are still stored)
    max_turns: int = 3  # answers per episode before it is truncated
    max_sessions: int = 4096  # open episodes (an idle one expires after session_ttl_s)
    session_ttl_s: float = 3600.0
    grace_s: float = 30.0  # on SIGTERM/SIGINT: how long in-flight work may finish before it fails explicitly

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch", "max_inflight", "max_turns", "max_sessions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: {name} must be >= 1 (got {getattr(self, name)})")
        for name in ("deadline_s", "session_ttl_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"serve: {name} must be > 0 (got {getattr(self, name)})")
        if self.grace_s < 0:
            raise ConfigError(f"serve: grace_s must be >= 0 (got {self.grace_s})")


def load_api_keys(path: Path | None = None, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The keys of ``path`` (one a line) and of ``REGROW_API_KEYS`` (comma separated)."""
    keys: set[str] = set()
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the API key file {path}: {exc.strerror or exc}") from exc
        keys.update(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
        if not keys:
            raise ConfigError(f"the API key file {path} holds no key")
    env = os.environ if environ is None else environ
    keys.update(k.strip() for k in env.get(KEYS_ENV, "").split(",") if k.strip())
    return frozenset(keys)


def key_ok(given: str | None, keys: frozenset[str]) -> bool:
    if not keys:
        return True
    if not given:
        return False
    ok = False
    for key in keys:  # every key compared, in constant time each
        ok |= hmac.compare_digest(given.encode(), key.encode())
    return ok


class Admission:
    """Candidates admitted and not yet finished, against ``limit``. Used from the event loop only."""

    def __init__(self, limit: int, workers: int):
        self.limit = limit
        self.workers = max(1, workers)
        self.inflight = 0
        self.seconds_per_candidate = 1.0  # a running mean, for Retry-After

    def try_admit(self, n: int) -> bool:
        if self.inflight + n > self.limit:
            return False
        self.inflight += n
        return True

    def release(self, n: int) -> None:
        self.inflight = max(0, self.inflight - n)

    def observe(self, seconds: float) -> None:
        self.seconds_per_candidate = 0.9 * self.seconds_per_candidate + 0.1 * max(0.0, seconds)

    @property
    def queued(self) -> int:
        """Admitted candidates beyond what the workers verify at once."""
        return max(0, self.inflight - self.workers)

    def retry_after(self, n: int = 1) -> int:
        """Seconds until about ``n`` candidates' room frees up (at least 1)."""
        excess = max(1, self.inflight + n - self.limit)
        return max(1, math.ceil(excess * self.seconds_per_candidate / self.workers))


def error_json(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before the app reads it
    (by its Content-Length, or while a chunked body streams in)."""

    def __init__(self, app, limit: int, on_refuse=None):
        self.app = app
        self.limit = limit
        self.on_refuse = on_refuse  # called once per refused request (the service counts them)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                return await self._refuse(send)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        if self.on_refuse is not None:
            self.on_refuse()
        body = error_json(413, "too_large", f"the request body is over the limit of {self.limit} bytes")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
