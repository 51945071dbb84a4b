"""`regrow export`: datasets from real runs on the calc fixture, written as Parquet and JSONL and
read back with `datasets`; the schema of each format and the guards."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from textwrap import indent

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import datasets
import pyarrow.parquet as pq

from _repos import fixture_config, make_repo  # noqa: E402
from conftest import CALC_FILES, CALC_VALID  # noqa: E402
from regrow.api import open_store, prepare, run  # noqa: E402
from regrow.export import records, write  # noqa: E402

MESSAGES = "list<element: struct<role: string, content: string>>"
COMMON = {"format": "string", "source": "string", "source_version": "string", "source_key": "string",
          "task_id": "string", "path": "string", "split": "string", "strength": "double"}
GOLDEN = {
    "sft": {**COMMON, "run_id": "string", "solver": "string", "turn": "int64", "messages": MESSAGES,
            "body": "string", "flags": "list<element: string>"},
    "dpo": {**COMMON, "prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES, "chosen_run": "string",
            "rejected_run": "string", "rejected_status": "string", "flags": "list<element: string>"},
    "grpo": {**COMMON, "prompt": MESSAGES, "prompt_text": "string", "flags": "list<element: string>",
             "data_source": "string", "ability": "string",
             "reward_model": "struct<style: string, ground_truth: string>",
             "extra_info": "struct<task_id: string, source: string, source_key: string, path: string, split: string, "
                           "index: int64>"},
    "reward-conditioned": {**COMMON, "run_id": "string", "solver": "string", "turn": "int64", "score": "double",
                           "solved": "bool", "status": "string", "messages": MESSAGES,
                           "flags": "list<element: string>"},
    "trajectories": {**COMMON, "run_id": "string", "solver": "string", "sample": "int64", "solved": "bool",
                     "turns": "list<element: struct<turn: int64, messages: " + MESSAGES + ", context_items: "
                              "list<element: struct<subject: string, channel: string, path: string, line: int64, "
                              "tokens: int64, score: double, breadcrumb: string, form: string, covers: "
                              "list<element: string>>>, completion: string, body: string, malformed: string, "
                              "verdict: struct<status: string, tests_total: int64, tests_passed: int64, flags: "
                              "list<element: string>, feedback: string, func_similarity: double, "
                              "file_similarity: double>, reward: double>>"},
    "tasks": {**COMMON, "instance_id": "string", "repo": "string", "base_commit": "string", "patch": "string",
              "FAIL_TO_PASS": "list<element: string>", "problem_statement": "string", "flags": "list<element: string>"},
}
WRONG_ADD = "```python\nreturn a - b\n```"
RIGHT_ADD = "```python\nresult = a + b  # again\nreturn result\n```"


cfg = fixture_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An oracle, a null and a scripted run (add: wrong, then right on turn 2; the rest wrong)."""
    base = tmp_path_factory.mktemp("export")
    root = make_repo(base / "calc", CALC_FILES)
    home = base / "home"
    script = base / "script.json"
    script.write_text(json.dumps({"format": "regrow-script/1", "answers": {
        "calc.ops:add": [WRONG_ADD, RIGHT_ADD], "*": ["```python\nreturn None\n```"]}}))
    ids = {name: run(str(root), cfg(home, solver=solver, turns=turns))
           for name, solver, turns in [("oracle", "oracle", 1), ("null", "null", 1),
                                       ("scripted", f"scripted:{script}", 2)]}
    return {"root": root, "home": home, "ids": ids, "store": open_store(cfg(home))}


def _load(path: Path, tmp_path: Path):
    kind = "parquet" if path.suffix == ".parquet" else "json"
    return datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))


def _check_both(built: records.Built, fmt: str, tmp_path: Path) -> None:
    """Written as Parquet and JSONL, read back by `datasets`: the golden schema, the same rows."""
    assert built.records, f"no {fmt} records"
    pq_path = write.write(built.records, fmt, tmp_path / f"{fmt}.parquet")
    schema = pq.read_schema(pq_path)
    assert {f.name: str(f.type) for f in schema} == GOLDEN[fmt]
    ds = _load(pq_path, tmp_path)
    assert ds.column_names == list(GOLDEN[fmt]) and ds.num_rows == len(built.records)
    assert ds.to_list() == [{k: r[k] for k in GOLDEN[fmt]} for r in built.records]
    js = _load(write.write(built.records, fmt, tmp_path / f"{fmt}.jsonl"), tmp_path)
    assert set(js.column_names) == set(GOLDEN[fmt]) and js.num_rows == len(built.records)
    assert all(row["format"] == records.FORMATS[fmt] for row in js)


