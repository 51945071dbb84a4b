"""`regrow finetune`: LoRA supervised fine-tuning of a causal LM on one repository's code.

The training text: every Python file of the repository at a revision (`source_files`; the
working tree when none is given; with ``code_only`` the package's own code only, no tests, docs
or ``setup.py``), each headed ``# file: PATH`` as the completion prompt of
``local:`` solvers shows a file, cut at line boundaries into windows of at most ``max_length``
tokens; and/or the rows of an ``sft`` export (``regrow export --format sft``), each rendered with
the tokenizer's chat template (`sft_texts`). Two modes:

* ``codebase``: every file as it is (the erase-and-regenerate experiment's setting): how far
  specialization can pull a model toward one codebase, memorisation included;
* ``held-out``: in the files of the source's valid tasks, every task's body is erased (as
  `regrow.tasks.hollow.erase` erases it for a task) before training, so no reference body is
  ever seen: what the model learned about the codebase rather than what it memorised. All valid
  tasks are held out, so any subset `regrow run --tasks N` chooses stays unseen.

Training: PEFT LoRA (``all-linear`` targets) through TRL's ``SFTTrainer``, on CPU with bf16
autocast where the CPU has bf16 instructions (``avx512_bf16`` or ``amx_bf16``), on a GPU
unchanged when one is visible. On a CPU shared with other work, ``threads=1`` can be several times
faster than torch's default of one thread per core (its threads wait for each other spinning).
Checkpoints go to ``OUT/checkpoints`` every ``save_steps``
steps; the same command resumes from the newest one when the data and settings are the same
(``OUT/checkpoints/regrow-run.json`` holds their digest). At the end the adapter is saved to
``OUT/adapter``, merged into the base weights and saved with the tokenizer to ``OUT``, which
``--solver local:OUT`` loads; ``OUT/regrow-finetune.json`` (``regrow-finetune/1``) records the
base model, the data, the revision, the mode, the epochs, the loss curve and tokens/s.

Bases: ``smollm2`` (the embedded SmolLM2-135M-Instruct GGUF, dequantised by transformers), a
GGUF file, or a Hugging Face model folder; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict

from regrow.errors import ConfigError, SolverError

FORMAT = "regrow-finetune/1"
MANIFEST = "regrow-finetune.json"
RUN_MARK = "regrow-run.json"
MODES = ("codebase", "held-out")
INSTALL = "pip install 'regrow[hf,train,finetune]'"


class FinetuneOptions(BaseModel):
    """What a fine-tuning run does; every field is recorded in the manifest."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["codebase", "held-out"] = "codebase"
    epochs: float = 1.0
    max_steps: int | None = None  # stop after this many optimiser steps (tests, smoke runs)
    learning_rate: float = 2e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 512  # tokens per training window
    batch_size: int = 1
    grad_accum: int = 1
    save_steps: int = 50
    seed: int = 0
    source_text: bool = True  # train on the repository's files
    code_only: bool = False  # only the package's own code (`corpus.is_package_code`: no tests, docs, setup)
    sft: str | None = None  # an sft export (.jsonl or .parquet) to train on too
    bf16: bool | None = None  # None: where the hardware has it
    threads: int | None = None  # CPU threads for torch (None: torch's default, one per core)


@dataclass(frozen=True)
class TrainProgress:
    """One optimiser step, as the progress hook sees it."""

    step: int
    total: int
    epoch: float
    loss: float | None
    tokens_per_second: float
    eta_seconds: float | None
    elapsed: float


@dataclass(frozen=True)
class Document:
    path: str
    text: str


# --- the base model --------------------------------------------------------------------------


def resolve_base(base: str) -> tuple[str, Path, str | None]:
    """("gguf" | "hf", folder, gguf file name) for ``--base``."""
    if base == "smollm2":
        from regrow.solve.solvers.local import find_smollm2
        path = find_smollm2()
        return "gguf", path.parent, path.name
    where = Path(base).expanduser()
    if where.is_file() and where.suffix.lower() == ".gguf":
        return "gguf", where.parent, where.name
    if where.is_dir() and (where / "config.json").is_file():
        return "hf", where, None
    if where.is_dir() and len(ggufs := sorted(where.glob("*.gguf"))) == 1:
        return "gguf", where, ggufs[0].name
    raise ConfigError(f"--base {base}: give smollm2 (the embedded model), a .gguf file or a Hugging Face "
                      "model folder (config.json); nothing is downloaded")


