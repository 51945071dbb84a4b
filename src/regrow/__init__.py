"""regrow: turn a Python repository with a test suite into a verifiable-reward environment.

The public surface, by pipeline stage (each name is imported when first used, so
``import regrow`` stays light):

    prepare(spec, config)          resolve, build the environment, grok, hollow and validate
    run(spec, config)              prepare, then let a solver regrow every valid task; a run id
    grok(source, env, store)       the grok step alone
    build_report(store, run_id)    one run's figures; compare(store, run_ids) several side by side
    load_engine(spec, config)      the repository context engine of a source
    make_solver(spec)              a solver from its spec (oracle, null, openai:..., local:..., ...)
    Reward(spec).score(task, text) a completion's verdict, for trainers
    Verifier(...).verify(task, b)  one candidate body's verdict
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the module that defines it
_WHERE = {
    # verbs
    "prepare": "regrow.api", "run": "regrow.api", "open_store": "regrow.api", "load_engine": "regrow.api",
    "Hooks": "regrow.api", "Prepared": "regrow.api",
    "grok": "regrow.grok.build",
    "build_tasks": "regrow.tasks.build", "summarize": "regrow.tasks.build",
    "build_report": "regrow.report.runs", "compare": "regrow.report.runs", "list_runs": "regrow.store.runs",
    "make_solver": "regrow.solve.solvers", "check_spec": "regrow.solve.solvers",
    "Reward": "regrow.reward",
    "Verifier": "regrow.verify.verifier", "VerifyConfig": "regrow.verify.verifier",
    "resolve_source": "regrow.source.resolve", "resolve_config": "regrow.config",
    # nouns
    "RunConfig": "regrow.config", "Source": "regrow.source.resolve", "Store": "regrow.store.db",
    "Symbol": "regrow.core.symbol", "Index": "regrow.core.index", "Task": "regrow.core.task",
    "Attempt": "regrow.core.attempt", "Verdict": "regrow.core.verdict", "TestOutcome": "regrow.core.verdict",
    "ContextItem": "regrow.core.context_item", "RunReport": "regrow.report.runs",
    "Solver": "regrow.solve.solvers.base", "SolveRequest": "regrow.solve.types", "Completion": "regrow.solve.types",
    # errors
    **{name: "regrow.errors" for name in (
        "RegrowError", "SourceError", "InstallError", "NoTestsError", "StoreError", "ConfigError", "SolverError",
        "SandboxError", "EngineError", "UnknownRunError")},
}

__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'regrow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
