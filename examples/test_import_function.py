"""The Smart Importer demo: a Python module becomes undoable tools, in one command.

    python3 examples/test_import_function.py        # from the repository root; also runs under pytest

1. `forge inspect` reads examples/python-tools/tools.py without running it and prints the tools it yields,
   with the effects and undo plans inferred from the code.
2. `forge import` writes a crate for it, which cargo builds (the first build takes a few minutes).
3. The crate's binary calls the functions in a scratch directory — each call its own process, journaled,
   snapshotted and audited — and undoes them; the directory ends byte-identical to how it started.
4. The one function forge could not plan exactly (it moves the list into a folder derived from its path)
   is refused until the user allows it.
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent
MODULE = REPO / "examples" / "python-tools" / "tools.py"


def say(text):
    print(f"\n== {text}", flush=True)


def run(cmd, cwd=None, env=None, check=True):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}")
    return out


def tree(root):
    """Every file under root with the SHA-256 of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# FORGE names a built forge binary and CARGO_TARGET_DIR where the demo crate builds (the tests set
# both); by default forge runs through cargo and the crate shares this checkout's target directory.
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def forge(*args):
    if os.environ.get("FORGE"):
        return run([os.environ["FORGE"], *map(str, args)], cwd=REPO, check=False)
    return run(["cargo", "run", "-q", "-p", "aifirst-forge", "--", *map(str, args)], cwd=REPO, check=False)


def test_import_function():
    say("forge inspect: the tools a model would get, read from the code without running it")
    shown = forge("inspect", MODULE)
    print(shown.stdout.rstrip())
    assert shown.returncode in (0, 1), shown.stderr
    ir = json.loads(forge("inspect", MODULE, "--format", "json").stdout)
    plans = {c["name"]: c["undo"]["kind"] for c in ir["capabilities"]}
    assert plans["list_todos"] == "none", plans
    assert plans["add_todo"] == "file_snapshot", plans
    assert plans["archive_list"] == "irreversible", plans

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        crate = tmp / "todo"
        say(f"forge import: a crate in {crate}")
        out = forge("import", MODULE, "-o", crate, "--name", "todo", "--runtime-path", REPO)
        assert out.returncode == 0, out.stderr
        print(out.stdout.rstrip() or out.stderr.rstrip())
        say("cargo build (dependencies are shared with this checkout's target directory)")
        env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
        run(["cargo", "build", "-q", "--offline"], cwd=crate, env=env)
        binary = TARGET / "debug" / "todo"

        lists = tmp / "lists"
        lists.mkdir()
        (lists / "home.json").write_text('[{"title": "bread", "done": false, "priority": "low"}]\n')
        before = tree(lists)
        state = tmp / "state"

        def todo(*args, check=True):
            return run([binary, "--root", lists, "--state-dir", state, *map(str, args)], check=check)

        def call(name, **args):
            out = todo("call", name, "--args", json.dumps(args), "--json")
            print(f"  {name}({', '.join(f'{k}={v!r}' for k, v in args.items())}) -> {out.stdout.strip()}")
            return json.loads(out.stdout)

        say("the agent works on the lists: each call is its own process")
        home = str(lists / "home.json")
        assert call("add_todo", path=home, title="milk", priority="high") == 2
        assert call("add_todo", path=str(lists / "work.json"), title="report") == 1
        assert call("complete_todo", path=home, title="bread") is True
        titles = [t["title"] for t in call("list_todos", path=home, only_open=True)]
        assert titles == ["milk"], titles

        say("archive_list cannot be undone exactly, so it is refused until the user allows it")
        refused = todo("call", "archive_list", "--args", json.dumps({"path": home}), check=False)
        print("  " + (refused.stderr.strip() or refused.stdout.strip()).splitlines()[0])
        assert refused.returncode != 0
        assert (lists / "home.json").exists()

        say("history, then undo every change from a new process")
        print(todo("history").stdout.rstrip())
        print(todo("undo", "3").stdout.rstrip())
        assert tree(lists) == before, "the lists are byte-identical to how they started"
        assert not (lists / "work.json").exists()
        say("the lists are byte-identical to how they started; the audit chain is intact")
        print(todo("audit", "verify").stdout.rstrip())


if __name__ == "__main__":
    test_import_function()
    print("\nok")
    sys.exit(0)
