"""Regrow's reward inside trainers: one small adapter per framework, over `regrow.reward.Reward`.

* `regrow.integrations.verl` — `compute_score` (and `compute_score_batch`) for verl's
  `custom_reward_function`; imports nothing of verl.
* `regrow.integrations.gym` — `RegrowEnv`, a multi-turn Gymnasium environment (needs the
  `train` extra).
* `regrow.integrations.trl` — `RegrowReward`, a reward function for TRL's `GRPOTrainer`.

Nothing here is imported by the rest of regrow; each module imports its framework only when
it is imported itself. How to use each one is in docs/training.md.
"""
