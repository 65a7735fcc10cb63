//! `airun serve --root` driven by the official Python MCP SDK over stdio: the official
//! filesystem server's tool set with accurate annotations, every mutating tool undone and redone
//! through the meta tools and undone again from a new process, roots a client offers narrowing
//! the configured ones, and bad arguments answered as tool errors while the server keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

mod common;
use common::{python, tree};

const BIN: &str = env!("CARGO_BIN_EXE_airun");

/// Runs the SDK script with a plan; returns what it printed.
fn session(
    dir: &Path,
    root: &Path,
    mode: &str,
    roots: Option<Vec<PathBuf>>,
    calls: Value,
) -> Value {
    let plan = json!({
        "command": [BIN, "serve", "--root", root, "--state-dir", dir.join("state")],
        "cwd": dir,
        "mode": mode,
        "roots": roots,
        "calls": calls,
    });
    let plan_file = dir.join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fs_session.py"))
        .arg(&plan_file)
        .current_dir(dir)
        .env_remove("AIFIRST_ROOTS")
        .env_remove("AIFIRST_STATE_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(
        root.join("docs/guide.md"),
        "# Guide\n\nstep one\nstep two\n",
    )
    .unwrap();
    std::fs::write(
        root.join("logo.png"),
        [0x89, b'P', b'N', b'G', 0, 1, 2, 255],
    )
    .unwrap();
    (dir, root)
}

#[test]
fn the_official_tool_set_with_accurate_annotations() {
    let (dir, root) = setup();
    let s = session(dir.path(), &root, "auto", None, json!([]));
    let tools = s["tools"].as_object().unwrap();
    let official = [
        "read_text_file",
        "read_media_file",
        "read_multiple_files",
        "write_file",
        "edit_file",
        "create_directory",
        "list_directory",
        "list_directory_with_sizes",
        "directory_tree",
        "move_file",
        "search_files",
        "get_file_info",
        "list_allowed_directories",
    ];
    let ours = [
        "delete_file",
        "copy_file",
        "append_file",
        "search_file_contents",
    ];
    for name in official.iter().chain(&ours) {
        let t = tools.get(*name).unwrap_or_else(|| panic!("no tool {name}"));
        assert_eq!(t["annotations"]["openWorldHint"], false, "{name}");
    }
    for name in [
        "read_text_file",
        "list_directory",
        "search_files",
        "get_file_info",
        "search_file_contents",
    ] {
        assert_eq!(tools[name]["annotations"]["readOnlyHint"], true, "{name}");
    }
    // move_file loses nothing (the official server marks it not destructive).
    assert_eq!(tools["move_file"]["annotations"]["destructiveHint"], false);
    for name in ["write_file", "edit_file", "delete_file"] {
        assert_eq!(tools[name]["annotations"]["readOnlyHint"], false, "{name}");
        assert_eq!(
            tools[name]["annotations"]["destructiveHint"], true,
            "{name}"
        );
    }
    assert_eq!(
        tools["create_directory"]["annotations"]["destructiveHint"],
        false
    );
    assert_eq!(
        tools["create_directory"]["annotations"]["idempotentHint"],
        true
    );
    // The official argument names.
    let props = |t: &str| {
        tools[t]["inputSchema"]["properties"]
            .as_object()
            .unwrap()
            .clone()
    };
    assert!(props("edit_file").contains_key("dryRun"));
    assert!(props("directory_tree").contains_key("excludePatterns"));
    assert!(props("list_directory_with_sizes").contains_key("sortBy"));
    assert!(
        props("move_file").contains_key("source") && props("move_file").contains_key("destination")
    );
    assert!(tools.contains_key("undo") && tools.contains_key("redo"));
}

