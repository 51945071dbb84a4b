"""Tasks: erase bodies and keep only what the tests can judge.

- `hollow`: which symbols can become tasks, and erasing their bodies (libcst);
- `build`: plan, validate (the reference passes, the stub fails) and store the task set.
"""

from regrow.tasks.build import Exclusion, build_tasks, load_tasks, summarize

__all__ = ["Exclusion", "build_tasks", "load_tasks", "summarize"]
