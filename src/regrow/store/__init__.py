"""The store: every SQL statement regrow runs lives in this package.

`db` owns the connection, the schema and its migrations; each other module is one family of
tables, with functions that take a `Store` and plain values and return plain values or the
records of `regrow.core`-level types:

- `sources`: one row per grokked source content, its facts;
- `index`: files, symbols, tests and the test map (`load_index` builds an `Index`);
- `graph`: the symbol graph's edges;
- `gitfacts`: git facts per file and symbol;
- `calls`: calls recorded while the tests ran on the reference;
- `tasks`: hollowed tasks and their validation;
- `runs`: runs, their attempts and the model-response cache;
- `ranking`: the context engine's ranking weights learned on each source.
"""

from regrow.store.db import SCHEMA_VERSION, Store

__all__ = ["SCHEMA_VERSION", "Store"]
