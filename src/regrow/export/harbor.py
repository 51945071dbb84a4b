"""Harbor task directories (``regrow-harbor/1``): one folder per valid task, the layout Harbor
reads (and SkyRL, rLLM and TRL's Harbor integration run):

    <out>/<source>__<task>/
      task.toml            Harbor's configuration; regrow's facts under [metadata]
      instruction.md       what the agent is asked (signature, docstring, where, which tests)
      environment/         the image: Dockerfile, source/ (the tree as it was), hollowed/ (the
                           erased file); the build prepares regrow's verifier for the source and
                           copies the tree, body erased, to /workspace for the agent
      solution/solve.sh    the oracle: puts the original file back (solution/original.py)
      tests/test.sh        the verifier: `regrow verify` on the agent's file; writes the reward
                           to /logs/verifier/reward.txt and the verdict to verdict.json

The image keeps regrow's home (which holds the reference bodies) and the original tree under
/opt/regrow, readable by root only; the agent runs as the unprivileged user ``agent`` and the
verifier as root (``[verifier] user``). Every path in the scripts can be moved with an
environment variable (``REGROW_WORKSPACE``, ``REGROW_LOGS``, ``REGROW_HOME``,
``REGROW_SOURCE``, ``REGROW``), which is how the tests run them without Docker.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from regrow.core.task import Task
from regrow.errors import ConfigError
from regrow.export.records import FORMATS, HARBOR, Built, TaskSet, _base, problem_statement, shown_tasks
from regrow.source.resolve import iter_source_files

__all__ = ["write_tasks", "task_dir_name"]

IMAGE_SOURCE = "/opt/regrow/source"
IMAGE_HOME = "/opt/regrow/home"


def task_dir_name(ts: TaskSet, task: Task) -> str:
    """A folder name from the source and task id (letters, digits, ``._-`` only)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{ts.name}__{task.task_id}").strip("_")


def _toml(value) -> str:
    """A TOML value: JSON's strings, numbers, booleans and arrays are valid TOML."""
    return json.dumps(value, ensure_ascii=False)


def task_toml(ts: TaskSet, task: Task, split: str, *, verifier_timeout: float, agent_timeout: float) -> str:
    strength = task.extra.get("strength", {})
    strength = strength.get("strength") if isinstance(strength, dict) else None
    meta = {"author_name": "regrow", "category": "programming",
            "tags": ["regrow", "python", "erase-and-regenerate"],
            "regrow_format": FORMATS[HARBOR], "regrow_task_id": task.task_id, "regrow_source": ts.name,
            "regrow_source_version": ts.version or "", "regrow_source_key": ts.key, "regrow_path": task.path,
            "regrow_split": split, "regrow_covering_tests": list(task.tests)}
    if strength is not None:
        meta["regrow_strength"] = float(strength)
    lines = ['version = "1.0"', "", "[metadata]"]
    lines += [f"{k} = {_toml(v)}" for k, v in meta.items()]
    lines += ["", "[verifier]", f"timeout_sec = {float(verifier_timeout)}", 'user = "root"',
              "", "[agent]", f"timeout_sec = {float(agent_timeout)}",
              "", "[environment]", "build_timeout_sec = 1800.0", "cpus = 1", "memory_mb = 4096", ""]
    return "\n".join(lines)


def instruction(task: Task) -> str:
    tests = "\n".join(f"- `{t}`" for t in task.tests)
    return (f"# Write the body of `{task.symbol.local_name}`\n\n{problem_statement(task)}\n\n"
            f"The file is `/workspace/{task.path}`: its body is now `raise NotImplementedError`. Replace that "
            "body only; keep the signature, the rest of the file and the tests as they are (other changes "
            "are discarded or make the answer fail).\n\n"
            f"These tests exercise it:\n\n{tests}\n")


def dockerfile(task: Task) -> str:
    return f"""FROM python:3.11-slim
# regrow itself: a requirement pip understands (a name on your index, a wheel file, a VCS URL).
ARG REGROW_PIP=regrow
RUN pip install --no-cache-dir "$REGROW_PIP"
COPY source/ {IMAGE_SOURCE}/
COPY hollowed/ /opt/regrow/hollowed/
# Prepare the verifier once (environment, test map, validated tasks), then give the agent the
# tree with the body erased; the home and the original stay readable by root only.
RUN regrow hollow {IMAGE_SOURCE} --home {IMAGE_HOME} \\
 && cp -r {IMAGE_SOURCE} /workspace \\
 && cp /opt/regrow/hollowed/{task.path} /workspace/{task.path} \\
 && chmod -R go-rwx /opt/regrow \\
 && useradd --create-home agent && chown -R agent /workspace
WORKDIR /workspace
USER agent
"""


def test_sh(ts: TaskSet, task: Task) -> str:
    return f"""#!/usr/bin/env bash
# regrow's verifier for {task.task_id}: the agent's file, judged in regrow's sandbox (covering
# tests, recorded calls, integrity checks). The reward goes where Harbor reads it.
set -u
WORKSPACE="${{REGROW_WORKSPACE:-/workspace}}"
LOGS="${{REGROW_LOGS:-/logs/verifier}}"
mkdir -p "$LOGS"
echo 0 > "$LOGS/reward.txt"
"${{REGROW:-regrow}}" verify "${{REGROW_SOURCE:-{IMAGE_SOURCE}}}" {_sh(task.task_id)} \\
    --file "$WORKSPACE"/{_sh(task.path)} --home "${{REGROW_HOME:-{IMAGE_HOME}}}" \\
    --reward-file "$LOGS/reward.txt" --json > "$LOGS/verdict.json"
"""


def solve_sh(task: Task) -> str:
    return f"""#!/usr/bin/env bash
# The oracle: the file as it was before its body was erased.
set -eu
cp "$(dirname "$0")/original.py" "${{REGROW_WORKSPACE:-/workspace}}"/{_sh(task.path)}
"""


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _write(path: Path, text: str, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if executable:
        path.chmod(0o755)


def write_tasks(ts: TaskSet, out: Path, split: str | None = None, *, verifier_timeout: float = 600.0,
                agent_timeout: float = 1800.0) -> Built:
    """One Harbor task directory per task of ``ts`` under ``out``; the records say where each went."""
    out = Path(out)
    if out.suffix.lower() in (".parquet", ".jsonl"):
        raise ConfigError(f"-o {out}: harbor writes a directory of task folders, not a {out.suffix} file")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out}: exists and is not a directory")
    root = Path(ts.root)
    if not root.is_dir():
        raise ConfigError(f"the source tree {root} is gone: prepare the source again (`regrow hollow`)")
    files = [p.relative_to(root) for p in iter_source_files(root)]
    built = Built(HARBOR)
    for task, side, text in shown_tasks(ts, split, built, instruction, "instruction"):
        name = task_dir_name(ts, task)
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        env = folder / "environment"
        for rel in files:
            dest = env / "source" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest)
        _write(env / "hollowed" / task.path, task.hollowed_file)
        _write(env / "Dockerfile", dockerfile(task))
        _write(folder / "task.toml", task_toml(ts, task, side, verifier_timeout=verifier_timeout,
                                               agent_timeout=agent_timeout))
        _write(folder / "instruction.md", text)
        _write(folder / "solution" / "original.py", task.original_file)
        _write(folder / "solution" / "solve.sh", solve_sh(task), executable=True)
        _write(folder / "tests" / "test.sh", test_sh(ts, task), executable=True)
        built.records.append({**_base(HARBOR, ts, task, side), "dir": name})
    (out / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in built.records), encoding="utf-8")
    return built
