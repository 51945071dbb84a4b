"""``openai:MODEL@BASE_URL``: any server speaking the OpenAI HTTP API (vLLM, SGLang, Ollama,
llama.cpp server, OpenAI itself), through the official ``openai`` client.

Retries are regrow's own (the client's are switched off): rate limits (429), server errors
(5xx), timeouts and dropped connections are retried up to ``max_retries`` times with
exponential backoff and jitter, honouring a ``Retry-After`` header up to ``backoff_max``.
Other refusals (400, 401, 404: a bad model name, a wrong key, a prompt too long) are not
retried. Either way a dead or refusing server ends in a `SolverError` naming the URL.

The API key is read from the environment variable ``options.api_key_env`` when the client is
made; it is sent as the Bearer header and never stored on the solver, in a `Completion` or in
its ``meta``.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from regrow.errors import SolverError
from regrow.solve.prompt import (Tokenizer, build_messages, completion_stops, continuation_body, default_context,
                      file_view, render_completion_prompt, render_messages)
from regrow.solve.solvers.base import Completion, SolveRequest
from regrow.solve.solvers.options import OPENAI_DEFAULTS, SolverOptions

_RETRY_STATUS = {408, 409, 429}  # and every status >= 500


@dataclass(slots=True)
class _Call:
    """What one HTTP request produced."""

    texts: list[str]
    finish: list[str]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency: float
    ttft: float | None = None  # seconds to the first streamed token
    tries: int = 1
    extra: dict = field(default_factory=dict)


class OpenAISolver:
    """Proposes bodies by asking an OpenAI-compatible server."""

    def __init__(self, *, model: str, base_url: str, options: SolverOptions | None = None):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.options = (options or SolverOptions()).resolved(**OPENAI_DEFAULTS)
        self.name = f"openai:{model}@{self.base_url}"
        digest = hashlib.sha256(self.options.model_dump_json().encode()).hexdigest()[:12]
        self.identity = f"{self.name}#{digest}"
        self._client = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()
        self._n_supported: bool | None = None  # learnt from the first n > 1 request

    def __repr__(self) -> str:
        return f"OpenAISolver(model={self.model!r}, base_url={self.base_url!r}, mode={self.options.mode!r})"

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                try:
                    from openai import OpenAI
                except ImportError as exc:
                    raise SolverError("the openai package is not installed; install it with: "
                                      "pip install openai") from exc
                self._client = OpenAI(base_url=self.base_url, max_retries=0, timeout=self.options.timeout,
                                      api_key=os.environ.get(self.options.api_key_env) or "EMPTY")
            return self._client

    @property
    def tokenizer(self) -> Tokenizer:
        """What prompt budgets are counted with: a served model's vocabulary is out of reach,
        so an offline one (`local.offline_tokenizer`); its name is reported in ``meta``."""
        if self._tokenizer is None:
            from regrow.solve.solvers.local import offline_tokenizer

            self._tokenizer = offline_tokenizer()
        return self._tokenizer

    # --- propose -------------------------------------------------------------------------

    def propose(self, request: SolveRequest) -> list[Completion]:
        opts = self.options
        prompt = self._prompt(request)
        base = opts.seed if opts.seed is not None else request.seed
        seeds = [base + request.sample + i for i in range(request.n)]
        stop = list(opts.stop)
        if isinstance(prompt, str) and not request.messages:
            stop += completion_stops(request.task)
        stop = list(dict.fromkeys(stop))[:4]  # the OpenAI API takes at most four
        calls: list[tuple[_Call, int]] = []  # (call, index of its first choice)
        if request.n > 1 and self._n_supported is not False:
            call = self._request(prompt, n=request.n, seed=seeds[0], stop=stop)
            calls.append((call, 0))
            got = len(call.texts)
            if got < request.n:
                self._n_supported = False  # e.g. llama.cpp server: one choice whatever n says
            else:
                self._n_supported = True
        else:
            got = 0
        if got < request.n:
            rest = seeds[got:]
            with ThreadPoolExecutor(max_workers=min(opts.concurrency, len(rest))) as pool:
                singles = list(pool.map(lambda s: self._request(prompt, n=1, seed=s, stop=stop), rest))
            calls += [(c, got + i) for i, c in enumerate(singles)]
        out: list[Completion] = []
        for call, first in calls:
            out += self._completions(call, request, prompt, seeds, first)
        return out[: request.n]

    def _prompt(self, request: SolveRequest) -> list[dict] | str:
        opts = self.options
        if request.messages:
            messages = list(request.messages)
            return render_messages(messages) if opts.mode == "completion" else messages
        task = request.task
        tok = self.tokenizer
        context = request.context or ""
        if request.context is None and request.source_root:
            view = file_view(task, tokenizer=tok, budget=opts.file_budget)
            context = default_context(task, request.source_root, budget=opts.context_budget,
                                      tokenizer=tok, shown=view.shown)
        if opts.mode == "completion":
            return render_completion_prompt(task, context=context, history=request.history,
                                            tokenizer=tok, file_budget=opts.file_budget)
        return build_messages(task, context=context, history=request.history,
                              system_prompt=opts.system_prompt, tokenizer=tok, file_budget=opts.file_budget)

    def _completions(self, call: _Call, request: SolveRequest, prompt, seeds: list[int],
                     first: int) -> list[Completion]:
        """One `Completion` per choice. A response's usage covers all its choices: the prompt
        was read once, so each choice reports the prompt's tokens but carries 1/k of its cost;
        output tokens are shared out in proportion to each choice's length."""
        opts = self.options
        k = len(call.texts)
        estimated = call.prompt_tokens is None or call.completion_tokens is None
        tokens_in = call.prompt_tokens
        if tokens_in is None:
            text = prompt if isinstance(prompt, str) else "\n".join(m.get("content", "") for m in prompt)
            tokens_in = self.tokenizer.count(text)
        outs = [self.tokenizer.count(t) for t in call.texts] if call.completion_tokens is None else \
            _share(call.completion_tokens, [len(t) for t in call.texts])
        result = []
        for i, (text, finish, tokens_out) in enumerate(zip(call.texts, call.finish, outs, strict=True)):
            cost = 0.0
            if opts.prices:
                cost = opts.prices.cost(tokens_in, 0) / k + opts.prices.cost(0, tokens_out)
            meta = {
                "backend": "openai", "model": self.model, "base_url": self.base_url, "mode": opts.mode,
                "seed": seeds[min(first + i, len(seeds) - 1)], "finish_reason": finish,
                "choices_in_response": k, "tries": call.tries, "stream": opts.stream,
                "tokenizer": self._tokenizer.name if self._tokenizer is not None else "",
                "usage_estimated": estimated,
                "tokens_per_second": round(tokens_out / call.latency, 2) if call.latency > 0 else 0.0,
                "prompt": prompt,  # exactly what was sent: the trajectory records it
            }
            if call.ttft is not None:
                meta["ttft"] = round(call.ttft, 4)
            body = continuation_body(text, request.task) if opts.mode == "completion" else None
            result.append(Completion(text=text, body=body, tokens_in=tokens_in, tokens_out=tokens_out,
                                     latency=call.latency, cost=cost, meta=meta))
        return result

    # --- one request, retried --------------------------------------------------------------

    def _request(self, prompt: list[dict] | str, *, n: int, seed: int, stop: list[str]) -> _Call:
        opts = self.options
        params: dict = {"model": self.model, "n": n, "seed": seed, "temperature": opts.temperature,
                        "max_tokens": opts.max_tokens}
        if opts.top_p is not None:
            params["top_p"] = opts.top_p
        if stop:
            params["stop"] = stop
        if opts.stream:
            params.update(stream=True, stream_options={"include_usage": True})
        return self._with_retries(lambda: self._send(prompt, params))

    def _send(self, prompt, params: dict) -> _Call:
        client = self.client
        started = time.perf_counter()
        chat = not isinstance(prompt, str)
        api = client.chat.completions if chat else client.completions
        key = "messages" if chat else "prompt"
        response = api.create(**{key: prompt}, **params)
        if not params.get("stream"):
            choices = sorted(response.choices, key=lambda c: c.index)
            texts = [(c.message.content or "") if chat else (c.text or "") for c in choices]
            usage = response.usage
            return _Call(texts, [c.finish_reason or "" for c in choices],
                         usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
                         time.perf_counter() - started)
        parts: dict[int, list[str]] = {}
        finish: dict[int, str] = {}
        usage = None
        ttft = None
        for chunk in response:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            for c in chunk.choices or ():
                piece = (c.delta.content if chat else c.text) or ""
                if piece and ttft is None:
                    ttft = time.perf_counter() - started
                parts.setdefault(c.index, []).append(piece)
                if c.finish_reason:
                    finish[c.index] = c.finish_reason
        order = sorted(parts)
        return _Call(["".join(parts[i]) for i in order], [finish.get(i, "") for i in order],
                     usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
                     time.perf_counter() - started, ttft=ttft)

    def _with_retries(self, send) -> _Call:
        import openai

        opts = self.options
        last: Exception | None = None
        for attempt in range(opts.max_retries + 1):
            wait_hint = None
            try:
                call = send()
                call.tries = attempt + 1
                return call
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status not in _RETRY_STATUS and status < 500:
                    raise SolverError(f"the OpenAI-compatible server at {self.base_url} refused the "
                                      f"request ({status}): {_message(exc)}") from exc
                last, wait_hint = exc, _retry_after(exc)
            except (openai.APIConnectionError, *_transport_errors()) as exc:  # timeouts included
                last = exc
            if attempt < opts.max_retries:
                time.sleep(self._backoff(attempt, wait_hint))
        raise SolverError(f"the OpenAI-compatible server at {self.base_url} did not answer "
                          f"({opts.max_retries + 1} tries): {_describe(last)}") from last

    def _backoff(self, attempt: int, hint: float | None) -> float:
        """Full-jitter exponential backoff; a server's Retry-After wins when it asks for longer."""
        opts = self.options
        delay = min(opts.backoff_max, opts.backoff * 2 ** attempt)
        delay = delay / 2 + random.uniform(0, delay / 2)
        if hint is not None:
            delay = max(delay, min(hint, opts.backoff_max))
        return delay


def _share(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, as integers that add up to ``total``."""
    if not weights:
        return []
    whole = sum(weights)
    if whole == 0:
        base = [total // len(weights)] * len(weights)
        base[0] += total - sum(base)
        return base
    shares = [total * w // whole for w in weights]
    shares[max(range(len(weights)), key=lambda i: weights[i])] += total - sum(shares)
    return shares


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP library's transport errors, for clients that let them escape while streaming."""
    found = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        found.append(module.TransportError)
    return tuple(found)


def _retry_after(exc) -> float | None:
    value = getattr(getattr(exc, "response", None), "headers", {}).get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0) if when else None


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(getattr(exc, "message", "") or exc)


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "no attempt was made"
    status = getattr(exc, "status_code", None)
    text = f"{type(exc).__name__} ({status}): {_message(exc)}" if status else f"{type(exc).__name__}: {_message(exc)}"
    cause = exc.__cause__ or exc.__context__
    return f"{text} ({type(cause).__name__}: {cause})" if cause is not None and str(cause) else text


def from_spec(arg: str, options=None, *, root=None, index=None, kind: str = "openai") -> OpenAISolver:
    model, _, url = arg.partition("@")
    return OpenAISolver(model=model, base_url=url, options=options)
