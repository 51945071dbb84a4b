"""Reports read the store: one run's figures, several runs side by side.

- `runs`: `build_report`, `compare`, `list_runs`.
"""

from regrow.report.runs import RunReport, build_report, compare, list_runs

__all__ = ["RunReport", "build_report", "compare", "list_runs"]
