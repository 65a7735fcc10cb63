"""Drives `airun serve` with the official Python MCP SDK over stdio and prints what it saw.

    python fs_session.py PLAN.json

PLAN: {"command": [BINARY, ARGS...], "cwd": DIR, "mode": "auto" | "legacy",
       "roots": [DIR, ...] or null, "calls": [[TOOL, ARGS], ...]}

Prints one JSON object: {"tools": {name: tool}, "results": [result or exception, ...]}. The Rust
tests (tests/fs_mcp.rs) make the assertions; this script only records.
"""

import asyncio
import json
import pathlib
import sys

import mcp.types as types
from mcp import Client, StdioServerParameters


def wire(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main(plan):
    roots = plan.get("roots")

    async def list_roots(context):
        return types.ListRootsResult(
            roots=[types.Root(uri=pathlib.Path(r).as_uri()) for r in roots]
        )

    server = StdioServerParameters(
        command=plan["command"][0], args=plan["command"][1:], cwd=plan["cwd"]
    )
    out = {"results": []}
    client = Client(
        server,
        mode=plan.get("mode", "auto"),
        list_roots_callback=list_roots if roots is not None else None,
        client_info=types.Implementation(name="fs-test", version="1"),
        read_timeout_seconds=120,
    )
    async with client as c:
        listed = await c.list_tools()
        out["tools"] = {t.name: wire(t) for t in listed.tools}
        for name, args in plan["calls"]:
            try:
                out["results"].append(wire(await c.call_tool(name, args)))
            except Exception as e:  # a protocol error: record it, keep going
                out["results"].append({"exception": type(e).__name__, "message": str(e)})
    print(json.dumps(out))


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        asyncio.run(main(json.load(f)))
