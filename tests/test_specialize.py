"""regrow.specialize.finetune: the training text, held-out hollowing, and a real LoRA run on a tiny model."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from _repos import fixture_config, git_init
from conftest import CALC_VALID
from regrow.errors import ConfigError
from _models import smollm2_tokenizer, tiny_base
from regrow.specialize import finetune as ft


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2_tokenizer()


def test_held_out_mode_erases_every_task_body_and_codebase_mode_keeps_them(calc_repo, tmp_path):
    from regrow.api import prepare

    prep = prepare(str(calc_repo), fixture_config(tmp_path / "home"))
    prep.close()
    assert {t.task_id for t in prep.valid} == CALC_VALID
    docs = ft.source_files(calc_repo)
    assert {d.path for d in docs} >= {"calc/ops.py", "calc/shapes.py"}
    texts = {d.path: d.text for d in docs}
    held, erased = ft.hollow_documents(docs, prep.valid)
    assert erased == len(CALC_VALID)
    held_texts = {d.path: d.text for d in held}
    for task in prep.valid:
        body = textwrap.indent(task.reference_body.strip("\n"), task.body_indent)
        assert body in texts[task.path]
        assert body not in held_texts[task.path], task.task_id
        assert task.symbol.signature in held_texts[task.path]  # the signature stays: only the body goes
    # files without tasks are untouched
    assert all(held_texts[p] == texts[p] for p in texts if p not in {"calc/ops.py", "calc/shapes.py"})
    # the functions that are not tasks keep their bodies in the held-out text
    assert "return x\n" in held_texts["calc/ops.py"]  # `tiny`: trivial, never a task


def test_source_files_at_a_revision_are_the_committed_ones(calc_repo):
    first = git_init(calc_repo)
    (calc_repo / "calc" / "ops.py").write_text("def add(a, b):\n    return b + a\n", encoding="utf-8")
    at_first = {d.path: d.text for d in ft.source_files(calc_repo, first)}
    now = {d.path: d.text for d in ft.source_files(calc_repo)}
    assert "def clamp" in at_first["calc/ops.py"] and "def clamp" not in now["calc/ops.py"]
    with pytest.raises(ConfigError, match="no such revision"):
        ft.source_files(calc_repo, "no-such-rev")


def test_windows_cover_the_file_under_the_token_limit(tokenizer):
    text = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(60))
    pieces = ft.windows(ft.Document("pkg/m.py", text), tokenizer, 64)
    assert len(pieces) > 1
    assert pieces[0].startswith("# file: pkg/m.py\n")
    assert "".join(pieces) == "# file: pkg/m.py\n" + text
    assert all(len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= 64 for p in pieces)


def test_a_bad_base_is_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="--base"):
        ft.resolve_base(str(tmp_path / "nothing"))
    kind, folder, name = ft.resolve_base("smollm2")
    assert kind == "gguf" and (folder / name).is_file()


def test_an_sft_export_becomes_chat_text(tmp_path, tokenizer):
    rows = [{"format": "regrow-sft/1", "task_id": "calc.ops:add",
             "messages": [{"role": "user", "content": "Regrow add."},
                          {"role": "assistant", "content": "```python\nreturn a + b\n```"}]}]
    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    texts = ft.sft_texts(path, tokenizer)
    assert len(texts) == 1 and "Regrow add." in texts[0] and "return a + b" in texts[0]
    path.write_text(json.dumps({"format": "regrow-dpo/1", "prompt": []}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an sft export"):
        ft.sft_texts(path, tokenizer)


def test_the_finetune_command_rejects_a_bad_mode_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from regrow.cli import app

    res = CliRunner().invoke(app, ["finetune", str(tmp_path), "--mode", "everything", "--home", str(tmp_path / "h")])
    assert res.exit_code == 2 and "--mode 'everything'" in res.output and "Traceback" not in res.output


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_lora_on_a_tiny_model_resumes_merges_and_loads_as_a_local_solver(calc_repo, tmp_path, tokenizer):
    from regrow.api import run
    from regrow.report.runs import build_report
    from regrow.store import Store

    base = tiny_base(tmp_path / "base", tokenizer)
    out = tmp_path / "tuned"
    config = fixture_config(tmp_path / "home")
    options = ft.FinetuneOptions(mode="held-out", max_steps=4, save_steps=2, max_length=64, bf16=False)
    seen = []

    def stop_at_three(p: ft.TrainProgress):
        seen.append(p)
        if p.step == 3:
            raise _Interrupt  # interrupted after the checkpoint of step 2

    with pytest.raises(_Interrupt):
        ft.finetune(str(calc_repo), config, str(base), out, options=options, on_step=stop_at_three)
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and not (out / ft.MANIFEST).exists()
    assert [p.step for p in seen] == [1, 2, 3] and all(p.total == 4 for p in seen)
    assert seen[-1].tokens_per_second > 0 and seen[-1].eta_seconds is not None and seen[-1].loss is not None

    seen.clear()
    manifest = ft.finetune(str(calc_repo), config, str(base), out, options=options, on_step=seen.append)
    assert manifest["resumed_from"] == "checkpoint-2" and [p.step for p in seen] == [3, 4]
    assert manifest == ft.read_manifest(out) | {"output": str(out)}
    assert manifest["format"] == "regrow-finetune/1" and manifest["mode"] == "held-out"
    assert manifest["steps"] == 4 and [row["step"] for row in manifest["loss_curve"]] == [1, 2, 3, 4]
    assert manifest["data"]["held_out_tasks"] == len(CALC_VALID) == manifest["data"]["bodies_erased"]
    assert manifest["data"]["tokens"] > 0 and manifest["tokens_per_second"] > 0
    assert manifest["base"] == str(base) and manifest["base_kind"] == "hf"
    assert (out / "config.json").is_file() and (out / "adapter" / "adapter_config.json").is_file()

    # the merged folder is a plain Hugging Face model: `local:OUT` runs it on the tasks
    run_id = run(str(calc_repo), fixture_config(tmp_path / "home", solver=f"local:{out}", tasks=2, max_tokens=8))
    rep = build_report(Store(tmp_path / "home" / "regrow.sqlite"), run_id)
    assert rep.solver == f"local:{out}" and rep.chosen == 2 and rep.attempts == 2
    assert rep.statuses and sum(rep.statuses.values()) == 2


@pytest.mark.slow
def test_the_finetune_command_trains_and_prints_its_manifest(calc_repo, tmp_path, tokenizer):
    from typer.testing import CliRunner

    from regrow.cli import app

    head = git_init(calc_repo)
    base = tiny_base(tmp_path / "base", tokenizer)
    res = CliRunner().invoke(app, ["finetune", str(calc_repo), "--base", str(base), "--revision", "HEAD",
                                   "--max-steps", "2", "--max-length", "64", "--home", str(tmp_path / "h"), "--json"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(res.stdout)
    folder = Path(manifest["output"])
    assert folder.parent == tmp_path / "h" / "finetuned" and folder.name == f"calc-codebase-{head[:12]}"
    assert manifest["mode"] == "codebase" and manifest["steps"] == 2 and len(manifest["loss_curve"]) == 2
    assert manifest["revision"] == head == manifest["source"]["git_rev"] and manifest["data"]["bodies_erased"] == 0
    assert ft.read_manifest(folder)["steps"] == 2


@pytest.mark.model
@pytest.mark.slow
def test_the_embedded_gguf_base_loads_in_float32_and_saves_as_a_plain_folder(tmp_path):
    import torch

    model, tokenizer = ft.load_base("smollm2")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    model.save_pretrained(str(tmp_path / "base"))
    tokenizer.save_pretrained(str(tmp_path / "base"))
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    assert "quantization_config" not in config
    assert ft.resolve_base(str(tmp_path / "base"))[0] == "hf"
