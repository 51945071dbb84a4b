"""``scripted:PATH``: answers read from a script, the same for every run — a solver for tests,
demos and reproducing a model's transcript without the model.

The script is a JSON file ``{"format": "regrow-script/1", "answers": {TASK_ID: [TEXT, ...]}}``.
Turn ``t`` of a chain answers with ``answers[task_id][t]`` (the last one again when the list
is shorter; the key ``"*"`` serves tasks not named). Each text is treated as a model's raw
answer: it goes through the same extraction, verification and feedback as one, so a script
can exercise every path of the loop (a fenced block, prose, a malformed answer, a fix on the
second turn). A script never sees the reference: it is written beforehand.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from regrow.errors import ConfigError
from regrow.solve.solvers.base import Completion, SolveRequest

FORMAT = "regrow-script/1"


def load_script(path: Path) -> dict[str, list[str]]:
    """The answers of a script file, or ConfigError with one line saying what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"scripted:{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"scripted:{path}: not a JSON script ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("answers"), dict):
        raise ConfigError(f"scripted:{path}: expected {{\"format\": \"{FORMAT}\", \"answers\": {{task: [text, ...]}}}}")
    answers = {}
    for task_id, texts in data["answers"].items():
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ConfigError(f"scripted:{path}: the answers of {task_id!r} must be a non-empty list of strings")
        answers[str(task_id)] = list(texts)
    return answers


class ScriptedSolver:
    """Answers from a script file (see the module docstring)."""

    options = None  # no model: nothing to sample

    def __init__(self, path: str):
        self.path = Path(path)
        self.answers = load_script(self.path)
        digest = hashlib.sha256(json.dumps(self.answers, sort_keys=True).encode()).hexdigest()[:12]
        self.name = f"scripted:{self.path.name}"
        self.identity = f"scripted#{digest}"  # the same script names the same run, wherever it lies

    def propose(self, request: SolveRequest) -> list[Completion]:
        texts = self.answers.get(request.task.task_id) or self.answers.get("*")
        if texts is None:
            return [Completion(text="", meta={"scripted": "no answer for this task"}) for _ in range(request.n)]
        text = texts[min(request.turn, len(texts) - 1)]
        return [Completion(text=text, meta={"scripted": True}) for _ in range(request.n)]


def from_spec(arg: str, options=None, *, root=None, index=None, kind: str = "scripted") -> ScriptedSolver:
    return ScriptedSolver(arg)
