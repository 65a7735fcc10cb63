#!/usr/bin/env python3
"""The hero scenario: an agent fixes a bug with undo at its back, then makes a mess, and the user
steps back to the checkpoint — every file byte-identical, the tests passing again.

    python3 examples/demo-calculator/demo.py             # run it, narrated (builds airun first)
    python3 examples/demo-calculator/demo.py --claude    # set it up for Claude Code / Desktop instead

The agent's tool calls are sent over MCP with the official Python SDK to
`airun serve --root work` (this folder's airun.toml sets the policy); what a user then types —
`airun history`, `airun undo --to fixed`, `airun audit verify` — runs as new processes.

Options:
    --dir DIR       where to put work/ (the calculator the agent edits) and .aifirst/ (journal and
                    audit log); default: this folder. Both are made afresh.
    --airun PATH    the airun binary (default: $AIRUN, else `cargo build -p airun` and target/debug)
    --report FILE   also write the audit report of the session (self-contained HTML)
    --json          print the record of every step as JSON instead of the narration
    --claude        copy the calculator into work/ and print the configuration and a prompt for
                    Claude Code and Claude Desktop, to do the same with a real model

Needs the MCP Python SDK (`mcp`); without it in this Python, the script runs itself again with
target/venv/bin/python, which `bash .ci/setup` makes.
"""

import argparse
import asyncio
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROJECT = HERE / "project"
CONFIG = HERE / "airun.toml"
SESSION = "hero"
CHECKPOINT = "fixed"
TESTS = {"program": "python3", "args": ["-B", "-m", "unittest"], "undo_paths": ["."]}


def ensure_sdk():
    """Re-runs this script with the repository's venv when `mcp` is not importable here."""
    try:
        import mcp  # noqa: F401
        return
    except ImportError:
        pass
    venv = REPO / "target" / "venv" / "bin" / "python"
    if venv.exists() and not os.environ.get("AIFIRST_DEMO_REEXEC"):
        os.environ["AIFIRST_DEMO_REEXEC"] = "1"
        os.execv(str(venv), [str(venv), __file__, *sys.argv[1:]])
    sys.exit(
        "demo.py needs the official MCP Python SDK. Run `bash .ci/setup` (it makes target/venv),\n"
        "or: python3 -m venv target/venv && target/venv/bin/pip install mcp==2.3.0"
    )


def find_airun(given):
    """The airun binary: --airun, $AIRUN, else built with cargo (progress shown)."""
    if given or os.environ.get("AIRUN"):
        path = pathlib.Path(given or os.environ["AIRUN"]).resolve()
        if not path.is_file():
            sys.exit(f"no airun binary at {path}")
        return path
    print("building airun (cargo build -p airun; the first build takes a few minutes)…", file=sys.stderr)
    subprocess.run(["cargo", "build", "-p", "airun"], cwd=REPO, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "airun"


def tree(root):
    """Every file under root: relative path → (sha256, mode)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            data = path.read_bytes()
            out[path.relative_to(root).as_posix()] = (
                hashlib.sha256(data).hexdigest(),
                oct(path.stat().st_mode & 0o7777),
            )
    return out


def tree_hash(root):
    return hashlib.sha256(json.dumps(tree(root), sort_keys=True).encode()).hexdigest()


def wire(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def text_of(result):
    return "\n".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")


# What the agent does, step by step: (what it means to do, tool, arguments).
FIX = [
    ("look at the project", "list_directory", {"path": "."}),
    ("read the calculator", "read_text_file", {"path": "calculator.py"}),
    ("run the tests", "run_command", TESTS),
    (
        "fix the bug: `//` is floor division, the tests expect true division",
        "edit_file",
        {"path": "calculator.py", "edits": [{"oldText": "    return a // b", "newText": "    return a / b"}]},
    ),
    ("run the tests again", "run_command", TESTS),
    ("set a checkpoint", "checkpoint", {"name": CHECKPOINT}),
]

OPERATIONS_PY = '''"""The arithmetic, moved out of calculator.py."""


def add(a, b):
    return a + b


def subtract(a, b):
    return b - a


def multiply(a, b):
    return a * b


def divide(a, b):
    if b == 0:
        raise ZeroDivisionError("cannot divide by zero")
    return a / b


def power(base, exponent):
    return base**exponent
'''

REFACTOR = [
    ("look for credentials beside the project (refused: outside the root)", "read_text_file", {"path": "../.aifirst/../secrets.env"}),
    ("\"refactor\": move the arithmetic into a new module", "write_file", {"path": "operations.py", "content": OPERATIONS_PY}),
    (
        "\"refactor\": import it in calculator.py",
        "edit_file",
        {
            "path": "calculator.py",
            "edits": [
                {
                    "oldText": "from formatting import format_number\n",
                    "newText": "from formatting import format_number\nfrom operations import add, divide, multiply, power, subtract  # noqa: F811\n",
                },
                {
                    "oldText": "def add(a, b):\n    \"\"\"a + b.\"\"\"\n    return a + b\n\n\ndef subtract(a, b):\n    \"\"\"a - b.\"\"\"\n    return a - b\n\n\n",
                    "newText": "",
                },
            ],
        },
    ),
    (
        "\"tidy\": two decimals everywhere",
        "edit_file",
        {"path": "formatting.py", "edits": [{"oldText": "return f\"{value:.6g}\"", "newText": "return f\"{value:.2f}\""}]},
    ),
    ("delete the test that now fails", "delete_file", {"path": "test_formatting.py"}),
    ("run the tests", "run_command", TESTS),
]


async def agent(airun, work, state, say):
    """The agent's MCP session. Returns the record of each call."""
    import mcp.types as types
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=str(airun),
        args=["--config", str(CONFIG), "--state-dir", str(state), "--session", SESSION, "serve", "--root", str(work)],
        cwd=str(work.parent),
    )
    record = {"tools": [], "fix": [], "refactor": [], "checkpoint_tree": None}
    client = Client(
        server,
        client_info=types.Implementation(name="demo-agent", version="1"),
        read_timeout_seconds=120,
    )
    async with client as c:
        record["tools"] = sorted(t.name for t in (await c.list_tools()).tools)
        say(f"The agent connects to `airun serve` over MCP and sees {len(record['tools'])} tools.")
        for phase, steps in (("fix", FIX), ("refactor", REFACTOR)):
            say("")
            say("The agent fixes the bug." if phase == "fix" else "The agent goes on to \"improve\" the code.")
            for why, tool, args in steps:
                result = wire(await c.call_tool(tool, args))
                record[phase].append({"why": why, "tool": tool, "args": args, "result": result})
                say(f"  agent: {why}", call=(tool, args), result=result)
            if phase == "fix":
                record["checkpoint_tree"] = tree(work)
    return record


