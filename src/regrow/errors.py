"""One error root. Subclasses are named for what the user must fix.

A failing candidate is never an exception (it is a `Verdict`); these are for
infrastructure faults and bad input that regrow cannot work around.
"""

from __future__ import annotations


class RegrowError(Exception):
    """Root of every error regrow raises on purpose. The CLI prints the message, no traceback."""


class SourceError(RegrowError):
    """The source could not be found, downloaded or unpacked."""


class InstallError(RegrowError):
    """The target's environment could not be created or its package not installed."""


class NoTestsError(RegrowError):
    """The source has no tests regrow can run, or its suite fails before any change."""


class StoreError(RegrowError):
    """The SQLite store is unreadable or of another schema version."""


class ConfigError(RegrowError):
    """A configuration value, solver spec or flag is invalid."""


class SolverError(RegrowError):
    """A solver backend failed in a way that retrying will not fix (dead server, missing model)."""


class SandboxError(RegrowError):
    """The sandbox itself failed (not the candidate): could not start, lost its worker."""


class EngineError(SandboxError):
    """A warm worker could not be started (the target's interpreter lacks pytest, or it crashed at
    once); the verifier falls back to a fresh pytest per candidate."""


class UnknownRunError(RegrowError):
    """No run of that id in the store."""