def _run_sets(runs, *names):
    return records.load_runs(runs["store"], [runs["ids"][n] for n in names])


def test_sft_keeps_each_distinct_solution_once_with_the_prompt_the_solvers_build(runs, tmp_path):
    built = records.build("sft", _run_sets(runs, "oracle", "null", "scripted"))
    _check_both(built, "sft", tmp_path)
    by_task: dict[str, list] = {}
    for r in built.records:
        by_task.setdefault(r["task_id"], []).append(r)
    assert set(by_task) == CALC_VALID
    assert all(len(v) == 1 for v in by_task.values())  # scripted's right add parses as the oracle's: a duplicate
    assert built.duplicates == 1 and built.dropped == {}
    add = by_task["calc.ops:add"][0]
    assert add["solver"] == "oracle" and add["source"] == "calc" and add["source_version"] == "0.1.0"
    assert [m["role"] for m in add["messages"]] == ["system", "user", "assistant"]
    assert add["messages"][-1]["content"].startswith("```python\n") and "a + b" in add["messages"][-1]["content"]
    task = next(t for t in prepare(str(runs["root"]), cfg(runs["home"], solver="oracle")).valid
                if t.task_id == "calc.ops:add")
    assert add["messages"][:-1] == records.prompt_messages(task, str(runs["root"]))
    assert add["strength"] is None and add["split"] == "train"


def test_dpo_pairs_a_solved_and_a_failed_answer_to_the_same_prompt(runs, tmp_path):
    built = records.build("dpo", _run_sets(runs, "oracle", "null", "scripted"))
    _check_both(built, "dpo", tmp_path)
    oracle, null, scripted = runs["ids"]["oracle"], runs["ids"]["null"], runs["ids"]["scripted"]
    assert {r["chosen_run"] for r in built.records} == {oracle}
    assert {r["rejected_run"] for r in built.records} <= {null, scripted}
    add = [r for r in built.records if r["task_id"] == "calc.ops:add"]
    assert {r["rejected_run"] for r in add} == {null, scripted}  # a - b and the null body, both on turn 0
    assert any("a - b" in r["rejected"][0]["content"] for r in add)
    for r in built.records:
        assert r["chosen"][0]["content"] != r["rejected"][0]["content"]
        assert r["prompt"][-1]["role"] == "user"
    # The scripted run alone: its right answer came on turn 2 (another prompt), so no pair.
    assert records.build("dpo", _run_sets(runs, "scripted")).records == []


def test_grpo_has_one_row_per_valid_task_with_verl_columns(runs, tmp_path):
    built = records.build("grpo", _run_sets(runs, "oracle", "null"))
    _check_both(built, "grpo", tmp_path)
    assert sorted(r["task_id"] for r in built.records) == sorted(CALC_VALID)
    r = built.records[0]
    assert r["ability"] == "code" and r["data_source"] == "regrow/calc"
    assert r["reward_model"] == {"style": "rule", "ground_truth": r["task_id"]}
    assert r["extra_info"]["task_id"] == r["task_id"] and r["prompt"][0]["role"] == "system"
    assert r["extra_info"]["source"] == str(runs["root"])  # the spec a reward prepares the source from
    assert isinstance(r["prompt_text"], str) and r["prompt_text"].startswith("# file:")
    prep = prepare(str(runs["root"]), cfg(runs["home"], solver="oracle"))
    from_source = records.build_from_tasks("grpo", [records.TaskSet.of(prep.source, prep.tasks)])
    assert [x["prompt"] for x in from_source.records] == [x["prompt"] for x in built.records]


def test_tasks_table_patch_erases_the_body_and_names_the_covering_tests(runs, tmp_path):
    prep = prepare(str(runs["root"]), cfg(runs["home"], solver="oracle"))
    built = records.build_from_tasks("tasks", [records.TaskSet.of(prep.source, prep.tasks)])
    _check_both(built, "tasks", tmp_path)
    by_id = {r["task_id"]: r for r in built.records}
    assert set(by_id) == CALC_VALID
    add = by_id["calc.ops:add"]
    assert add["base_commit"] == prep.source.key and add["repo"] == "calc"
    assert add["instance_id"] == "calc__calc.ops:add"
    assert "-    result = a + b" in add["patch"] and "+    raise NotImplementedError" in add["patch"]
    assert add["patch"].startswith("--- a/calc/ops.py\n+++ b/calc/ops.py\n")
    assert add["FAIL_TO_PASS"] and all("test_" in t for t in add["FAIL_TO_PASS"])
    assert "def add(a, b)" in add["problem_statement"] and "Add two numbers." in add["problem_statement"]