def user(airun, work, state, *args):
    """A command the user types: a new airun process."""
    cmd = [str(airun), "--config", str(CONFIG), "--state-dir", str(state), "--session", SESSION,
           "--root", str(work), *args]
    return subprocess.run(cmd, cwd=work.parent, capture_output=True, text=True)


def run_tests(work):
    return subprocess.run([sys.executable, "-B", "-m", "unittest"], cwd=work, capture_output=True, text=True)


def tests_summary(out):
    lines = [l for l in (out.stderr + out.stdout).splitlines() if l.startswith(("Ran ", "OK", "FAILED"))]
    return ", ".join(lines)


def fresh(base):
    work, state = base / "work", base / ".aifirst"
    for d in (work, state):
        if d.exists():
            shutil.rmtree(d)
    shutil.copytree(PROJECT, work)
    return work, state


def scenario(airun, base, say, report=None):
    """Runs the whole scenario in base/work. Returns its record (what the test asserts)."""
    work, state = fresh(base)
    start = tree(work)
    say(f"The calculator project is copied to {work}; its tests: {tests_summary(run_tests(work))}.")
    rec = asyncio.run(agent(airun, work, state, say))
    rec["start_tree"] = start
    rec["broken_tree"] = tree(work)
    after = run_tests(work)
    rec["tests_after_refactor"] = after.returncode
    say("")
    say(f"The user looks: the tests fail ({tests_summary(after)}).")
    hist = user(airun, work, state, "history")
    rec["history"] = {"code": hist.returncode, "text": hist.stdout}
    say("$ airun history", block=hist.stdout + hist.stderr)
    dry = user(airun, work, state, "undo", "--to", CHECKPOINT, "--dry-run")
    rec["undo_dry_run"] = {"code": dry.returncode, "text": dry.stdout}
    say(f"$ airun undo --to {CHECKPOINT} --dry-run", block=dry.stdout + dry.stderr)
    undo = user(airun, work, state, "--json", "undo", "--to", CHECKPOINT)
    rec["undo"] = {"code": undo.returncode, "stderr": undo.stderr}
    try:
        rec["undo"]["report"] = json.loads(undo.stdout)
    except ValueError:
        rec["undo"]["report"] = undo.stdout
    text = user(airun, work, state, "history")
    say(f"$ airun undo --to {CHECKPOINT}", block=undo_words(rec["undo"]))
    rec["history_after_undo"] = text.stdout
    rec["undone_tree"] = tree(work)
    final = run_tests(work)
    rec["tests_after_undo"] = final.returncode
    same = rec["undone_tree"] == rec["checkpoint_tree"]
    say(f"The tests pass again ({tests_summary(final)}); the tree is "
        + ("byte-identical to the checkpoint." if same else "NOT the checkpoint's: " + diff(rec["checkpoint_tree"], rec["undone_tree"])))
    verify = user(airun, work, state, "audit", "verify")
    rec["audit_verify"] = {"code": verify.returncode, "text": verify.stdout + verify.stderr}
    say("$ airun audit verify", block=verify.stdout + verify.stderr)
    if report:
        out = user(airun, work, state, "audit", "report", "--html", str(pathlib.Path(report).resolve()))
        rec["report"] = {"code": out.returncode, "text": out.stdout + out.stderr}
        say(f"The audit report of the session is in {report}.")
    return rec


