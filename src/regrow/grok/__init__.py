"""grok: what regrow knows about a source before any task exists.

- `build`: `grok(source, env, store)`, the whole step, cached by content;
- `parse`: symbols of each module (`ast`);
- `graph`: the symbol graph (calls, references, imports, inheritance);
- `testmap`: which tests execute each function (coverage.py dynamic contexts);
- `recorder`: calls recorded while the tests run, for the equivalence check;
- `runtime_facts`: what those calls say about types and values;
- `gitfacts`: age, churn and authors from git history.
"""

from regrow.grok.build import grok

__all__ = ["grok"]