#[test]
fn every_change_undone_and_redone_over_mcp_then_undone_from_a_new_process() {
    let (dir, root) = setup();
    let before = tree(&root);
    let p = |rel: &str| root.join(rel).display().to_string();
    let calls = json!([
        ["write_file", {"path": p("notes.txt"), "content": "new\n"}],
        ["edit_file", {"path": p("docs/guide.md"), "edits": [{"oldText": "step two", "newText": "step 2"}]}],
        ["create_directory", {"path": p("build/out")}],
        ["copy_file", {"source": p("logo.png"), "destination": p("build/logo.png")}],
        ["move_file", {"source": p("notes.txt"), "destination": p("build/notes.txt")}],
        ["append_file", {"path": p("docs/guide.md"), "content": "step three\n"}],
        ["delete_file", {"path": p("logo.png")}],
        ["write_file", {"path": p("../escape.txt"), "content": "no"}],
        ["edit_file", {"path": p("docs/guide.md"), "edits": [{"oldText": "stpe one", "newText": "x"}]}],
        ["read_text_file", {"path": p("docs/guide.md")}],
        ["undo", {"steps": 7, "dry_run": true}],
        ["undo", {"steps": 7}],
        ["read_text_file", {"path": p("docs/guide.md")}],
        ["redo", {"steps": 7}],
        ["read_text_file", {"path": p("docs/guide.md")}],
        ["read_media_file", {"path": p("build/logo.png")}],
    ]);
    let s = session(dir.path(), &root, "auto", None, calls);
    let r = s["results"].as_array().unwrap();
    for (i, res) in r.iter().enumerate().take(7) {
        assert_ne!(res["isError"], true, "call {i}: {res}");
    }
    let edit_diff = text(&r[1]);
    assert!(
        edit_diff.contains("-step two") && edit_diff.contains("+step 2"),
        "{edit_diff}"
    );
    // Bad arguments: tool errors with a reason, and the server kept serving.
    assert_eq!(r[7]["isError"], true);
    assert!(
        text(&r[7]).contains("outside the allowed roots"),
        "{}",
        r[7]
    );
    assert_eq!(r[8]["isError"], true);
    assert!(
        text(&r[8]).contains("line 3") && text(&r[8]).contains("step one"),
        "the closest near-match is named with its line: {}",
        r[8]
    );
    assert!(text(&r[9]).contains("step three"));
    // The dry run listed files and changed nothing (the read after it would differ otherwise).
    let planned = r[10]["structuredContent"]["planned"].as_array().unwrap();
    assert_eq!(planned.len(), 7, "{}", r[10]);
    assert!(planned.iter().any(|p| p["files"][0]["action"] == "remove"));
    assert_eq!(
        r[11]["structuredContent"]["undone"]
            .as_array()
            .unwrap()
            .len(),
        7,
        "{}",
        r[11]
    );
    assert_eq!(text(&r[12]), "# Guide\n\nstep one\nstep two\n");
    assert_eq!(
        r[13]["structuredContent"]["redone"]
            .as_array()
            .unwrap()
            .len(),
        7,
        "{}",
        r[13]
    );
    assert!(text(&r[14]).contains("step 2\nstep three"));
    // An image comes back as an image block a client can show.
    assert_eq!(r[15]["content"][0]["type"], "image", "{}", r[15]);
    assert_eq!(r[15]["content"][0]["mimeType"], "image/png");
    assert_eq!(r[15]["content"][0]["data"], "iVBORwABAv8=");
    // A new process undoes what the redo re-applied.
    let out = Command::new(BIN)
        .args(["--root"])
        .arg(&root)
        .args(["--state-dir"])
        .arg(dir.path().join("state"))
        .args(["undo", "7"])
        .current_dir(dir.path())
        .env_remove("AIFIRST_ROOTS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&root), before);
    assert!(!dir.path().join("escape.txt").exists());
}

#[test]
fn roots_a_client_offers_narrow_the_configured_ones() {
    let (dir, root) = setup();
    let p = |rel: &str| root.join(rel).display().to_string();
    let calls = json!([
        ["list_allowed_directories", {}],
        ["write_file", {"path": p("docs/inside.md"), "content": "ok\n"}],
        ["write_file", {"path": p("top.md"), "content": "no\n"}],
    ]);
    // The client offers root/docs and a directory outside every root.
    let roots = vec![root.join("docs"), PathBuf::from("/usr")];
    let s = session(dir.path(), &root, "legacy", Some(roots), calls);
    let r = s["results"].as_array().unwrap();
    let listed = text(&r[0]);
    assert!(
        listed.contains("docs") && !listed.contains("/usr"),
        "{listed}"
    );
    assert_ne!(r[1]["isError"], true, "{}", r[1]);
    assert_eq!(r[2]["isError"], true, "{}", r[2]);
    assert!(root.join("docs/inside.md").exists());
    assert!(!root.join("top.md").exists());
}