def test_guard_a_prompt_or_statement_carrying_the_reference_body_is_dropped(runs):
    (rs,) = _run_sets(runs, "oracle")
    leaky = []
    for t in rs.tasks.tasks:
        if t.task_id == "calc.ops:add":
            copy = "\n\ndef _copy(a, b):\n" + indent(t.reference_body.strip("\n"), "    ") + "\n"
            t = replace(t, hollowed_file=t.hollowed_file + copy,
                        symbol=replace(t.symbol, docstring=t.reference_body))
        leaky.append(t)
    bad = records.RunSet(replace(rs.tasks, tasks=tuple(leaky)), rs.attempts)
    assert records.leaks_reference(leaky[[t.task_id for t in leaky].index("calc.ops:add")],
                                   "x = 1\nresult = a + b\n\nreturn result\n")
    sft = records.build("sft", [bad])
    assert sft.dropped == {"reference in prompt": 1} and "calc.ops:add" not in {r["task_id"] for r in sft.records}
    grpo = records.build("grpo", [bad])
    assert grpo.dropped == {"reference in prompt": 1} and len(grpo.records) == len(CALC_VALID) - 1
    tasks = records.build_from_tasks("tasks", [bad.tasks])
    assert tasks.dropped == {"reference in problem statement": 1}
    assert "guards dropped 1" in tasks.summary()
    # A one-line body is not checked: `return x` is everywhere.
    one = replace(leaky[0], reference_body="return x\n")
    assert not records.leaks_reference(one, "return x\n")


def test_guard_a_solution_with_an_integrity_flag_is_never_used(runs):
    (rs,) = _run_sets(runs, "oracle")
    first = rs.attempts[0]
    flagged = replace(first, verdict={**first.verdict, "flags": ["wrote-outside-sandbox"]})
    bad = records.RunSet(rs.tasks, (flagged,) + rs.attempts[1:])
    sft = records.build("sft", [bad])
    assert sft.dropped == {"integrity flag": 1} and first.task_id not in {r["task_id"] for r in sft.records}