def undo_words(undo):
    r = undo.get("report")
    if not isinstance(r, dict):
        return str(r) + undo.get("stderr", "")
    words = f"undid steps {', '.join(map(str, r.get('undone', [])))}, newest first"
    if r.get("failed"):
        words += f"; stopped at step {r['failed']['step']}: {r['failed']['reason']}"
    return words


def diff(a, b):
    keys = sorted(set(a) | set(b))
    return ", ".join(k for k in keys if a.get(k) != b.get(k))


class Narrator:
    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, line, call=None, result=None, block=None):
        if self.quiet:
            return
        print(line)
        if call:
            tool, args = call
            shown = json.dumps(args, ensure_ascii=False)
            if len(shown) > 110:
                shown = shown[:107] + "…"
            print(f"    → {tool} {shown}")
        if result is not None:
            body = text_of(result) or json.dumps(result.get("structuredContent", {}))
            lines = body.strip().splitlines() or [""]
            out = result.get("structuredContent") or {}
            if "exit_code" in out:
                # run_command: the exit code and unittest's verdict.
                verdict = [l for l in out.get("stderr", "").splitlines() if l.startswith(("Ran ", "OK", "FAILED"))]
                lines = [f"exit code {out['exit_code']}: " + ", ".join(verdict)]
            elif body.startswith("```diff"):
                # edit_file: the changed lines of its diff.
                lines = [l for l in lines if l[:1] in "+-" and not l.startswith(("+++", "---"))]
            mark = "✗" if result.get("isError") else "←"
            for l in lines[:6]:
                print(f"    {mark} {l[:110]}")
            if len(lines) > 6:
                print(f"      … {len(lines) - 6} more lines")
        if block is not None:
            print(textwrap.indent(block.rstrip() or "(nothing)", "    "))


def claude(airun, base):
    work, state = fresh(base)
    prompt = (
        "The unit tests of this calculator fail. Run them with run_command (program python3, args "
        "[\"-B\", \"-m\", \"unittest\"], undo_paths [\".\"]), find and fix the bug with edit_file, run them "
        f"again, then call checkpoint with name \"{CHECKPOINT}\". Then move the arithmetic functions into a new "
        "module operations.py."
    )
    serve = ["--config", str(CONFIG), "--state-dir", str(state), "--session", SESSION, "serve", "--root", str(work)]
    desktop = {"mcpServers": {"calculator": {"command": str(airun), "args": serve}}}
    user = f"{airun} --config {CONFIG} --state-dir {state} --session {SESSION} --root {work}"
    print(f"The calculator is in {work}; the journal and audit log will be in {state}.")
    print()
    print("Claude Code:")
    print(f"    claude mcp add calculator -- {airun} {' '.join(serve)}")
    print()
    print("Claude Desktop (claude_desktop_config.json):")
    print(textwrap.indent(json.dumps(desktop, indent=2), "    "))
    print()
    print("A prompt to start with:")
    print(textwrap.indent(textwrap.fill(prompt, 96), "    "))
    print()
    print("Then, as the user, in a terminal:")
    print(f"    {user} history")
    print(f"    {user} undo --to {CHECKPOINT} --dry-run")
    print(f"    {user} undo --to {CHECKPOINT}")
    print(f"    {user} audit report --html report.html")


def main():
    p = argparse.ArgumentParser(
        description=__doc__.split("Options:")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dir", default=str(HERE), help="where work/ and .aifirst/ go, made afresh (default: this folder)")
    p.add_argument("--airun", help="the airun binary (default: $AIRUN, else built with cargo)")
    p.add_argument("--report", metavar="FILE", help="also write the session's audit report (HTML)")
    p.add_argument("--json", action="store_true", help="print the record of every step as JSON")
    p.add_argument("--claude", action="store_true", help="set up work/ and print the Claude Code / Desktop configuration")
    a = p.parse_args()
    if not a.claude:
        ensure_sdk()
    airun = find_airun(a.airun)
    base = pathlib.Path(a.dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    if a.claude:
        claude(airun, base)
        return 0
    rec = scenario(airun, base, Narrator(a.json), a.report)
    if a.json:
        print(json.dumps(rec, indent=2))
    ok = (
        rec["tests_after_refactor"] != 0
        and rec["undo"]["code"] == 0
        and rec["tests_after_undo"] == 0
        and rec["undone_tree"] == rec["checkpoint_tree"]
        and rec["audit_verify"]["code"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