@contextlib.contextmanager
def _no_hf_bars():
    """transformers' own progress bars (dequantising, writing shards) off for a while."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def load_base(base: str):
    """(model, tokenizer) for ``--base``, in float32, ready to train and to save as a folder."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(f"fine-tuning needs transformers, torch, trl and peft: {INSTALL}") from exc
    kind, folder, gguf = resolve_base(base)
    kw = {"gguf_file": gguf} if gguf else {"local_files_only": True}
    try:
        with _no_hf_bars():  # the dequantisation bar: the CLI draws its own
            tokenizer = AutoTokenizer.from_pretrained(str(folder), **kw)
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, **kw)
    except (OSError, ValueError) as exc:
        raise SolverError(f"transformers could not load {base}: {exc}") from exc
    if gguf:
        # The weights are dequantised to float32 on load, but the model keeps the GGUF
        # quantizer's marks, and transformers refuses to save a "quantized" model: drop them.
        model.hf_quantizer = None
        model.is_quantized = False
        model.quantization_method = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# --- the training text -----------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, stdin=subprocess.DEVNULL)


def revision_commit(root: Path, revision: str) -> str:
    done = _git(root, "rev-parse", "--verify", f"{revision}^{{commit}}")
    if done.returncode != 0:
        raise ConfigError(f"--revision {revision}: no such revision in {root}")
    return done.stdout.decode().strip()


