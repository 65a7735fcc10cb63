//! The file tools end to end, called through the registry as a server calls them: formats the
//! official MCP filesystem server's clients expect, edits, searches, and the sandbox — no path,
//! `..`, link, NUL byte or FIFO gets a tool outside the allowed root or stuck.

#![cfg(feature = "fs")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::PathBuf;
use std::sync::Arc;

use aifirst::{Ctx, Registry, Sandbox, ToolError, Value};
use aifirst_stdlib as _;
use serde_json::json;

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    ctx: Ctx,
    registry: Registry,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret\n").unwrap();
    let ctx = ctx_for(&root);
    Bench {
        _dir: dir,
        root,
        outside,
        ctx,
        registry: Registry::new().unwrap(),
    }
}

fn ctx_for(root: &std::path::Path) -> Ctx {
    Ctx::with_sandbox(Arc::new(
        Sandbox::new().with_roots(&[root.to_path_buf()]).unwrap(),
    ))
}

impl Bench {
    async fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        let def = self
            .registry
            .get(tool)
            .unwrap_or_else(|| panic!("`{tool}` is not registered"));
        def.invoke(&self.ctx, args).await
    }

    async fn text(&self, tool: &str, args: Value) -> String {
        match self.call(tool, args.clone()).await {
            Ok(Value::String(s)) => s,
            other => panic!("{tool} {args}: {other:?}"),
        }
    }

    async fn err(&self, tool: &str, args: Value) -> ToolError {
        match self.call(tool, args.clone()).await {
            Err(e) => e,
            Ok(v) => panic!("{tool} {args} succeeded: {v}"),
        }
    }

    /// Writes a file below the root (parents created), bypassing the tools.
    fn put(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// The absolute path of `rel`, as the tools show it.
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }
}

fn not_allowed(e: &ToolError) -> bool {
    matches!(e, ToolError::NotAllowed { .. })
}

fn invalid(e: &ToolError) -> bool {
    matches!(e, ToolError::InvalidArguments { .. })
}

#[test]
fn every_tool_is_registered_with_the_official_names_and_arguments() {
    let registry = Registry::new().unwrap();
    for name in [
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
        "delete_file",
        "copy_file",
        "append_file",
        "search_file_contents",
    ] {
        assert!(registry.get(name).is_some(), "{name} is missing");
    }
    let props = |tool: &str| {
        let schema = registry.get(tool).unwrap().input_schema();
        let v = serde_json::to_value(&schema).unwrap();
        v["properties"].as_object().cloned().unwrap_or_default()
    };
    assert!(props("edit_file").contains_key("dryRun"));
    assert!(props("directory_tree").contains_key("excludePatterns"));
    assert!(props("search_files").contains_key("excludePatterns"));
    assert!(props("list_directory_with_sizes").contains_key("sortBy"));
    let edit_schema =
        serde_json::to_string(&registry.get("edit_file").unwrap().input_schema()).unwrap();
    assert!(
        edit_schema.contains("\"oldText\"") && edit_schema.contains("\"newText\""),
        "{edit_schema}"
    );
    // Read-only tools say so; writing ones do not; nothing reaches the network.
    let read = registry.get("read_text_file").unwrap().annotations();
    assert_eq!(read.read_only_hint, Some(true));
    assert_eq!(read.open_world_hint, Some(false));
    let write = registry.get("write_file").unwrap().annotations();
    assert_eq!(write.read_only_hint, Some(false));
    assert_eq!(write.destructive_hint, Some(true));
    assert_eq!(write.idempotent_hint, Some(true));
    let mkdir = registry.get("create_directory").unwrap().annotations();
    assert_eq!(mkdir.destructive_hint, Some(false));
    assert_eq!(mkdir.idempotent_hint, Some(true));
    let mv = registry.get("move_file").unwrap().annotations();
    assert_eq!(mv.destructive_hint, Some(false));
}

// ---- edit_file

