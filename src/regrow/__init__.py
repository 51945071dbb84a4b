"""regrow: turn a Python repository with a test suite into a verifiable-reward environment."""

from regrow.config import RunConfig, resolve_config
from regrow.errors import (ConfigError, InstallError, NoTestsError, RegrowError, SandboxError, SolverError, SourceError,
                     StoreError)
from regrow.core.symbol import Symbol
from regrow.core.task import Task
from regrow.core.verdict import TestOutcome, Verdict

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "InstallError", "NoTestsError", "RegrowError", "RunConfig", "SandboxError", "SolverError",
    "SourceError", "StoreError", "Symbol", "Task", "TestOutcome", "Verdict", "resolve_config", "__version__",
]
