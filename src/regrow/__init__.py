"""regrow: turn a Python repository with a test suite into a verifiable-reward environment."""

from .config import RunConfig, resolve_config
from .errors import (ConfigError, InstallError, NoTestsError, RegrowError, SandboxError, SolverError, SourceError,
                     StoreError)
from .symbols import Symbol
from .task import Task
from .verdict import TestOutcome, Verdict

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "InstallError", "NoTestsError", "RegrowError", "RunConfig", "SandboxError", "SolverError",
    "SourceError", "StoreError", "Symbol", "Task", "TestOutcome", "Verdict", "resolve_config", "__version__",
]
