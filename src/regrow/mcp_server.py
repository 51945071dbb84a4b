"""`regrow mcp`: a Model Context Protocol server (stdio) over one grokked source.

Tools for coding agents, all read-only:

* ``context(symbol, budget=4000, format="md")`` — the ranked pack of `regrow.context.engine`, task mode;
* ``callers(symbol)`` / ``callees(symbol)`` — use edges of the symbol graph, with lines;
* ``tests_for(symbol)`` — the covering tests from the test map, shortest durations first;
* ``runtime_facts(symbol)`` — what the recorded calls say about arguments, results, exceptions;
* ``search(query)`` — definitions by name fragment, else by BM25 over names and docstrings.

Works with the official ``mcp`` package, 1.x (``FastMCP``) or 2.x (``MCPServer``). Nothing is
printed on stdout except the protocol; logs go to stderr.
"""

from __future__ import annotations

import json

from regrow.context.engine import ContextEngine, build_context
from regrow.errors import ConfigError, RegrowError
from regrow.grok.runtime_facts import summarize
from regrow.context.tokenizers import get_tokenizer


def _mcp():
    """(server class, ToolError) of the installed mcp package, 2.x or 1.x."""
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        return MCPServer, ToolError
    except ImportError:
        pass
    try:
        from mcp.server.fastmcp import FastMCP
        from mcp.server.fastmcp.exceptions import ToolError
        return FastMCP, ToolError
    except ImportError as exc:
        raise ConfigError("regrow mcp needs the mcp package: pip install 'regrow[mcp]'") from exc


def make_server(engine: ContextEngine, *, tokenizer: str = "smollm2"):
    """An MCP server whose tools answer from ``engine``."""
    server_class, ToolError = _mcp()
    server = server_class("regrow")
    tok = get_tokenizer(tokenizer)

    def known(symbol: str) -> str:
        """The symbol itself, or a ToolError the agent can read (with close names)."""
        if symbol in engine.graph.defs or symbol in engine.index.symbols:
            return symbol
        hits = engine.find(symbol, limit=5)
        raise ToolError(f"unknown symbol {symbol!r}" + (f"; did you mean {', '.join(hits)}?" if hits else ""))

    @server.tool()
    def context(symbol: str, budget: int = 4000, format: str = "md") -> str:
        """Ranked context for a function (pkg.mod:Class.meth) under a token budget, each item with its reason.
        Task mode: the function's own body is never included."""
        try:
            return build_context(engine, known(symbol), budget=budget, tokenizer=tok, mode="task").render(format)
        except RegrowError as exc:  # e.g. a class rather than a function, a bad format
            raise ToolError(str(exc)) from exc

    @server.tool()
    def callers(symbol: str) -> str:
        """Definitions that call or reference the symbol, with the line of each use (JSON list)."""
        q = known(symbol)
        return json.dumps([{"caller": e.src, "kind": e.kind, "line": e.line,
                            "path": engine.graph.defs[e.src].path if e.src in engine.graph.defs else None}
                           for e in engine.graph.callers(q)])

    @server.tool()
    def callees(symbol: str) -> str:
        """Repository definitions the symbol's body uses, with the first line of each use (JSON list)."""
        q = known(symbol)
        return json.dumps([{"callee": d, "line": line, "kind": engine.graph.defs[d].kind}
                           for d, line in engine.graph.uses(q).items()])

    @server.tool()
    def tests_for(symbol: str) -> str:
        """Test ids that execute the symbol's body (from the coverage test map), fastest first (JSON list)."""
        q = known(symbol)
        ids = engine.index.covering(q)
        return json.dumps(sorted(ids, key=lambda t: (engine.index.tests.get(t, ("", 0.0))[1], t)))

    @server.tool()
    def runtime_facts(symbol: str) -> str:
        """Argument and return types, value ranges and exceptions recorded while the tests ran."""
        summary = summarize(engine.store, engine.source_key, known(symbol))
        return summary.text() if summary else f"no calls of {symbol} were recorded"

    @server.tool()
    def search(query: str, limit: int = 20) -> str:
        """Definitions whose qualified name contains the query, else the best lexical matches (JSON list)."""
        return json.dumps([{"symbol": q, "kind": engine.graph.defs[q].kind, "path": engine.graph.defs[q].path,
                            "line": engine.graph.defs[q].line} for q in engine.find(query, limit)])

    return server


def serve(engine: ContextEngine, *, tokenizer: str = "smollm2") -> None:
    """Serve ``engine`` over stdio until the client closes the connection."""
    make_server(engine, tokenizer=tokenizer).run()