#[tokio::test]
async fn edit_file_exact_then_whitespace_flexible_and_dry_run_changes_nothing() {
    let b = bench();
    let original = "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n";
    b.put("a.rs", original);

    let preview = b
        .text(
            "edit_file",
            json!({"path": "a.rs", "edits": [{"oldText": "let x = 1;", "newText": "let x = 2;"}], "dryRun": true}),
        )
        .await;
    assert!(preview.starts_with("```diff\n"), "{preview}");
    assert!(preview.ends_with("```\n\n"), "{preview}");
    assert!(
        preview.contains(&format!("Index: {}", b.p("a.rs"))),
        "{preview}"
    );
    assert!(preview.contains("-    let x = 1;\n"), "{preview}");
    assert!(preview.contains("+    let x = 2;\n"), "{preview}");
    assert_eq!(b.read("a.rs"), original, "a dry run changes nothing");

    let done = b
        .text(
            "edit_file",
            json!({"path": b.p("a.rs"), "edits": [{"oldText": "let x = 1;", "newText": "let x = 2;"}]}),
        )
        .await;
    assert_eq!(done, preview);
    assert_eq!(
        b.read("a.rs"),
        "fn main() {\n    let x = 2;\n    println!(\"{x}\");\n}\n"
    );

    // No exact match (the indentation differs): matched line by line, re-indented.
    b.text(
        "edit_file",
        json!({"path": "a.rs", "edits": [{
            "oldText": "let x = 2;\nprintln!(\"{x}\");",
            "newText": "let y = 3;\nprintln!(\"{y}\");"
        }]}),
    )
    .await;
    assert_eq!(
        b.read("a.rs"),
        "fn main() {\n    let y = 3;\n    println!(\"{y}\");\n}\n"
    );
}

#[tokio::test]
async fn edit_file_keeps_crlf_line_ends() {
    let b = bench();
    b.put("w.txt", "one\r\ntwo\r\nthree\r\n");
    b.text(
        "edit_file",
        json!({"path": "w.txt", "edits": [{"oldText": "two\nthree", "newText": "2\n3"}]}),
    )
    .await;
    assert_eq!(b.read("w.txt"), "one\r\n2\r\n3\r\n");
}

#[tokio::test]
async fn edit_file_that_matches_nothing_names_the_closest_line_and_writes_nothing() {
    let b = bench();
    let original = "alpha\nbeta\ngamma = compute(1, 2);\ndelta\n";
    b.put("c.txt", original);
    let e = b
        .err(
            "edit_file",
            json!({"path": "c.txt", "edits": [
                {"oldText": "alpha", "newText": "ALPHA"},
                {"oldText": "gamma = compute(1, 3);", "newText": "x"}
            ]}),
        )
        .await;
    let m = e.to_string();
    assert!(m.contains("edit 2 of 2"), "{m}");
    assert!(m.contains("line 3"), "{m}");
    assert!(m.contains("gamma = compute(1, 2);"), "{m}");
    assert_eq!(
        b.read("c.txt"),
        original,
        "the first edit is not written either"
    );
}

#[tokio::test]
async fn edit_file_that_matches_twice_asks_for_more_context() {
    let b = bench();
    b.put("d.txt", "x = 1\ny = 2\nx = 1\n");
    let e = b
        .err(
            "edit_file",
            json!({"path": "d.txt", "edits": [{"oldText": "x = 1", "newText": "x = 9"}]}),
        )
        .await;
    let m = e.to_string();
    assert!(m.contains("2 times"), "{m}");
    assert!(m.contains("lines 1, 3"), "{m}");
    assert_eq!(b.read("d.txt"), "x = 1\ny = 2\nx = 1\n");
    // With context it is unique.
    b.text(
        "edit_file",
        json!({"path": "d.txt", "edits": [{"oldText": "y = 2\nx = 1", "newText": "y = 2\nx = 9"}]}),
    )
    .await;
    assert_eq!(b.read("d.txt"), "x = 1\ny = 2\nx = 9\n");
}

// ---- reading

#[tokio::test]
async fn read_text_file_whole_head_and_tail() {
    let b = bench();
    // Latin-1 text is not called binary: the message says what it probably is.
    b.put("latin1.txt", b"caf\xe9 cr\xe8me\n");
    let e = b.err("read_text_file", json!({"path": "latin1.txt"})).await;
    assert!(
        e.to_string().contains("another encoding, such as Latin-1"),
        "{e}"
    );
    b.put("bin.dat", [0x7fu8, b'E', b'L', b'F', 2, 1, 1, 0xff, 0xfe]);
    let e = b.err("read_text_file", json!({"path": "bin.dat"})).await;
    assert!(e.to_string().contains("binary file"), "{e}");
    b.put("l.txt", "l1\nl2\nl3\nl4\nl5\n");
    assert_eq!(
        b.text("read_text_file", json!({"path": "l.txt"})).await,
        "l1\nl2\nl3\nl4\nl5\n"
    );
    assert_eq!(
        b.text("read_text_file", json!({"path": "l.txt", "head": 2}))
            .await,
        "l1\nl2"
    );
    assert_eq!(
        b.text("read_text_file", json!({"path": "l.txt", "tail": 2}))
            .await,
        "l4\nl5"
    );
    assert_eq!(
        b.text("read_text_file", json!({"path": "l.txt", "head": 99}))
            .await,
        "l1\nl2\nl3\nl4\nl5"
    );
    let both = b
        .err(
            "read_text_file",
            json!({"path": "l.txt", "head": 1, "tail": 1}),
        )
        .await;
    assert!(invalid(&both), "{both:?}");

    // A tail longer than one read-back chunk, and a file without a final line end.
    let long: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
    b.put("long.txt", format!("{long}last"));
    assert_eq!(
        b.text("read_text_file", json!({"path": "long.txt", "tail": 3}))
            .await,
        "line 49998\nline 49999\nlast"
    );
    assert_eq!(
        b.text("read_text_file", json!({"path": "long.txt", "head": 1}))
            .await,
        "line 0"
    );

    // Binary content points to read_media_file.
    b.put("bin.dat", [0u8, 159, 146, 150]);
    let e = b.err("read_text_file", json!({"path": "bin.dat"})).await;
    assert!(e.to_string().contains("read_media_file"), "{e}");
}

