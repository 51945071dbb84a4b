"""Write records as Parquet (pyarrow, one fixed schema per format) or JSON Lines.

The kind of file follows the path: ``.parquet`` or ``.jsonl``. pyarrow is the ``export``
extra (``pip install 'regrow[export]'``); JSON Lines needs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from regrow.errors import ConfigError
from regrow.export.records import DPO, GRPO, RC, SFT, TASKS, TRAJECTORIES

KINDS = {".parquet": "parquet", ".jsonl": "jsonl"}


def kind_of(path: Path) -> str:
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise ConfigError(f"-o {path}: the file must end in .parquet or .jsonl")
    return kind


def schema(fmt: str):
    """The Arrow schema of one format: the columns every record of it has, in order."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    messages = pa.list_(message)
    strings = pa.list_(pa.string())
    common = [("format", pa.string()), ("source", pa.string()), ("source_version", pa.string()),
              ("source_key", pa.string()), ("task_id", pa.string()), ("path", pa.string()),
              ("split", pa.string()), ("strength", pa.float64())]
    own = {
        SFT: [("run_id", pa.string()), ("solver", pa.string()), ("turn", pa.int64()), ("messages", messages),
              ("body", pa.string()), ("flags", strings)],
        DPO: [("prompt", messages), ("chosen", messages), ("rejected", messages), ("chosen_run", pa.string()),
              ("rejected_run", pa.string()), ("rejected_status", pa.string()), ("flags", strings)],
        GRPO: [("prompt", messages), ("prompt_text", pa.string()), ("flags", strings),
               ("data_source", pa.string()), ("ability", pa.string()),
               ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
               ("extra_info", pa.struct([("task_id", pa.string()), ("source", pa.string()),
                                         ("source_key", pa.string()), ("path", pa.string()),
                                         ("split", pa.string()), ("index", pa.int64())]))],
        RC: [("run_id", pa.string()), ("solver", pa.string()), ("turn", pa.int64()), ("score", pa.float64()),
             ("solved", pa.bool_()), ("status", pa.string()), ("messages", messages), ("flags", strings)],
        TRAJECTORIES: [("run_id", pa.string()), ("solver", pa.string()), ("sample", pa.int64()),
                       ("solved", pa.bool_()), ("turns", pa.list_(pa.struct([
                           ("turn", pa.int64()), ("messages", messages),
                           ("context_items", pa.list_(pa.struct([
                               ("subject", pa.string()), ("channel", pa.string()), ("path", pa.string()),
                               ("line", pa.int64()), ("tokens", pa.int64()), ("score", pa.float64()),
                               ("breadcrumb", pa.string()), ("form", pa.string()), ("covers", strings)]))),
                           ("completion", pa.string()), ("body", pa.string()), ("malformed", pa.string()),
                           ("verdict", pa.struct([
                               ("status", pa.string()), ("tests_total", pa.int64()), ("tests_passed", pa.int64()),
                               ("flags", strings), ("feedback", pa.string()), ("func_similarity", pa.float64()),
                               ("file_similarity", pa.float64())])),
                           ("reward", pa.float64())])))],
        TASKS: [("instance_id", pa.string()), ("repo", pa.string()), ("base_commit", pa.string()),
                ("patch", pa.string()), ("FAIL_TO_PASS", strings), ("problem_statement", pa.string()),
                ("flags", strings)],
    }
    return pa.schema(common + own[fmt])


def write(records: list[dict], fmt: str, path: Path) -> Path:
    """Write ``records`` of format ``fmt`` to ``path`` (its suffix picks Parquet or JSON Lines)."""
    path = Path(path)
    kind = kind_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return path
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet needs pyarrow: pip install 'regrow[export]' (or write .jsonl)") from None
    sch = schema(fmt)
    table = pa.Table.from_pylist([{name: rec.get(name) for name in sch.names} for rec in records], schema=sch)
    pq.write_table(table, path)
    return path
