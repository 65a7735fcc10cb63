"""The hero scenario (examples/demo-calculator), asserted step by step.

    AIRUN=target/debug/airun target/venv/bin/python -m pytest tests/test_hero_scenario.py

`cargo test` runs it (airun/tests/hero.rs) with the airun it built. An agent, over MCP with the
official Python SDK, reads the calculator, runs its failing tests, fixes the bug, sets a
checkpoint, then makes a bad "refactor"; the user undoes back to the checkpoint from a new
process. Also checks examples/sample_audit_report.html is what the scenario produces today (apart
from times and ids) and renders it in headless Chromium.
"""

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo-calculator" / "demo.py"
SAMPLE = REPO / "examples" / "sample_audit_report.html"


def load_demo():
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


@pytest.fixture(scope="module")
def demo():
    return load_demo()


@pytest.fixture(scope="module")
def airun():
    path = os.environ.get("AIRUN")
    assert path, "set AIRUN to the airun binary (cargo test does: airun/tests/hero.rs)"
    assert pathlib.Path(path).is_file(), path
    return pathlib.Path(path).resolve()


@pytest.fixture(scope="module")
def run(demo, airun, tmp_path_factory):
    base = tmp_path_factory.mktemp("hero")
    report = base / "report.html"
    said = []
    rec = demo.scenario(airun, base, lambda line, **kw: said.append(line), report=report)
    rec["said"] = said
    rec["base"] = base
    rec["report_path"] = report
    return rec


def structured(result):
    assert not result.get("isError"), result
    return result.get("structuredContent") or {}


def test_the_agent_sees_the_stdlib_and_the_undo_tools(run):
    for tool in ("read_text_file", "edit_file", "write_file", "delete_file", "run_command", "undo", "history", "checkpoint"):
        assert tool in run["tools"], run["tools"]


def test_the_agent_finds_and_fixes_the_bug(run, demo):
    steps = run["fix"]
    assert [s["tool"] for s in steps] == [
        "list_directory", "read_text_file", "run_command", "edit_file", "run_command", "checkpoint",
    ]
    assert "[FILE] calculator.py" in demo.text_of(steps[0]["result"])
    assert "return a // b" in demo.text_of(steps[1]["result"])
    first = structured(steps[2]["result"])
    assert first["exit_code"] == 1, first
    assert "FAILED (failures=3)" in first["stderr"], first["stderr"]
    diff = demo.text_of(steps[3]["result"])
    assert "-    return a // b" in diff and "+    return a / b" in diff, diff
    second = structured(steps[4]["result"])
    assert second["exit_code"] == 0, second
    assert "OK" in second["stderr"], second["stderr"]
    cp = structured(steps[5]["result"])
    assert cp == {"checkpoint": "fixed", "after_step": 3}, cp


def test_only_the_bug_line_changed_up_to_the_checkpoint(run):
    start, cp = run["start_tree"], run["checkpoint_tree"]
    assert set(start) == set(cp)
    assert [k for k in start if start[k] != cp[k]] == ["calculator.py"]


def test_a_path_outside_the_root_is_refused(run, demo):
    first = run["refactor"][0]
    assert first["tool"] == "read_text_file" and first["result"].get("isError"), first
    assert "outside" in demo.text_of(first["result"]), first


def test_the_refactor_breaks_the_tests(run):
    for s in run["refactor"][1:-1]:
        assert not s["result"].get("isError"), s
    last = structured(run["refactor"][-1]["result"])
    assert last["exit_code"] != 0, last
    assert run["tests_after_refactor"] != 0
    broken = run["broken_tree"]
    assert "operations.py" in broken and "test_formatting.py" not in broken
    assert broken["formatting.py"] != run["checkpoint_tree"]["formatting.py"]


def test_history_shows_each_call(run):
    assert run["history"]["code"] == 0, run["history"]
    text = run["history"]["text"]
    # Eight journaled steps: reads are audited but not journaled (nothing to undo).
    steps = [l.split() for l in text.splitlines()[1:] if l.strip()]
    assert [s[2] for s in steps] == [
        "run_command", "edit_file", "run_command", "write_file",
        "edit_file", "edit_file", "delete_file", "run_command",
    ], text
    assert all(s[1] == "done" for s in steps), text


def test_the_dry_run_lists_without_touching(run):
    assert run["undo_dry_run"]["code"] == 0, run["undo_dry_run"]
    text = run["undo_dry_run"]["text"]
    assert "test_formatting.py" in text and "operations.py" in text, text


def test_undo_to_the_checkpoint_restores_the_tree_byte_for_byte(run):
    undo = run["undo"]
    assert undo["code"] == 0, undo
    report = undo["report"]
    assert isinstance(report, dict), report
    # Five steps after the checkpoint: write, two edits, a delete and a test run.
    assert len(report["undone"]) == 5, report
    assert report["failed"] is None, report
    assert run["undone_tree"] == run["checkpoint_tree"]
    assert run["undone_tree"] != run["broken_tree"]
    assert run["tests_after_undo"] == 0


def test_history_after_undo_marks_the_steps_undone(run):
    assert "undone" in run["history_after_undo"], run["history_after_undo"]


def test_the_audit_log_verifies(run):
    v = run["audit_verify"]
    assert v["code"] == 0, v
    assert "intact" in v["text"], v


def normalize(html):
    """The report without what changes from run to run: times, ids, hashes and the timeline."""
    html = re.sub(r"<svg id=timeline.*?</svg>", "<svg/>", html, flags=re.S)
    html = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", "TIME", html)
    html = re.sub(r"\b[0-9a-f]{16,}\b", "HASH", html)
    html = re.sub(r"\b\d+(\.\d+)? ?ms\b", "N ms", html)
    return html


def test_the_sample_audit_report_is_what_the_scenario_produces(run):
    assert run["report"]["code"] == 0, run["report"]
    # The sample was made in /tmp/demo-calculator (see the message below); paths in error
    # messages name it.
    produced = run["report_path"].read_text().replace(str(run["base"]), "/tmp/demo-calculator")
    committed = SAMPLE.read_text()
    assert normalize(produced) == normalize(committed), (
        "examples/sample_audit_report.html is stale: regenerate it with "
        "`python3 examples/demo-calculator/demo.py --dir /tmp/demo-calculator "
        "--report examples/sample_audit_report.html`"
    )


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is needed for this test: `bash .ci/setup` installs it")


def test_the_report_renders_in_chromium(run, tmp_path):
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = run["report_path"].as_uri()
    dom = subprocess.run([chromium(), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert "AI-First Runtime: audit report" in dom.stdout, dom.stderr
    assert "hash chain verified" in dom.stdout
    for tool in ("edit_file", "delete_file", "run_command"):
        assert tool in dom.stdout
    shot = tmp_path / "report.png"
    out = subprocess.run(
        [chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,1400", url],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert shot.stat().st_size > 10_000, "a real picture"


def test_the_claude_mode_sets_up_work_and_prints_the_configuration(airun, tmp_path):
    import sys

    out = subprocess.run(
        [sys.executable, str(DEMO), "--claude", "--airun", str(airun), "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"claude mcp add calculator -- {airun}" in out.stdout, out.stdout
    assert '"mcpServers"' in out.stdout and "undo --to fixed" in out.stdout
    assert (tmp_path / "work" / "calculator.py").read_text() == (DEMO.parent / "project" / "calculator.py").read_text()
