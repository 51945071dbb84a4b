"""A real HTTP server on 127.0.0.1 that speaks the OpenAI wire protocol, for tests.

It stands for a hosted model API, which cannot exist in tests: the client under test is the
official ``openai`` package talking HTTP to it. It serves ``POST /v1/chat/completions`` and
``POST /v1/completions`` as JSON or, when the request says ``"stream": true``, as server-sent
events ending in ``data: [DONE]`` (with a usage chunk when ``stream_options.include_usage``).
Errors come back with their status and an OpenAI-style ``{"error": {...}}`` body.

Each request takes the next `Reply` of the script (a callable script is asked instead, from
the handler threads, concurrently); every request is recorded with its headers and JSON body.

    with OpenAIStub([Reply(status=429), Reply(texts=("return 1",))]) as server:
        solver = OpenAISolver(model="m", base_url=server.base_url)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "server_error", 503: "server_error"}


@dataclass(frozen=True)
class Reply:
    """How the server answers one request."""

    texts: tuple[str, ...] = ("return 1",)  # choice i gets texts[i % len(texts)]
    status: int = 200
    error: str = "stub error"  # message of an error body
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)
    headers: dict = field(default_factory=dict)  # extra response headers, e.g. Retry-After
    choices: int | None = None  # how many choices to return; None: the request's n
    prompt_tokens: int | None = None  # None: words in the prompt
    usage: bool = True  # include usage (in JSON, or as the last chunk when asked to stream it)
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict
    at: float


class OpenAIStub:
    """The server; a context manager that starts it on an ephemeral port in a thread."""

    def __init__(self, script: Iterable[Reply] | Callable[[dict], Reply] = (), *, model: str = "stub-model"):
        self.model = model
        self._script = script if callable(script) else list(script)
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        name="openai-stub", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "OpenAIStub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict) -> Reply:
        if callable(self._script):  # called concurrently, from the handler threads
            return self._script(body)
        with self._lock:
            if not self._script:
                return Reply(status=500, error="the stub server's script is exhausted")
            return self._script.pop(0)

    def _record(self, path: str, headers: dict, body: dict) -> None:
        with self._lock:
            self.requests.append(Recorded(path, headers, body, time.time()))


def _words(body: dict) -> int:
    if "messages" in body:
        return sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    prompt = body.get("prompt", "")
    return len(prompt.split()) if isinstance(prompt, str) else len(prompt)


def _handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._error(400, "the body is not JSON", {})
            stub._record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                return self._error(404, f"no route {self.path}", {})
            reply = stub._next(body)
            if reply.delay:
                time.sleep(reply.delay)
            try:
                if reply.status != 200:
                    return self._error(reply.status, reply.error, reply.headers)
                if body.get("stream"):
                    return self._stream(body, reply)
                return self._json(200, self._full(body, reply), reply.headers)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                self.close_connection = True

        # --- bodies ---

        def _chat(self) -> bool:
            return self.path.endswith("/chat/completions")

        def _texts(self, body: dict, reply: Reply) -> list[str]:
            k = reply.choices if reply.choices is not None else int(body.get("n") or 1)
            return [reply.texts[i % len(reply.texts)] for i in range(k)]

        def _usage(self, body: dict, reply: Reply, texts: list[str]) -> dict:
            prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _words(body)
            out = sum(len(t.split()) for t in texts)
            return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}

        def _full(self, body: dict, reply: Reply) -> dict:
            texts = self._texts(body, reply)
            if self._chat():
                choices = [{"index": i, "message": {"role": "assistant", "content": t},
                            "finish_reason": reply.finish_reason, "logprobs": None} for i, t in enumerate(texts)]
                kind = "chat.completion"
            else:
                choices = [{"index": i, "text": t, "finish_reason": reply.finish_reason, "logprobs": None}
                           for i, t in enumerate(texts)]
                kind = "text_completion"
            data = {"id": "stub-1", "object": kind, "created": int(time.time()),
                    "model": body.get("model", stub.model), "choices": choices}
            if reply.usage:
                data["usage"] = self._usage(body, reply, texts)
            return data

        def _stream(self, body: dict, reply: Reply) -> None:
            texts = self._texts(body, reply)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            kind = "chat.completion.chunk" if self._chat() else "text_completion"
            base = {"id": "stub-1", "object": kind, "created": int(time.time()),
                    "model": body.get("model", stub.model)}

            def choice(i: int, piece: str | None, finish: str | None) -> dict:
                if self._chat():
                    delta = {"content": piece} if piece is not None else {}
                    if piece == "":
                        delta["role"] = "assistant"
                    return {"index": i, "delta": delta, "finish_reason": finish, "logprobs": None}
                return {"index": i, "text": piece or "", "finish_reason": finish, "logprobs": None}

            def send(data: dict) -> None:
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            for i, text in enumerate(texts):
                send({**base, "choices": [choice(i, "", None)]})
                pieces = [text[j : j + 7] for j in range(0, len(text), 7)] or [""]
                for piece in pieces:
                    send({**base, "choices": [choice(i, piece, None)]})
                send({**base, "choices": [choice(i, None, reply.finish_reason)]})
            if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
                send({**base, "choices": [], "usage": self._usage(body, reply, texts)})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _json(self, status: int, data: dict, headers: dict) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(raw)

        def _error(self, status: int, message: str, headers: dict) -> None:
            error = {"message": message, "type": ERROR_TYPES.get(status, "server_error"),
                     "param": None, "code": str(status)}
            self._json(status, {"error": error}, headers)

    return Handler
