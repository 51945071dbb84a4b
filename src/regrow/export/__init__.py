"""Datasets from stored runs and task sets: `regrow export`.

- `records`: the rows of each format (``regrow-sft/1``, ``regrow-dpo/1``, ``regrow-grpo/1``,
  ``regrow-tasks/1``), the guards (no reference body in a prompt, no flagged solution, splits
  by file or module) and `Built`, which counts what the guards dropped.
- `write`: Parquet (one fixed Arrow schema per format) or JSON Lines.

How to train on them: docs/training.md.
"""
