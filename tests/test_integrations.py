"""Regrow's reward inside trainers: verl's reward function, a Gymnasium env and TRL's GRPOTrainer,
each on the calc fixture with real verification (warm workers, the sandbox)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from _models import smollm2_tokenizer, tiny_llama
from _repos import fixture_config, make_repo
from conftest import CALC_FILES, CALC_VALID
from regrow.integrations import _shared

WRONG = "```python\nreturn None\n```"


cfg = fixture_config


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    """The calc fixture prepared once into the process's cache, as an adapter would find it."""
    base = tmp_path_factory.mktemp("integrations")
    root = make_repo(base / "calc", CALC_FILES)
    home = base / "home"
    reward = _shared.cached_reward(str(root), home, cfg(home))
    yield {"root": root, "home": home, "reward": reward}
    _shared.close_all()


def _right(reward, task_id: str) -> str:
    return "```python\n" + reward.tasks[task_id].reference_body + "\n```"


# ------------------------------------------------------------------------------ verl


def test_verl_compute_score_one_item_at_a_time_and_as_a_batch(calc, monkeypatch):
    from regrow.integrations import verl

    monkeypatch.setenv(verl.SOURCE_ENV, str(calc["root"]))
    monkeypatch.setenv("REGROW_PYTHON", sys.executable)
    reward = calc["reward"]
    info = {"home": str(calc["home"])}
    rows = [("calc.ops:clamp", _right(reward, "calc.ops:clamp")), ("calc.ops:clamp", WRONG),
            ("calc.ops:add", _right(reward, "calc.ops:add")), ("calc.ops:add", "no code at all")]
    # the naive reward manager: one call per item, positional as verl makes it
    naive = [verl.compute_score("regrow/calc", text, tid, info) for tid, text in rows]
    assert [r["score"] for r in naive] == [1.0, 0.0, 1.0, 0.0]
    assert [r["solved"] for r in naive] == [True, False, True, False]
    assert naive[0]["tests_passed"] > 0 and naive[0]["similarity"] == pytest.approx(1.0)
    assert set(naive[1]) == {"score", "solved", "tests_passed", "similarity"}
    # the batch reward manager: keyword lists, the same answers
    batch = verl.compute_score_batch(data_sources=["regrow/calc"] * len(rows), solution_strs=[t for _, t in rows],
                                     ground_truths=[tid for tid, _ in rows], extra_infos=[info] * len(rows))
    assert batch == naive
    # the Reward was prepared once and reused (same process cache, same object)
    assert _shared.cached_reward(str(calc["root"]), calc["home"]) is reward
    # the source can also come from the row itself; none at all is a clear error
    monkeypatch.delenv(verl.SOURCE_ENV)
    assert verl.compute_score("x", WRONG, "calc.ops:add", {**info, "source": str(calc["root"])})["score"] == 0.0
    with pytest.raises(Exception, match="REGROW_SOURCE"):
        verl.compute_score("x", WRONG, "calc.ops:add", info)


# ------------------------------------------------------------------------------ gymnasium


def test_gym_env_episode_and_env_checker(calc):
    import gymnasium  # noqa: F401 - the train extra (make install)
    from gymnasium.utils.env_checker import check_env

    from regrow.integrations.gym import RegrowEnv

    reward = calc["reward"]
    env = RegrowEnv(reward, max_turns=2)
    obs, info = env.reset(options={"task_id": "calc.ops:clamp"})
    assert "clamp" in obs and env.observation_space.contains(obs) and info["task_id"] == "calc.ops:clamp"
    obs, r, terminated, truncated, info = env.step(WRONG)
    assert (r, terminated, truncated) == (0.0, False, False) and "FAILED" in obs
    assert env.observation_space.contains(obs) and info["tests_total"] > 0
    obs, r, terminated, truncated, _ = env.step(WRONG)
    assert (r, terminated, truncated) == (0.0, False, True)
    env.reset(options={"task_id": "calc.ops:clamp"})
    obs, r, terminated, truncated, info = env.step(_right(reward, "calc.ops:clamp"))
    assert (r, terminated, truncated) == (1.0, True, False) and info["solved"]
    # seeded draws of a task are reproducible
    assert env.reset(seed=3)[1]["task_id"] == env.reset(seed=3)[1]["task_id"] in CALC_VALID
    check_env(env.unwrapped, skip_render_check=True)


# ------------------------------------------------------------------------------ TRL