#[tokio::test]
async fn read_media_file_returns_base64_and_mime_type() {
    let b = bench();
    b.put("p.png", [0x89u8, 0x50, 0x4E, 0x47]);
    let v = b
        .call("read_media_file", json!({"path": "p.png"}))
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"type": "image", "data": "iVBORw==", "mimeType": "image/png"})
    );
    b.put("s.flac", [1u8]);
    let v = b
        .call("read_media_file", json!({"path": "s.flac"}))
        .await
        .unwrap();
    assert_eq!(v["type"], "audio");
    assert_eq!(v["mimeType"], "audio/flac");
}

#[tokio::test]
async fn read_multiple_files_reports_each_failure_and_goes_on() {
    let b = bench();
    b.put("a.txt", "A");
    b.put("c.txt", "C");
    let out = b
        .text(
            "read_multiple_files",
            json!({"paths": ["a.txt", "nope.txt", b.p("c.txt")]}),
        )
        .await;
    let parts: Vec<&str> = out.split("\n---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert_eq!(parts[0], "a.txt:\nA\n");
    assert!(parts[1].starts_with("nope.txt: Error - "), "{out}");
    assert!(parts[1].contains("not found"), "{out}");
    assert_eq!(parts[2], format!("{}:\nC\n", b.p("c.txt")));
    let empty = b.err("read_multiple_files", json!({"paths": []})).await;
    assert!(invalid(&empty), "{empty:?}");
}

// ---- writing

#[tokio::test]
async fn write_append_and_create_directory() {
    let b = bench();
    let e = b
        .err("write_file", json!({"path": "new/x.txt", "content": "x"}))
        .await;
    assert!(
        e.to_string()
            .contains("new does not exist (create it first with create_directory)"),
        "{e}"
    );
    // A path ending in `/` names a directory: no file is made.
    let e = b
        .err("write_file", json!({"path": "trail/", "content": "x"}))
        .await;
    assert!(e.to_string().contains("names a directory"), "{e}");
    assert!(!b.root.join("trail").exists());
    assert_eq!(
        b.text("create_directory", json!({"path": "new/deeper"}))
            .await,
        "Successfully created directory new/deeper"
    );
    assert!(b.root.join("new/deeper").is_dir());
    // Idempotent.
    b.text("create_directory", json!({"path": "new/deeper"}))
        .await;
    assert_eq!(
        b.text(
            "write_file",
            json!({"path": "new/x.txt", "content": "one\n"})
        )
        .await,
        "Successfully wrote to new/x.txt"
    );
    b.text(
        "append_file",
        json!({"path": "new/x.txt", "content": "two\n"}),
    )
    .await;
    assert_eq!(b.read("new/x.txt"), "one\ntwo\n");
    let e = b
        .err("create_directory", json!({"path": "new/x.txt"}))
        .await;
    assert!(e.to_string().contains("not a directory"), "{e}");
    // A read-only file is refused by every tool that writes it, append_file too (a process
    // that may write anything, root, appended to it while write_file and edit_file refused).
    b.put("ro.txt", "kept\n");
    std::fs::set_permissions(
        b.root.join("ro.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .unwrap();
    for (tool, args) in [
        ("write_file", json!({"path": "ro.txt", "content": "x"})),
        ("append_file", json!({"path": "ro.txt", "content": "x"})),
        (
            "edit_file",
            json!({"path": "ro.txt", "edits": [{"oldText": "kept", "newText": "x"}]}),
        ),
    ] {
        let e = b.err(tool, args).await;
        assert!(
            not_allowed(&e) && e.to_string().contains("is read-only"),
            "{tool}: {e}"
        );
    }
    assert_eq!(b.read("ro.txt"), "kept\n");
}

// ---- listing

#[tokio::test]
async fn list_directory_formats_like_the_official_server() {
    let b = bench();
    b.put("b.txt", vec![b'x'; 2000]);
    b.put("a.txt", "0123456789");
    std::fs::create_dir(b.root.join("sub")).unwrap();
    assert_eq!(
        b.text("list_directory", json!({"path": b.p("")})).await,
        "[FILE] a.txt\n[FILE] b.txt\n[DIR] sub"
    );
    // An empty path is refused; "." is the first root.
    let e = b.err("list_directory", json!({"path": ""})).await;
    assert!(invalid(&e), "{e:?}");
    let sized = b
        .text(
            "list_directory_with_sizes",
            json!({"path": ".", "sortBy": "size"}),
        )
        .await;
    let lines: Vec<&str> = sized.lines().collect();
    assert!(lines[0].starts_with("[FILE] b.txt"), "{sized}");
    assert!(lines[0].ends_with("1.95 KB"), "{sized}");
    assert!(lines[1].starts_with("[FILE] a.txt"), "{sized}");
    assert!(lines[1].ends_with("10 B"), "{sized}");
    assert!(
        sized.contains("\nTotal: 2 files, 1 directories\n"),
        "{sized}"
    );
    assert!(sized.ends_with("Combined size: 1.96 KB"), "{sized}");
}

#[tokio::test]
async fn directory_tree_leaves_out_excluded_paths() {
    let b = bench();
    b.put("a/b/c.txt", "c");
    b.put("a/skip.log", "s");
    b.put("node_modules/x.js", "x");
    std::fs::create_dir(b.root.join("empty")).unwrap();
    let text = b
        .text(
            "directory_tree",
            json!({"path": ".", "excludePatterns": ["node_modules", "*.log"]}),
        )
        .await;
    let tree: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        tree,
        json!([
            {"name": "a", "type": "directory", "children": [
                {"name": "b", "type": "directory", "children": [
                    {"name": "c.txt", "type": "file"}
                ]}
            ]},
            {"name": "empty", "type": "directory", "children": []}
        ])
    );
    assert!(text.contains("\n  {"), "2-space indentation: {text}");
}

#[tokio::test]
async fn search_files_matches_names_at_any_depth_and_relative_paths() {
    let b = bench();
    for f in [
        "src/main.rs",
        "src/lib.rs",
        "src/deep/x.rs",
        "README.md",
        "node_modules/pkg/y.rs",
    ] {
        b.put(f, "");
    }
    let all = b
        .text(
            "search_files",
            json!({"path": ".", "pattern": "*.rs", "excludePatterns": ["node_modules"]}),
        )
        .await;
    assert_eq!(
        all,
        [b.p("src/deep/x.rs"), b.p("src/lib.rs"), b.p("src/main.rs")].join("\n")
    );
    let top = b
        .text("search_files", json!({"path": ".", "pattern": "src/*.rs"}))
        .await;
    assert_eq!(top, [b.p("src/lib.rs"), b.p("src/main.rs")].join("\n"));
    assert_eq!(
        b.text("search_files", json!({"path": ".", "pattern": "readme"}))
            .await,
        b.p("README.md")
    );
    assert_eq!(
        b.text("search_files", json!({"path": ".", "pattern": "*.zip"}))
            .await,
        "No matches found"
    );
}

#[tokio::test]
async fn search_file_contents_honours_ignore_files_hidden_and_binary() {
    let b = bench();
    b.put(".gitignore", "ignored/\n*.log\n!keep.log\n");
    b.put("src/a.rs", "fn needle() {}\nfn other() {}\n");
    b.put("src/.gitignore", "*.tmp\n");
    b.put("src/t.tmp", "needle\n");
    b.put("src/x.log", "needle\n");
    b.put("ignored/b.rs", "needle\n");
    b.put("c.log", "needle\n");
    b.put("keep.log", "needle\n");
    b.put(".hidden/d.rs", "needle\n");
    b.put("bin.dat", b"needle\x00\x00");
    let out = b
        .text(
            "search_file_contents",
            json!({"path": ".", "pattern": "needle"}),
        )
        .await;
    assert_eq!(
        out,
        format!(
            "{}:1: needle\n{}:1: fn needle() {{}}",
            b.p("keep.log"),
            b.p("src/a.rs")
        )
    );
    // A subdirectory still honours the ignore files above it.
    let sub = b
        .text(
            "search_file_contents",
            json!({"path": "src", "pattern": "NEEDLE", "case_sensitive": false}),
        )
        .await;
    assert_eq!(sub, format!("{}:1: fn needle() {{}}", b.p("src/a.rs")));
    assert_eq!(
        b.text(
            "search_file_contents",
            json!({"path": ".", "pattern": "needle", "glob": "*.txt"}),
        )
        .await,
        "No matches found"
    );
    let cut = b
        .text(
            "search_file_contents",
            json!({"path": ".", "pattern": "fn ", "max_results": 1}),
        )
        .await;
    assert!(
        cut.starts_with(&format!("{}:1: fn needle", b.p("src/a.rs"))),
        "{cut}"
    );
    assert!(cut.contains("truncated"), "{cut}");
    let bad = b
        .err("search_file_contents", json!({"path": ".", "pattern": "("}))
        .await;
    assert!(invalid(&bad), "{bad:?}");
}

#[tokio::test]
async fn get_file_info_and_allowed_directories() {
    let b = bench();
    b.put("i.txt", "12345");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(b.root.join("i.txt"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
    }
    let info = b.text("get_file_info", json!({"path": "i.txt"})).await;
    assert!(info.starts_with("size: 5\n"), "{info}");
    assert!(info.contains("\nmodified: 2"), "{info}");
    assert!(info.contains("Z\n"), "{info}");
    assert!(
        info.contains("\nisDirectory: false\nisFile: true\n"),
        "{info}"
    );
    #[cfg(unix)]
    assert!(info.ends_with("\npermissions: 640"), "{info}");
    assert_eq!(
        b.text("list_allowed_directories", json!({})).await,
        format!("Allowed directories:\n{}", b.root.display())
    );
}

// ---- moving, copying, deleting

#[tokio::test]
async fn move_file_refuses_an_existing_destination() {
    let b = bench();
    b.put("a.txt", "A");
    b.put("b.txt", "B");
    let e = b
        .err(
            "move_file",
            json!({"source": "a.txt", "destination": "b.txt"}),
        )
        .await;
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(b.read("a.txt"), "A");
    assert_eq!(b.read("b.txt"), "B");
    assert_eq!(
        b.text(
            "move_file",
            json!({"source": "a.txt", "destination": "c.txt"}),
        )
        .await,
        "Successfully moved a.txt to c.txt"
    );
    assert!(!b.root.join("a.txt").exists());
    assert_eq!(b.read("c.txt"), "A");
    // Into itself: said in words (it was the kernel's "Invalid argument").
    b.put("dir/f", "f");
    let e = b
        .err(
            "move_file",
            json!({"source": "dir", "destination": "dir/inside"}),
        )
        .await;
    assert!(e.to_string().contains("cannot be moved into itself"), "{e}");
    assert_eq!(b.read("dir/f"), "f");
}

#[tokio::test]
async fn delete_file_needs_recursive_for_a_directory() {
    let b = bench();
    b.put("d/f.txt", "f");
    let e = b.err("delete_file", json!({"path": "d"})).await;
    assert!(e.to_string().contains("recursive"), "{e}");
    assert!(b.root.join("d/f.txt").exists());
    b.text("delete_file", json!({"path": "d", "recursive": true}))
        .await;
    assert!(!b.root.join("d").exists());
    b.put("g.txt", "g");
    // A file named as a directory (`g.txt/`) is not deleted.
    let e = b.err("delete_file", json!({"path": "g.txt/"})).await;
    assert!(e.to_string().contains("the path ends with `/`"), "{e}");
    assert!(b.root.join("g.txt").exists());
    assert_eq!(
        b.text("delete_file", json!({"path": "g.txt"})).await,
        "Successfully deleted g.txt"
    );
    assert!(!b.root.join("g.txt").exists());
    // The allowed directory itself is never deleted.
    b.put("keep.txt", "k");
    assert!(b
        .call("delete_file", json!({"path": b.p(""), "recursive": true}))
        .await
        .is_err());
    assert!(b.root.join("keep.txt").exists());
}

#[tokio::test]
async fn a_file_named_with_a_final_slash_is_refused_by_every_tool() {
    let b = bench();
    b.put("f.txt", "f");
    b.put("d/in.txt", "in");
    // `f.txt/` names a directory, as the kernel reads it (`ENOTDIR`): no tool takes it for
    // the file, and nothing changes.
    let calls = [
        ("read_text_file", json!({"path": "f.txt/"})),
        ("read_media_file", json!({"path": "f.txt/"})),
        ("get_file_info", json!({"path": "f.txt/"})),
        ("get_file_info", json!({"path": "f.txt/."})),
        (
            "edit_file",
            json!({"path": "f.txt/", "edits": [{"oldText": "f", "newText": "g"}]}),
        ),
        ("append_file", json!({"path": "f.txt/", "content": "more"})),
        (
            "move_file",
            json!({"source": "f.txt/", "destination": "g.txt"}),
        ),
        (
            "move_file",
            json!({"source": "f.txt", "destination": "g.txt/"}),
        ),
        (
            "copy_file",
            json!({"source": "f.txt/", "destination": "g.txt"}),
        ),
        (
            "copy_file",
            json!({"source": "f.txt", "destination": "g.txt/"}),
        ),
        ("delete_file", json!({"path": "f.txt/"})),
        ("write_file", json!({"path": "f.txt/", "content": "x"})),
    ];
    for (tool, args) in calls {
        let e = b.err(tool, args.clone()).await.to_string();
        assert!(
            e.contains("names a directory") && e.contains("/`"),
            "{tool} {args}: {e}"
        );
        assert_eq!(b.read("f.txt"), "f", "{tool} {args}");
        assert!(!b.root.join("g.txt").exists(), "{tool} {args}");
    }
    let multiple = b
        .text(
            "read_multiple_files",
            json!({"paths": ["f.txt/", "d/in.txt"]}),
        )
        .await;
    assert!(multiple.contains("names a directory"), "{multiple}");
    assert!(multiple.contains("in"), "{multiple}");
    // A directory may be named either way.
    b.text("get_file_info", json!({"path": "d/"})).await;
    b.text(
        "copy_file",
        json!({"source": "d/", "destination": "e/", "recursive": true}),
    )
    .await;
    assert_eq!(b.read("e/in.txt"), "in");
    b.text("move_file", json!({"source": "e/", "destination": "m/"}))
        .await;
    assert_eq!(b.read("m/in.txt"), "in");
    // A file where a folder is asked for is named so, not as an OS error.
    let e = b
        .err("list_directory", json!({"path": "f.txt/"}))
        .await
        .to_string();
    assert!(
        e.contains("not a directory") && !e.contains("os error"),
        "{e}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_to_a_folder_named_with_a_final_slash_is_read_through_never_moved_or_deleted() {
    let b = bench();
    b.put("d/in.txt", "in");
    std::os::unix::fs::symlink("d", b.root.join("ld")).unwrap();
    // Read through, as the kernel reads `ld/`.
    let listed = b.text("list_directory", json!({"path": "ld/"})).await;
    assert!(listed.contains("in.txt"), "{listed}");
    let info = b.text("get_file_info", json!({"path": "ld/"})).await;
    assert!(info.contains("isDirectory: true"), "{info}");
    // Never moved or deleted through: the link itself would go, not the folder it names.
    for (tool, args) in [
        ("move_file", json!({"source": "ld/", "destination": "m"})),
        ("delete_file", json!({"path": "ld/", "recursive": true})),
        ("delete_file", json!({"path": "ld/"})),
    ] {
        let e = b.err(tool, args).await.to_string();
        assert!(e.contains("ld is a symbolic link"), "{tool}: {e}");
    }
    // A file moved to `ld/`: the message is about the file, which is not a folder.
    b.put("f.txt", "f");
    let e = b
        .err(
            "move_file",
            json!({"source": "f.txt", "destination": "ld/"}),
        )
        .await
        .to_string();
    assert!(
        e.contains("f.txt is not one") && e.contains("destination"),
        "{e}"
    );
    assert!(b.root.join("ld").is_symlink());
    assert_eq!(b.read("d/in.txt"), "in");
    // Named without the slash, the link itself is what goes.
    b.text("delete_file", json!({"path": "ld"})).await;
    assert!(!b.root.join("ld").exists() && b.root.join("d/in.txt").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn copy_file_copies_trees_without_following_links_out() {
    let b = bench();
    b.put("src/f.txt", "f");
    b.put("src/sub/g.txt", "g");
    b.put("src/ro/h.txt", "h");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(b.root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    std::fs::set_permissions(b.root.join("src"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        b.root.join("src/ro"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    std::os::unix::fs::symlink("f.txt", b.root.join("src/rel-link")).unwrap();
    std::os::unix::fs::symlink(b.outside.join("secret.txt"), b.root.join("src/abs-link")).unwrap();
    let e = b
        .err("copy_file", json!({"source": "src", "destination": "dst"}))
        .await;
    assert!(e.to_string().contains("recursive"), "{e}");
    assert!(!b.root.join("dst").exists());
    let out = b
        .text(
            "copy_file",
            json!({"source": "src", "destination": "dst", "recursive": true}),
        )
        .await;
    assert!(out.starts_with("Successfully copied src to dst"), "{out}");
    assert!(out.contains("abs-link"), "the skipped link is named: {out}");
    assert_eq!(b.read("dst/f.txt"), "f");
    assert_eq!(b.read("dst/sub/g.txt"), "g");
    assert_eq!(b.read("dst/ro/h.txt"), "h");
    // Directories keep their permissions (they used to become 0755), a read-only one too.
    assert_eq!(mode("dst"), 0o700);
    assert_eq!(mode("dst/ro"), 0o555);
    assert_eq!(mode("dst/sub"), mode("src/sub"));
    assert_eq!(
        std::fs::read_link(b.root.join("dst/rel-link")).unwrap(),
        PathBuf::from("f.txt")
    );
    assert!(std::fs::symlink_metadata(b.root.join("dst/abs-link")).is_err());
    let again = b
        .err(
            "copy_file",
            json!({"source": "src/f.txt", "destination": "dst/f.txt"}),
        )
        .await;
    assert!(again.to_string().contains("already exists"), "{again}");
    let into_itself = b
        .err(
            "copy_file",
            json!({"source": "src", "destination": "src/inner", "recursive": true}),
        )
        .await;
    assert!(into_itself.to_string().contains("itself"), "{into_itself}");
    assert!(!b.root.join("src/inner").exists());

    // A relative link that stays inside the root where it is, but would climb out of it from
    // where a copy or a move puts it (a probe found `c/link -> ../../x` leading outside): left
    // out of a copy, named, and a move of it refused. One that still stays inside is kept.
    b.put("a/b/keep.txt", "k");
    std::os::unix::fs::symlink("../../x", b.root.join("a/b/link")).unwrap();
    std::os::unix::fs::symlink("../b/keep.txt", b.root.join("a/b/near")).unwrap();
    let out = b
        .text(
            "copy_file",
            json!({"source": "a/b", "destination": "c", "recursive": true}),
        )
        .await;
    assert!(
        out.contains("link") && out.contains("outside the allowed root"),
        "{out}"
    );
    assert!(std::fs::symlink_metadata(b.root.join("c/link")).is_err());
    assert_eq!(
        std::fs::read_link(b.root.join("c/near")).unwrap(),
        PathBuf::from("../b/keep.txt")
    );
    let e = b
        .err(
            "move_file",
            json!({"source": "a/b/link", "destination": "m"}),
        )
        .await;
    assert!(
        not_allowed(&e) && e.to_string().contains("outside the allowed root"),
        "{e}"
    );
    assert!(std::fs::symlink_metadata(b.root.join("a/b/link")).is_ok());
    assert!(std::fs::symlink_metadata(b.root.join("m")).is_err());
    // A folder holding such links, moved higher up, is refused too; moved as deep, it is not.
    std::fs::create_dir_all(b.root.join("q/r/s")).unwrap();
    std::os::unix::fs::symlink("../../../x", b.root.join("q/r/s/lk")).unwrap();
    let e = b
        .err("move_file", json!({"source": "q/r", "destination": "r2"}))
        .await;
    assert!(
        not_allowed(&e) && e.to_string().contains("s/lk -> ../../../x"),
        "{e}"
    );
    assert!(b.root.join("q/r/s/lk").symlink_metadata().is_ok());
    b.put("p/.keep", "");
    b.text("move_file", json!({"source": "q/r", "destination": "p/r"}))
        .await;
    assert!(b.root.join("p/r/s/lk").symlink_metadata().is_ok());
    // Moved to a place as deep, it still leads where it did.
    b.put("z/y/.keep", "");
    b.text(
        "move_file",
        json!({"source": "a/b/link", "destination": "z/y/link"}),
    )
    .await;
    assert_eq!(
        std::fs::read_link(b.root.join("z/y/link")).unwrap(),
        PathBuf::from("../../x")
    );
}

// ---- the sandbox

#[tokio::test]
async fn paths_outside_the_root_nul_bytes_and_overlong_paths_are_refused() {
    let b = bench();
    let secret = b.outside.join("secret.txt").display().to_string();
    for path in ["../outside/secret.txt", secret.as_str()] {
        let e = b.err("read_text_file", json!({"path": path})).await;
        assert!(not_allowed(&e), "{path}: {e:?}");
        let e = b
            .err("write_file", json!({"path": path, "content": "x"}))
            .await;
        assert!(not_allowed(&e), "{path}: {e:?}");
    }
    assert_eq!(
        std::fs::read_to_string(b.outside.join("secret.txt")).unwrap(),
        "top secret\n"
    );
    let e = b
        .err(
            "move_file",
            json!({"source": secret, "destination": "stolen.txt"}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(b.outside.join("secret.txt").exists());
    let e = b.err("read_text_file", json!({"path": "a\u{0}b"})).await;
    assert!(invalid(&e) && e.to_string().contains("NUL"), "{e:?}");
    let long = "a/".repeat(3000);
    let e = b.err("read_text_file", json!({"path": long})).await;
    assert!(invalid(&e), "{e:?}");
    // read_multiple_files reports it per file instead.
    let out = b
        .text("read_multiple_files", json!({"paths": ["x\u{0}y"]}))
        .await;
    assert!(out.contains(": Error - ") && out.contains("NUL"), "{out}");
}

#[tokio::test]
async fn no_roots_means_no_file_access() {
    let registry = Registry::new().unwrap();
    let ctx = Ctx::new();
    let listed = registry
        .get("list_allowed_directories")
        .unwrap()
        .invoke(&ctx, json!({}))
        .await
        .unwrap();
    assert!(listed.as_str().unwrap().contains("none"), "{listed}");
    let e = registry
        .get("read_text_file")
        .unwrap()
        .invoke(&ctx, json!({"path": "/etc/hostname"}))
        .await
        .unwrap_err();
    assert!(not_allowed(&e), "{e:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn no_symbolic_link_leads_a_tool_outside() {
    let b = bench();
    std::os::unix::fs::symlink(&b.outside, b.root.join("door")).unwrap();
    std::os::unix::fs::symlink(b.outside.join("secret.txt"), b.root.join("file-link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", b.root.join("climb")).unwrap();
    for path in ["door/secret.txt", "file-link", "climb"] {
        let e = b.err("read_text_file", json!({"path": path})).await;
        assert!(not_allowed(&e), "{path}: {e:?}");
    }
    let e = b
        .err(
            "write_file",
            json!({"path": "door/new.txt", "content": "x"}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(!b.outside.join("new.txt").exists());
    let e = b
        .err("append_file", json!({"path": "file-link", "content": "x"}))
        .await;
    assert!(not_allowed(&e), "{e:?}");
    let e = b.err("list_directory", json!({"path": "door"})).await;
    assert!(not_allowed(&e), "{e:?}");
    let e = b
        .err(
            "copy_file",
            json!({"source": "file-link", "destination": "copy.txt"}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(!b.root.join("copy.txt").exists());
    assert_eq!(
        std::fs::read_to_string(b.outside.join("secret.txt")).unwrap(),
        "top secret\n"
    );
    // Searches and trees list links without following them.
    assert_eq!(
        b.text(
            "search_file_contents",
            json!({"path": ".", "pattern": "secret"}),
        )
        .await,
        "No matches found"
    );
    let tree = b.text("directory_tree", json!({"path": "."})).await;
    assert!(!tree.contains("secret.txt"), "{tree}");
    // Deleting a link removes the link, not what it names.
    b.text("delete_file", json!({"path": "door"})).await;
    assert!(b.outside.join("secret.txt").exists());
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status();
    match made {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("mkfifo is not available ({other:?}); skipping");
            return;
        }
    }
    std::fs::write(root.join("plain.txt"), "needle\n").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_root = root.clone();
    std::thread::spawn(move || {
        let ctx = ctx_for(&worker_root);
        let registry = Registry::new().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let call =
            |tool: &str, args: Value| rt.block_on(registry.get(tool).unwrap().invoke(&ctx, args));
        let results = vec![
            call("read_text_file", json!({"path": "pipe"})),
            call("read_media_file", json!({"path": "pipe"})),
            call("write_file", json!({"path": "pipe", "content": "x"})),
            call("append_file", json!({"path": "pipe", "content": "x"})),
            call(
                "edit_file",
                json!({"path": "pipe", "edits": [{"oldText": "a", "newText": "b"}]}),
            ),
            call(
                "search_file_contents",
                json!({"path": ".", "pattern": "needle"}),
            ),
            call(
                "search_file_contents",
                json!({"path": "pipe", "pattern": "needle"}),
            ),
        ];
        let _ = tx.send(results);
    });
    let results = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a tool blocked on the FIFO");
    for (i, r) in results.iter().take(5).enumerate() {
        match r {
            Err(e) => assert!(not_allowed(e), "call {i}: {e:?}"),
            Ok(v) => panic!("call {i} succeeded on a FIFO: {v}"),
        }
    }
    let found = results[5].as_ref().unwrap();
    assert_eq!(
        found.as_str().unwrap(),
        format!("{}:1: needle", root.join("plain.txt").display())
    );
    assert!(results[6].is_err(), "{:?}", results[6]);
}
