"""Where the code and its interpreter come from.

- `resolve`: a user's source spec (a directory or ``pypi:NAME==VERSION``) becomes a `Source`;
- `envs`: the virtual environment the source's tests run in;
- `suite`: the pytest options regrow adds to the project's own (addopts it leaves out, plugins
  the configuration asks for);
- `workspace`: private copies of the tree and scratch folders.
"""

from regrow.source.resolve import Source, resolve_source

__all__ = ["Source", "resolve_source"]