def test_trl_reward_reads_standard_and_conversational_completions(calc):
    from regrow.integrations.trl import RegrowReward

    reward = calc["reward"]
    fn = RegrowReward(None, reward)
    right = _right(reward, "calc.ops:mean")
    completions = [right, WRONG, [{"role": "assistant", "content": right}],
                   [{"role": "assistant", "content": "thinking"}, {"role": "assistant", "content": WRONG}], right]
    ids = ["calc.ops:mean"] * 4 + ["calc.ops:unused"]
    logged = {}
    out = asyncio.run(fn(prompts=["p"] * 5, completions=completions, task_id=ids,
                         log_metric=lambda k, v: logged.__setitem__(k, v)))
    assert out == [1.0, 0.0, 1.0, 0.0, None]
    assert fn.counts["solved"] == 2 and fn.counts["failed"] == 2 and fn.counts["unknown_task"] == 1
    assert logged["regrow/solved"] == pytest.approx(2 / 5)
    fn.close()


def test_trl_tool_env_is_a_multi_turn_environment_as_grpo_trainer_drives_it(calc):
    """As GRPOTrainer(environment_factory=...) does: the factory called without arguments, the
    class's public functions but reset/get_reward made tools (their JSON schema from the
    docstring), reset(**row), tool calls, then get_reward()."""
    import gymnasium  # noqa: F401 - the train extra (make install)
    import functools
    import inspect

    from transformers.utils import get_json_schema

    from regrow.integrations.trl import SUBMIT_NOTE, RegrowToolEnv
    from regrow.solve.prompt import build_messages

    reward = calc["reward"]
    factory = functools.partial(RegrowToolEnv, reward, max_turns=2)
    env = factory()
    names = {n for n, _ in inspect.getmembers(type(env), predicate=inspect.isfunction)}
    tools = sorted(n for n in names - {"reset", "get_reward"} if not n.startswith("_"))
    assert tools == ["submit"] and {"reset", "get_reward"} <= names
    schema = get_json_schema(env.submit)["function"]
    assert schema["name"] == "submit" and schema["parameters"]["required"] == ["body"]

    # a row of `regrow export --format grpo`: its prompt shows the task already
    task = reward.tasks["calc.ops:clamp"]
    row = {"prompt": build_messages(task), "task_id": "calc.ops:clamp"}
    assert env.reset(**row) == SUBMIT_NOTE
    assert env.get_reward() == 0.0
    first = env.submit(body="return None")
    assert "FAILED" in first and "No attempts left" not in first and env.get_reward() == 0.0
    assert env.submit(body=task.reference_body) == "solved" and env.get_reward() == 1.0
    assert env.submit(body="return None") == "solved" and env.get_reward() == 1.0  # the episode ended

    # a row whose prompt does not show the task: reset returns the task's prompt; turns run out
    observation = env.reset(prompt=[{"role": "user", "content": "Regrow this function."}], task_id="calc.ops:clamp")
    assert "clamp" in observation and observation.endswith(SUBMIT_NOTE) and env.get_reward() == 0.0
    env.submit(body="return None")
    assert env.submit(body="return None").endswith("No attempts left.")
    assert env.submit(body=task.reference_body) == "No attempts left." and env.get_reward() == 0.0


@pytest.mark.slow
def test_grpo_trainer_runs_two_steps_with_the_regrow_reward(calc_repo, tmp_path):
    import trl  # noqa: F401 - the train extra (make install)
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from regrow.export import records
    from regrow.integrations.trl import RegrowReward
    from regrow.reward import Reward

    tokenizer = smollm2_tokenizer()
    model = tiny_llama(tokenizer, max_positions=4096)

    home = tmp_path / "home"
    with Reward(str(calc_repo), cfg(home)) as reward:
        built = records.build_from_tasks("grpo", [records.TaskSet.of(reward.prepared.source, reward.prepared.tasks)])
        rows = [{"prompt": r["prompt_text"], "task_id": r["task_id"]} for r in built.records]
        assert {r["task_id"] for r in rows} == CALC_VALID
        fn = RegrowReward(home, reward)
        args = GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, max_steps=2, per_device_train_batch_size=2,
                          num_generations=2, max_completion_length=16, logging_steps=1, report_to="none",
                          save_strategy="no", seed=0, bf16=False, dataloader_num_workers=0)
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=[fn],
                              train_dataset=datasets.Dataset.from_list(rows), args=args)
        trainer.train()
        fn.close()
    assert trainer.state.global_step == 2
    assert fn.calls >= 2 and fn.counts["scored"] >= 4 and fn.counts["unknown_task"] == 0
    assert fn.counts["failed"] + fn.counts["malformed"] + fn.counts["solved"] == fn.counts["scored"]
    logged = [h for h in trainer.state.log_history if "regrow/malformed" in h or "regrow/failed" in h]
    assert logged, trainer.state.log_history
