"""The nouns: pure values and pure functions on them, no I/O and no regrow import from above.

- `symbol`: `Symbol`, a function or method of the source;
- `index`: `Index`, what grok knows of one source content;
- `task`: `Task`, one hollowed symbol, and the text operations on it (`splice`, `STUB`);
- `attempt`: `Attempt`, one turn of one chain (format ``regrow-attempt/1``);
- `verdict`: `Verdict` and `TestOutcome`, what verification decided;
- `context_item`: `ContextItem`, one piece of context shown to a model, with its breadcrumb;
- `scores`: edit distances, similarity and pass@k;
- `pyast`, `indent`: thread-safe parsing and indentation helpers.
"""