def source_files(root: Path, revision: str | None = None) -> list[Document]:
    """The repository's Python files: at ``revision`` (from git), else the working tree."""
    from regrow.source.resolve import is_skipped_dir, iter_python_files

    root = Path(root)
    docs = []
    if revision is None:
        for path in iter_python_files(root):
            try:
                docs.append(Document(path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")))
            except (UnicodeDecodeError, OSError):
                continue
        return docs
    commit = revision_commit(root, revision)
    listed = _git(root, "ls-tree", "-r", "--name-only", commit).stdout.decode().splitlines()
    for rel in listed:
        parts = rel.split("/")
        if not rel.endswith(".py") or any(is_skipped_dir(Path(p)) for p in parts[:-1]):
            continue
        shown = _git(root, "show", f"{commit}:{rel}")
        try:
            docs.append(Document(rel, shown.stdout.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return docs


def hollow_documents(docs: list[Document], tasks) -> tuple[list[Document], int]:
    """``docs`` with the body of every task in ``tasks`` erased (same file, same qualified name).
    Returns (documents, bodies erased)."""
    from regrow.grok.parse import parse_text
    from regrow.tasks.hollow import erase

    by_path: dict[str, dict[str, str]] = {}
    for t in tasks:
        by_path.setdefault(t.symbol.path, {})[t.symbol.qualname] = t.symbol.module
    out, erased = [], 0
    for doc in docs:
        wanted = by_path.get(doc.path)
        if not wanted:
            out.append(doc)
            continue
        module = next(iter(wanted.values()))
        text = doc.text
        try:
            symbols = [s for s in parse_text(text, doc.path, module).symbols if s.qualname in wanted]
        except SyntaxError:
            out.append(doc)
            continue
        for sym in sorted(symbols, key=lambda s: -s.def_line):  # bottom up: lines above stay in place
            try:
                text = erase(text, sym)[0]
                erased += 1
            except ValueError:
                continue
        out.append(Document(doc.path, text))
    return out, erased


def sft_texts(path: str | Path, tokenizer) -> list[str]:
    """The rows of an ``sft`` export rendered as training text (the chat template when the
    tokenizer has one)."""
    from regrow.solve.prompt import render_messages

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--data {path}: no such file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError("reading a .parquet export needs pyarrow: pip install 'regrow[export]'") from exc
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = []
    for row in rows:
        if row.get("format") not in (None, "regrow-sft/1") or not row.get("messages"):
            raise ConfigError(f"--data {path}: not an sft export (rows need format regrow-sft/1 and messages)")
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        if getattr(tokenizer, "chat_template", None):
            texts.append(tokenizer.apply_chat_template(messages, tokenize=False))
        else:
            texts.append(render_messages(messages))
    return texts


def windows(doc: Document, tokenizer, max_length: int) -> list[str]:
    """``doc`` headed ``# file: PATH``, cut at line boundaries into pieces of at most
    ``max_length`` tokens (a longer single line is cut by the trainer's truncation)."""
    lines = [f"# file: {doc.path}\n"] + doc.text.splitlines(keepends=True)
    pieces, current, used = [], [], 0
    for line in lines:
        n = len(tokenizer(line, add_special_tokens=False)["input_ids"])
        if current and used + n > max_length:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(line)
        used += n
    if current and "".join(current).strip():
        pieces.append("".join(current))
    return pieces


# --- training --------------------------------------------------------------------------------


def bf16_available() -> bool:
    """Whether bf16 autocast is worth using: a CUDA device with bf16, or a CPU with bf16 instructions."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _digest(what: dict) -> str:
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    return found[-1] if found else None


def train(model, tokenizer, texts: list[str], out: Path, options: FinetuneOptions, *, data: dict,
          log: Callable[[str], None] = lambda _m: None,
          on_step: Callable[[TrainProgress], None] | None = None) -> dict:
    """LoRA-train ``model`` on ``texts``, merge, save to ``out``; returns the manifest (also written)."""
    try:
        import datasets
        import torch
        from peft import LoraConfig
        from transformers import PrinterCallback
        from trl import SFTConfig, SFTTrainer
    except ImportError as exc:
        raise ConfigError(f"fine-tuning needs transformers, torch, trl and peft: {INSTALL}") from exc
    if not texts:
        raise ConfigError("nothing to train on: the repository has no Python files and no --data was given")
    out = Path(out)
    ckpt = out / "checkpoints"
    tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    data = {**data, "windows": len(texts), "tokens": sum(tokens)}
    key = _digest({"options": options.model_dump(exclude={"threads"}), "data": data, "texts": _digest({"t": texts})})
    mark = ckpt / RUN_MARK
    resume = None
    if mark.is_file() and json.loads(mark.read_text()).get("key") == key:
        resume = _latest_checkpoint(ckpt)
    elif ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    mark.write_text(json.dumps({"key": key}))
    cuda = torch.cuda.is_available()
    if options.threads and not cuda:
        torch.set_num_threads(options.threads)
    bf16 = bf16_available() if options.bf16 is None else options.bf16
    args = SFTConfig(
        output_dir=str(ckpt), num_train_epochs=options.epochs, max_steps=options.max_steps or -1,
        per_device_train_batch_size=options.batch_size, gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.learning_rate, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0,
        logging_steps=1, save_strategy="steps", save_steps=options.save_steps, save_total_limit=2,
        report_to="none", seed=options.seed, data_seed=options.seed, use_cpu=not cuda, bf16=bf16,
        dataloader_num_workers=0, max_length=options.max_length, packing=False, dataset_text_field="text",
        disable_tqdm=True)
    lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    dataset = datasets.Dataset.from_list([{"text": t} for t in texts])
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # tokenising a few windows: no bars of its own
    try:
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
    finally:
        if bars:
            datasets.enable_progress_bars()
    trainer.remove_callback(PrinterCallback)  # it prints every log to stdout; the hook reports progress
    mean_tokens = sum(tokens) / len(tokens) * options.batch_size * options.grad_accum
    clock = _Clock(mean_tokens, on_step)
    trainer.add_callback(_progress_callback(clock))
    log(f"training on {len(texts)} windows ({sum(tokens)} tokens), {options.epochs:g} epochs, "
        f"{'cuda' if cuda else 'cpu'}{' bf16' if bf16 else ''}" + (f", resuming from {resume.name}" if resume else ""))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.perf_counter() - started
    steps_run = max(1, trainer.state.global_step - clock.first_step)
    losses = [{"step": h["step"], "epoch": round(h.get("epoch", 0.0), 4), "loss": round(h["loss"], 4)}
              for h in trainer.state.log_history if "loss" in h]
    adapter = out / "adapter"
    with _no_hf_bars():
        trainer.model.save_pretrained(str(adapter))
        merged = trainer.model.merge_and_unload()
        merged.to(torch.float32)
        merged.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    manifest = {
        "format": FORMAT, "mode": options.mode, "epochs": options.epochs, "options": options.model_dump(),
        "data": data, "steps": trainer.state.global_step, "resumed_from": resume.name if resume else None,
        "loss_curve": losses, "train_loss": round(result.training_loss, 4) if result.training_loss else None,
        "wall_seconds": round(wall, 1), "tokens_seen": round(steps_run * mean_tokens),
        "tokens_per_second": round(steps_run * mean_tokens / wall, 2) if wall > 0 else None,
        "device": "cuda" if cuda else "cpu", "bf16": bf16,
        "parameters": sum(p.numel() for p in merged.parameters()), "created": time.time(),
    }
    return manifest


class _Clock:
    def __init__(self, tokens_per_step: float, on_step):
        self.tokens_per_step = tokens_per_step
        self.on_step = on_step
        self.start = time.perf_counter()
        self.first_step: int = 0
        self.loss: float | None = None


def _progress_callback(clock: _Clock):
    """A `transformers.TrainerCallback` that turns steps into `TrainProgress`."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            clock.start = time.perf_counter()
            clock.first_step = state.global_step

        def on_log(self, args, state, control, logs=None, **kw):  # every step (logging_steps=1), after it ends
            if not logs or "loss" not in logs:
                return
            clock.loss = float(logs["loss"])
            if clock.on_step is None:
                return
            done = state.global_step - clock.first_step
            elapsed = time.perf_counter() - clock.start
            rate = done * clock.tokens_per_step / elapsed if elapsed > 0 else 0.0
            eta = elapsed / done * (state.max_steps - state.global_step) if done else None
            clock.on_step(TrainProgress(state.global_step, state.max_steps, float(state.epoch or 0.0), clock.loss,
                                        round(rate, 2), eta, elapsed))

    return ProgressCallback()


def finetune_checkout(base: str, root: Path, out: Path, *, revision: str | None = None,
                      options: FinetuneOptions = FinetuneOptions(), held_out=(), source: dict | None = None,
                      hooks=None, on_step: Callable[[TrainProgress], None] | None = None) -> dict:
    """Fine-tune ``base`` on the files of ``root`` (at ``revision``) and save the merged model to
    ``out``. ``held_out``: tasks whose bodies are erased from the text (``held-out`` mode)."""
    from regrow.api import Hooks

    hooks = hooks or Hooks()
    root, out = Path(root), Path(out)
    if options.mode == "held-out" and not held_out:
        raise ConfigError("held-out mode needs the tasks to hold out (the source's valid tasks)")
    commit = revision_commit(root, revision) if revision else _head(root)
    docs = source_files(root, revision) if options.source_text else []
    if options.code_only:
        from regrow.specialize.corpus import is_package_code
        docs = [d for d in docs if is_package_code(d.path)]
    erased = 0
    if options.mode == "held-out":
        docs, erased = hollow_documents(docs, held_out)
    model, tokenizer = load_base(base)
    texts = [w for d in docs for w in windows(d, tokenizer, options.max_length)]
    if options.sft:
        texts += sft_texts(options.sft, tokenizer)
    data = {"files": len(docs), "sft": options.sft, "held_out_tasks": len(held_out), "bodies_erased": erased,
            "source_text": options.source_text}
    out.mkdir(parents=True, exist_ok=True)
    manifest = train(model, tokenizer, texts, out, options, data=data, log=hooks.log, on_step=on_step)
    manifest.update(base=base, base_kind=resolve_base(base)[0], revision=commit,
                    worktree=revision is None, source=source or {"root": str(root)})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return manifest


def _head(root: Path) -> str | None:
    done = _git(root, "rev-parse", "HEAD")
    return done.stdout.decode().strip() if done.returncode == 0 else None


def default_output(config, source_name: str, mode: str, revision: str | None) -> Path:
    """Where `regrow finetune` writes without ``--output``: ``HOME/finetuned/NAME-MODE-REV``."""
    return Path(config.home) / "finetuned" / f"{source_name}-{mode}-{(revision or 'worktree')[:12]}"


def finetune(spec: str, config, base: str, out: Path | None = None, *, revision: str | None = None,
             options: FinetuneOptions = FinetuneOptions(), hooks=None,
             on_step: Callable[[TrainProgress], None] | None = None) -> dict:
    """`regrow finetune SOURCE`: resolve the source (and, in held-out mode, build its tasks),
    then `finetune_checkout` into ``out`` (default: `default_output`). Returns the manifest, with
    ``output``: the folder."""
    from regrow.api import Hooks, prepare
    from regrow.source.resolve import resolve_source

    hooks = hooks or Hooks()
    resolve_base(base)  # a bad --base fails now, not after grok
    held = ()
    if options.mode == "held-out":
        prep = prepare(spec, config, hooks)
        prep.close()
        source = prep.source
        held = tuple(prep.valid)
        if not held:
            raise ConfigError(f"{source.name}: no valid tasks to hold out")
    else:
        source = resolve_source(spec, home=config.home)
    if revision is not None and not (Path(source.root) / ".git").exists():
        raise ConfigError(f"--revision needs a git repository; {source.root} is not one")
    info = {"name": source.name, "version": source.version, "key": source.key, "git_rev": source.git_rev}
    named = revision_commit(Path(source.root), revision) if revision is not None else None
    out = Path(out) if out is not None else default_output(config, source.name, options.mode, named)
    manifest = finetune_checkout(base, source.root, out, revision=revision, options=options, held_out=held,
                                 source=info, hooks=hooks, on_step=on_step)
    return {**manifest, "output": str(out)}


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{folder} has no {MANIFEST}: not a regrow finetune output")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ConfigError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
    return data

