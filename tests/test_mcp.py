"""`regrow mcp` spawned as a real stdio server and driven by the official MCP client."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from test_context import MARKER, grok_repo

SRC = Path(__file__).parents[1] / "src"


def _is_error(result) -> bool:
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))  # mcp 2.x / 1.x


def _text(result) -> str:
    assert not _is_error(result), result
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def _session(root: Path, home: Path) -> dict:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "regrow", "mcp", str(root), "--home", str(home), "--python", sys.executable,
              "--tokenizer", "smollm2"],
        env={"PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])},
    )
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            out["context"] = _text(await session.call_tool("context", {"symbol": "shop.cart:Cart.total", "budget": 500}))
            out["callers"] = json.loads(_text(await session.call_tool("callers", {"symbol": "shop.cart:Cart.total"})))
            out["callees"] = json.loads(_text(await session.call_tool("callees", {"symbol": "shop.cart:Cart.total"})))
            out["tests"] = json.loads(_text(await session.call_tool("tests_for", {"symbol": "shop.cart:Cart.total"})))
            out["runtime"] = _text(await session.call_tool("runtime_facts", {"symbol": "shop.pricing:with_tax"}))
            out["search"] = json.loads(_text(await session.call_tool("search", {"query": "subtotal"})))
            out["unknown"] = await session.call_tool("callers", {"symbol": "shop.cart:Cart.nope"})
    return out


def test_an_mcp_client_gets_context_graph_tests_facts_and_search(tmp_path):
    store, source = grok_repo(tmp_path)
    out = anyio.run(_session, source.root, tmp_path / "home")
    assert out["tools"] == ["callees", "callers", "context", "runtime_facts", "search", "tests_for"]
    assert out["context"].startswith("# Context for `shop.cart:Cart.total`") and MARKER not in out["context"]
    assert [c["caller"] for c in out["callers"]] == ["shop.cart:checkout"]
    assert {c["callee"] for c in out["callees"]} == {"shop.pricing:with_tax", "shop.cart:Cart.subtotal"}
    assert set(out["tests"]) == {"tests/test_cart.py::test_total", "tests/test_cart.py::test_checkout_says_how_much"}
    assert out["runtime"].startswith("shop.pricing:with_tax: 2 calls recorded in 2 tests")
    assert "argument `amount` was always an int" in out["runtime"]
    assert out["search"][0]["symbol"] == "shop.cart:Cart.subtotal"
    assert _is_error(out["unknown"]) and "unknown symbol" in "".join(c.text for c in out["unknown"].content)