@pytest.mark.parametrize("by", ["file", "module"])
def test_guard_split_keeps_each_file_or_module_on_one_side(runs, by):
    built = records.build("grpo", _run_sets(runs, "oracle"), split=by)
    sides: dict[str, set] = {}
    for r in built.records:
        group = r["path"] if by == "file" else r["task_id"].split(":")[0]
        sides.setdefault(group, set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert {r["split"] for r in built.records} == {"train", "test"}
    again = records.build("grpo", _run_sets(runs, "oracle"), split=by)
    assert [r["split"] for r in again.records] == [r["split"] for r in built.records]  # deterministic
    with pytest.raises(Exception, match="--split"):
        records.build("grpo", _run_sets(runs, "oracle"), split="random")


def test_strength_is_carried_when_known(runs):
    (rs,) = _run_sets(runs, "oracle")
    tasks = tuple(replace(t, extra={**t.extra, "strength": {"strength": 0.75}}) for t in rs.tasks.tasks)
    built = records.build("grpo", [records.RunSet(replace(rs.tasks, tasks=tasks), rs.attempts)])
    assert {r["strength"] for r in built.records} == {0.75}


def test_cli_export_writes_the_file_and_a_one_line_summary(runs, tmp_path):
    from typer.testing import CliRunner
    from regrow.cli import app

    out = tmp_path / "dpo.jsonl"
    res = CliRunner().invoke(app, ["export", runs["ids"]["oracle"], runs["ids"]["null"], "--format", "dpo",
                                   "-o", str(out), "--home", str(runs["home"]), "--split", "file"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dpo: ") and "guards dropped 0" in lines[0]
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert len(rows) == len(CALC_VALID) and {r["split"] for r in rows} == {"train", "test"}
    res = CliRunner().invoke(app, ["export", "--tasks", str(runs["root"]), "--format", "tasks",
                                   "-o", str(tmp_path / "tasks.parquet"), "--home", str(runs["home"]),
                                   "--python", sys.executable])
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "tasks.parquet").num_rows == len(CALC_VALID)
    res = CliRunner().invoke(app, ["export", runs["ids"]["oracle"], "--format", "sft", "-o", str(tmp_path / "x.csv"),
                                   "--home", str(runs["home"])])
    assert res.exit_code != 0 and ".parquet or .jsonl" in res.output


def test_reward_conditioned_writes_each_answers_measured_score_into_its_prompt(runs, tmp_path):
    built = records.build("reward-conditioned", _run_sets(runs, "oracle", "scripted"))
    _check_both(built, "reward-conditioned", tmp_path)
    add = [r for r in built.records if r["task_id"] == "calc.ops:add"]
    # oracle (solved), scripted turn 0 (a - b: fails), scripted turn 1 (right, another prompt: kept apart)
    assert sorted((r["solver"].split(":")[0], r["turn"], r["score"]) for r in add) == \
        [("oracle", 0, 1.0), ("scripted", 0, 0.0), ("scripted", 1, 1.0)]
    for r in built.records:
        user = next(m for m in r["messages"] if m["role"] == "user")
        assert user["content"].startswith(f"score: {r['score']:.2f}\n\n")
        assert r["solved"] == (r["score"] == 1.0) and r["messages"][-1]["role"] == "assistant"
    assert records.measured_score({"status": "failed", "tests_total": 4, "tests_passed": 3}) == 0.75
    assert records.measured_score({"status": "solved", "flags": ["wrote-tests"], "tests_total": 1}) == 0.0


def test_trajectories_keep_every_turn_of_a_chain_with_its_context_breadcrumbs(runs, tmp_path):
    built = records.build("trajectories", _run_sets(runs, "scripted"))
    _check_both(built, "trajectories", tmp_path)
    add = next(r for r in built.records if r["task_id"] == "calc.ops:add")
    assert [t["turn"] for t in add["turns"]] == [0, 1] and add["solved"]
    first, second = add["turns"]
    assert first["verdict"]["status"] == "failed" and first["reward"] == 0.0 and "a - b" in first["body"]
    assert second["verdict"]["status"] == "solved" and second["reward"] == 1.0
    # Turn 2's prompt carries turn 1's answer and its feedback.
    assert "a - b" in second["messages"][-1]["content"] or any("a - b" in m["content"] for m in second["messages"])
    assert first["verdict"]["feedback"] and first["verdict"]["tests_total"] >= 1
    # The scripted solver used the simple context: its items are rebuilt, each with the breadcrumb
    # the prompt printed above it (calc's files fit the prompt whole, so some turns show none).
    for turn in (first, second):
        shown = "\n".join(m["content"] for m in turn["messages"])
        assert bool(turn["context_items"]) == ("Other code from this repository" in shown)
        assert all(f"# {i['breadcrumb']}" in shown and i["path"] for i in turn["context_items"])
    others = [r for r in built.records if r["task_id"] != "calc.ops:add"]
    assert others and all(not r["solved"] and len(r["turns"]) == 2 for r in others)


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """`regrow export --tasks ... --format harbor` through the CLI, with the oracle/null checks."""
    from typer.testing import CliRunner
    from regrow.cli import app

    out = tmp_path_factory.mktemp("harbor") / "tasks"
    res = CliRunner().invoke(app, ["export", "--tasks", str(runs["root"]), "--format", "harbor", "-o", str(out),
                                   "--home", str(runs["home"]), "--python", sys.executable])
    assert res.exit_code == 0, res.output
    return out, res.stdout


def test_every_exported_task_is_checked_and_the_summary_counts_the_checks(runs, exported):
    _, stdout = exported
    assert f"oracle 1 and null 0 on {len(CALC_VALID)}/{len(CALC_VALID)} tasks" in stdout
    (rs,) = _run_sets(runs, "oracle")

    class Broken:  # a verifier under which one reference fails and one stub passes
        def __init__(self, real):
            self.real = real

        def verify(self, task, body, malformed=""):
            if task.task_id == "calc.ops:add" and body == task.reference_body:
                body = "return None"
            if task.task_id == "calc.ops:clamp" and body != task.reference_body:
                body = task.reference_body
            return self.real.verify(task, body, malformed=malformed)

    prep = prepare(str(runs["root"]), cfg(runs["home"], solver="oracle"))
    kept, checks = records.check_tasks(rs.tasks, Broken(prep.verifier), workers=2)
    assert checks.checked == len(CALC_VALID) and set(checks.failed) == {"calc.ops:add", "calc.ops:clamp"}
    assert checks.failed["calc.ops:add"].startswith("oracle") and checks.failed["calc.ops:clamp"].startswith("null")
    assert {t.task_id for t in kept.tasks} == CALC_VALID - {"calc.ops:add", "calc.ops:clamp"}
    assert "oracle not 1: 1, null not 0: 1" in checks.summary()


def test_harbor_directories_have_harbors_layout_and_their_scripts_verify_with_regrow(runs, exported, tmp_path):
    import shutil
    import subprocess
    import tomllib

    out, _ = exported
    rows = [json.loads(ln) for ln in (out / "tasks.jsonl").read_text().splitlines()]
    assert {r["task_id"] for r in rows} == CALC_VALID and all(r["format"] == "regrow-harbor/1" for r in rows)
    add = out / next(r["dir"] for r in rows if r["task_id"] == "calc.ops:add")
    for rel in ("task.toml", "instruction.md", "environment/Dockerfile", "solution/solve.sh", "tests/test.sh"):
        assert (add / rel).is_file(), rel
    meta = tomllib.loads((add / "task.toml").read_text())
    assert meta["verifier"]["user"] == "root" and meta["agent"]["timeout_sec"] > 0
    assert meta["metadata"]["regrow_task_id"] == "calc.ops:add" and meta["metadata"]["regrow_covering_tests"]
    text = (add / "instruction.md").read_text()
    assert "def add(a, b)" in text and "/workspace/calc/ops.py" in text and "a + b" not in text
    assert "a + b" in (add / "solution" / "original.py").read_text()
    assert "USER agent" in (add / "environment" / "Dockerfile").read_text()
    # Run the scripts as Harbor would, with the container's paths moved into tmp_path.
    regrow_bin = str(Path(sys.executable).parent / "regrow")
    env = {**os.environ, "REGROW": regrow_bin, "REGROW_SOURCE": str(runs["root"]), "REGROW_HOME": str(runs["home"])}

    def trial(name: str, oracle: bool) -> tuple[str, dict]:
        workspace = tmp_path / name / "workspace"
        shutil.copytree(add / "environment" / "source", workspace)
        shutil.copy(add / "environment" / "hollowed" / "calc" / "ops.py", workspace / "calc" / "ops.py")
        logs = tmp_path / name / "logs"
        e = {**env, "REGROW_WORKSPACE": str(workspace), "REGROW_LOGS": str(logs)}
        if oracle:
            subprocess.run(["bash", str(add / "solution" / "solve.sh")], env=e, check=True)
        subprocess.run(["bash", str(add / "tests" / "test.sh")], env=e, check=True, timeout=300)
        return (logs / "reward.txt").read_text().strip(), json.loads((logs / "verdict.json").read_text())

    reward, verdict = trial("oracle", oracle=True)
    assert reward == "1.0" and verdict["status"] == "solved" and verdict["format"] == "regrow-verdict/1"
    reward, verdict = trial("untouched", oracle=False)
    assert reward == "0.0" and verdict["status"] != "solved"


def test_cli_verify_judges_one_answer_and_explains_a_bad_one(runs, tmp_path):
    from typer.testing import CliRunner
    from regrow.cli import app

    args = ["verify", str(runs["root"]), "calc.ops:add", "--home", str(runs["home"]), "--python", sys.executable]
    res = CliRunner().invoke(app, args, input="```python\nreturn a - b\n```")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("calc.ops:add: failed") and "reward 0.0" in res.stdout
    res = CliRunner().invoke(app, args + ["--json"], input="return a + b")
    assert res.exit_code == 0 and json.loads(res.stdout)["solved"] is True
    res = CliRunner().invoke(app, ["verify", str(runs["root"]), "calc.ops:nope", "--home", str(runs["home"]),
                                   "--python", sys.executable], input="return 1")
    assert res.exit_code == 2 and "no valid task 'calc.ops:nope'" in res.output and "Traceback" not in res.output


def test_a_run_export_checks_only_the_tasks_the_run_attempted(runs, tmp_path):
    from regrow.api import export_dataset

    config = cfg(runs["home"], solver="oracle", tasks=2, run_id="oracle-two")
    two = run(str(runs["root"]), config)
    built = export_dataset("sft", tmp_path / "sft.jsonl", config, run_ids=[two])
    assert built.checks.checked == 2 and not built.checks.failed and len(built.records) <= 2
    whole = export_dataset("grpo", tmp_path / "grpo.jsonl", config, run_ids=[two])
    assert whole.checks.checked == len(CALC_VALID) == len(whole.records)  # grpo: the whole task set
