"""Drives an MCP server with the official Python SDK and prints what it saw as one JSON object.

    python mcp_session.py stdio BINARY MODE CONFIRM [SERVER ARGS...]
    python mcp_session.py http URL MODE CONFIRM
    python mcp_session.py two URL              # two clients at once, each with its own undo
    python mcp_session.py dynamic BINARY [SERVER ARGS...]   # a dynamic toolset over stdio

MODE is the SDK's connect mode: `auto` (protocol 2026-07-28, confirmations as input_required
results) or `legacy` (the initialize handshake, confirmations as elicitation requests).
CONFIRM is how the user answers a confirmation: `accept`, `decline` or `none` (the client
cannot ask the user at all).

The Rust test (tests/mcp.rs) makes the assertions; this script only records.
"""

import asyncio
import json
import os
import sys

import mcp.types as types
from mcp import Client, StdioServerParameters


def wire(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def session(server, mode, confirm):
    asked = []

    async def on_elicit(context, params):
        asked.append(params.message)
        if confirm == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action="decline")

    out = {"elicitations": asked}
    client = Client(
        server,
        mode=mode,
        elicitation_callback=None if confirm == "none" else on_elicit,
        client_info=types.Implementation(name="python-sdk-test", version="9.9"),
        read_timeout_seconds=60,
    )
    async with client as c:
        out["protocol"] = c.protocol_version
        out["server"] = wire(c.server_info) if c.server_info else None
        listed = await c.list_tools()
        out["tools"] = {t.name: wire(t) for t in listed.tools}

        async def call(key, name, args):
            try:
                out[key] = wire(await c.call_tool(name, args))
            except Exception as e:  # a protocol error: record it, keep going
                out[key] = {"exception": type(e).__name__, "message": str(e)}

        await call("create", "create_note", {"title": "from mcp", "body": "hi"})
        await call("rename", "rename_note", {"id": 1, "title": "renamed"})
        await call("pin", "pin_note", {"id": 1})
        await call("checkpoint", "checkpoint", {"name": "before-second"})
        await call("create2", "create_note", {"title": "second"})
        await call("undo_to", "undo", {"checkpoint": "before-second"})
        await call("undo2", "undo", {"steps": 2})
        await call("history", "history", {})
        # What must not stop the server.
        await call("unknown", "no_such_tool", {})
        await call("invalid", "create_note", {"title": 5})
        await call("failing", "fail", {})
        await call("confirmed_delete", "delete_note", {"id": 1})
        await call("irreversible", "purge_notes", {})
        await call("after", "noop", {})
    return out


async def dynamic(server):
    """A dynamic toolset: search, describe and call, then undo; confirmations still asked."""
    asked = []

    async def on_elicit(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    out = {"elicitations": asked}
    async with Client(server, mode="auto", elicitation_callback=on_elicit) as c:
        listed = await c.list_tools()
        out["tools"] = {t.name: wire(t) for t in listed.tools}

        async def call(key, name, args):
            try:
                out[key] = wire(await c.call_tool(name, args))
            except Exception as e:
                out[key] = {"exception": type(e).__name__, "message": str(e)}

        await call("search", "search_capabilities", {"query": "create a note"})
        await call("search_none", "search_capabilities", {"query": "zebra"})
        await call("describe", "describe_capability", {"name": "create_note"})
        await call("describe_typo", "describe_capability", {"name": "create_notes"})
        await call("create", "call_capability",
                   {"name": "create_note", "arguments": {"title": "dyn", "body": "x"}})
        await call("create2", "call_capability",
                   {"name": "create_note", "arguments": {"title": "second"}})
        await call("invalid", "call_capability",
                   {"name": "create_note", "arguments": {"title": 5}})
        await call("delete", "call_capability", {"name": "delete_note", "arguments": {"id": 2}})
        await call("undo", "undo", {"steps": 1})
        await call("history", "history", {})
    return out


async def two(url):
    """Two HTTP clients connected at once: B's undo must not revert A's call."""
    out = {}
    info = lambda n: types.Implementation(name=n, version="1")
    async with Client(url, mode="legacy", client_info=info("a")) as a, Client(
        url, mode="legacy", client_info=info("b")
    ) as b:
        out["a_create"] = wire(await a.call_tool("create_note", {"title": "from a"}))
        out["b_create"] = wire(await b.call_tool("create_note", {"title": "from b"}))
        out["b_undo"] = wire(await b.call_tool("undo", {"steps": 1}))
        out["b_undo_again"] = wire(await b.call_tool("undo", {"steps": 1}))
        out["a_history"] = wire(await a.call_tool("history", {}))
        out["b_history"] = wire(await b.call_tool("history", {}))
    return out


async def main():
    if sys.argv[1] == "two":
        print(json.dumps(await two(sys.argv[2])))
        return
    if sys.argv[1] == "dynamic":
        server = StdioServerParameters(
            command=sys.argv[2], args=sys.argv[3:], env=dict(os.environ)
        )
        print(json.dumps(await dynamic(server)))
        return
    kind, target, mode, confirm, *rest = sys.argv[1:]
    if kind == "stdio":
        server = StdioServerParameters(command=target, args=rest, env=dict(os.environ))
    else:
        server = target
    print(json.dumps(await session(server, mode, confirm)))


asyncio.run(main())
