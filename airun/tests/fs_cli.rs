//! The `fs` standard library through the real `airun` binary: every mutating tool undone from a
//! new process byte-exact, a mixed sequence undone to a checkpoint, conflicts and `--force`, dry
//! runs, redo, kill -9 during calls and undos, and escape attempts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

mod common;
use common::tree;

const BIN: &str = env!("CARGO_BIN_EXE_airun");

/// A scratch directory: `root` (the allowed root, with text and binary files), `state`, and
/// `outside` (must never change).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        let w = Work { dir };
        let root = w.root();
        std::fs::create_dir_all(root.join("src/util")).unwrap();
        std::fs::write(root.join("README.md"), "# demo\n\nline two\n").unwrap();
        std::fs::write(root.join("src/main.py"), "def main():\n    return 1\n").unwrap();
        std::fs::write(
            root.join("src/util/blob.bin"),
            (0..=255u8).collect::<Vec<_>>(),
        )
        .unwrap();
        std::fs::set_permissions(
            root.join("src/main.py"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("../main.py", root.join("src/util/link")).unwrap();
        std::fs::create_dir_all(w.outside()).unwrap();
        std::fs::write(w.outside().join("secret.txt"), "outside").unwrap();
        w
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn p(&self, rel: &str) -> String {
        self.root().join(rel).display().to_string()
    }

    /// Runs `airun --root ROOT ARGS…` as a new process.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.dir.path())
            .env("AIFIRST_STATE_DIR", self.dir.path().join("state"))
            .env_remove("AIFIRST_ROOTS")
            .env_remove("AIFIRST_SESSION")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "airun {args:?} failed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn call(&self, tool: &str, args: Value) -> String {
        self.ok(&["call", tool, "--args", &args.to_string(), "--json"])
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "airun {args:?} should have failed");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

#[test]
fn every_mutating_tool_is_undone_byte_exact_from_a_new_process() {
    let w = Work::new();
    let before = tree(&w.root());
    w.call(
        "write_file",
        json!({"path": w.p("README.md"), "content": "replaced\n"}),
    );
    w.call(
        "write_file",
        json!({"path": "new.txt", "content": "relative to the root\n"}),
    );
    w.call(
        "edit_file",
        json!({"path": w.p("src/main.py"), "edits": [{"oldText": "return 1", "newText": "return 2"}]}),
    );
    w.call("create_directory", json!({"path": w.p("a/b/c")}));
    w.call(
        "move_file",
        json!({"source": w.p("src/util/blob.bin"), "destination": w.p("a/blob.bin")}),
    );
    w.call(
        "copy_file",
        json!({"source": w.p("src"), "destination": w.p("src-copy"), "recursive": true}),
    );
    w.call(
        "append_file",
        json!({"path": w.p("README.md"), "content": "more\n"}),
    );
    w.call(
        "delete_file",
        json!({"path": w.p("src"), "recursive": true}),
    );
    assert!(!w.root().join("src").exists());
    assert_ne!(tree(&w.root()), before);
    let after = tree(&w.root());
    // Each undo is a new process.
    for _ in 0..8 {
        w.ok(&["undo"]);
    }
    assert_eq!(
        tree(&w.root()),
        before,
        "content, modes, links and the set of paths"
    );
    // Redo all eight, then undo them again in one go.
    let out = w.ok(&["redo", "8"]);
    assert_eq!(out.matches("redone step").count(), 8, "{out}");
    assert_eq!(tree(&w.root()), after);
    w.ok(&["undo", "8"]);
    assert_eq!(tree(&w.root()), before);
    assert_eq!(
        std::fs::read_to_string(w.outside().join("secret.txt")).unwrap(),
        "outside"
    );
    w.ok(&["audit", "verify"]);
    // Each redo is audited before it writes, and after.
    let exported = w.ok(&["audit", "export"]);
    let records = |status: &str| {
        exported
            .lines()
            .filter(|l| l.contains(&format!("\"{status}\"")))
            .count()
    };
    assert_eq!(records("redo_started"), 8, "{exported}");
    assert_eq!(records("redone"), 8);
}

#[test]
fn a_mixed_sequence_of_twenty_calls_is_undone_to_a_checkpoint() {
    let w = Work::new();
    w.call(
        "write_file",
        json!({"path": w.p("kept.txt"), "content": "before the checkpoint\n"}),
    );
    w.ok(&["checkpoint", "start"]);
    let at_checkpoint = tree(&w.root());
    for i in 0..20 {
        match i % 5 {
            0 => w.call("write_file", json!({"path": w.p(&format!("f{i}.txt")), "content": format!("{i}\n")})),
            1 => w.call("append_file", json!({"path": w.p("README.md"), "content": format!("{i}\n")})),
            2 => w.call("create_directory", json!({"path": w.p(&format!("d{i}/x"))})),
            3 => w.call(
                "edit_file",
                json!({"path": w.p("README.md"), "edits": [{"oldText": "line two", "newText": format!("line two {i}")}]}),
            ),
            _ => w.call("read_text_file", json!({"path": w.p("README.md")})),
        };
    }
    w.call(
        "delete_file",
        json!({"path": w.p("src"), "recursive": true}),
    );
    let dry = w.ok(&["undo", "--to", "start", "--dry-run"]);
    assert!(dry.contains("restore"), "{dry}");
    assert_ne!(
        tree(&w.root()),
        at_checkpoint,
        "the dry run changed nothing"
    );
    w.ok(&["undo", "--to", "start"]);
    assert_eq!(tree(&w.root()), at_checkpoint);
    assert_eq!(
        std::fs::read_to_string(w.root().join("kept.txt")).unwrap(),
        "before the checkpoint\n"
    );
}

#[test]
fn a_file_changed_since_is_named_and_kept_unless_forced() {
    let w = Work::new();
    w.call(
        "write_file",
        json!({"path": w.p("README.md"), "content": "agent\n"}),
    );
    std::fs::write(w.root().join("README.md"), "the user's own edit\n").unwrap();
    // The dry run says where it would stop, and exits 1 so a script can tell.
    let dry = w.run(&["undo", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(1));
    let planned = String::from_utf8_lossy(&dry.stdout);
    assert!(
        planned.contains("README.md: content changed since"),
        "{planned}"
    );
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(said.contains("undo would stop at step 1"), "{said}");
    let err = w.fails(&["undo"]);
    assert!(err.contains("README.md: content changed since"), "{err}");
    assert!(err.contains("--force"), "{err}");
    // `--json`: one document on stdout, the report with the failure in it (it printed two).
    for args in [
        &["--json", "undo"][..],
        &["--json", "undo", "--dry-run"][..],
    ] {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"));
        assert_eq!(v["exit_code"], 1, "{v}");
        assert!(v["error"].as_str().unwrap().contains("step 1"), "{v}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error: "),
            "{args:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(w.root().join("README.md")).unwrap(),
        "the user's own edit\n"
    );
    w.ok(&["undo", "--force"]);
    assert_eq!(
        std::fs::read_to_string(w.root().join("README.md")).unwrap(),
        "# demo\n\nline two\n"
    );
}

#[test]
fn a_dry_run_lists_files_with_sizes_and_changes_nothing() {
    let w = Work::new();
    w.call(
        "delete_file",
        json!({"path": w.p("src"), "recursive": true}),
    );
    let after = tree(&w.root());
    let dry = w.ok(&["undo", "--dry-run"]);
    assert!(dry.contains(&format!("restore {}", w.p("src"))), "{dry}");
    assert!(dry.contains("a directory of 3 file(s), 281 bytes"), "{dry}");
    assert_eq!(tree(&w.root()), after);
    let out = w.ok(&["history"]);
    assert!(out.contains("done"), "{out}");
}

#[test]
fn no_roots_means_every_fs_tool_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.txt"), "x").unwrap();
    let out = Command::new(BIN)
        .args(["call", "read_text_file", "--args"])
        .arg(json!({"path": dir.path().join("x.txt")}).to_string())
        .current_dir(dir.path())
        .env("AIFIRST_STATE_DIR", dir.path().join("state"))
        .env_remove("AIFIRST_ROOTS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no allowed roots are configured"), "{err}");
}

#[test]
fn escapes_are_refused_and_nothing_outside_is_touched() {
    let w = Work::new();
    let outside = w.outside();
    std::os::unix::fs::symlink(&outside, w.root().join("out-abs")).unwrap();
    std::os::unix::fs::symlink("../outside", w.root().join("out-rel")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", w.root().join("zero")).unwrap();
    std::fs::hard_link(outside.join("secret.txt"), w.root().join("hard.txt")).unwrap();
    let deep = "d/".repeat(10_000) + "x";
    let nul = format!("{}\u{0}x", w.p("README.md"));
    let secret = outside.join("secret.txt").display().to_string();
    let attempts: Vec<(&str, Value)> = vec![
        ("read_text_file", json!({"path": "../outside/secret.txt"})),
        ("read_text_file", json!({"path": secret})),
        (
            "read_text_file",
            json!({"path": format!("{}/../outside/secret.txt", w.root().display())}),
        ),
        ("read_text_file", json!({"path": w.p("out-abs/secret.txt")})),
        ("read_text_file", json!({"path": w.p("out-rel/secret.txt")})),
        ("read_text_file", json!({"path": w.p("zero")})),
        ("read_text_file", json!({"path": nul})),
        ("read_text_file", json!({"path": deep})),
        (
            "write_file",
            json!({"path": w.p("out-rel/secret.txt"), "content": "pwned"}),
        ),
        ("write_file", json!({"path": secret, "content": "pwned"})),
        (
            "append_file",
            json!({"path": w.p("hard.txt"), "content": "pwned"}),
        ),
        ("delete_file", json!({"path": w.p("out-abs/secret.txt")})),
        (
            "move_file",
            json!({"source": w.p("README.md"), "destination": w.p("out-rel/moved")}),
        ),
        (
            "copy_file",
            json!({"source": secret, "destination": w.p("copied.txt")}),
        ),
        ("list_directory", json!({"path": w.p("out-abs")})),
        (
            "search_file_contents",
            json!({"path": w.p("out-rel"), "pattern": "outside"}),
        ),
    ];
    for (tool, args) in &attempts {
        let err = w.fails(&["call", tool, "--args", &args.to_string()]);
        assert!(!err.contains("panicked"), "{tool} {args}: {err}");
        assert!(!err.contains("pwned"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "outside"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert!(!w.root().join("copied.txt").exists());
    // A FIFO inside the root: refused, never blocks.
    assert!(Command::new("mkfifo")
        .arg(w.root().join("pipe"))
        .status()
        .unwrap()
        .success());
    let err = w.fails(&[
        "call",
        "read_text_file",
        "--args",
        &json!({"path": w.p("pipe")}).to_string(),
    ]);
    assert!(err.contains("not a regular file"), "{err}");
    let err = w.fails(&[
        "call",
        "delete_file",
        "--args",
        &json!({"path": w.p("pipe")}).to_string(),
    ]);
    assert!(err.contains("FIFO"), "{err}");
}

/// Starts `airun ARGS` and kills it with SIGKILL after `ms` milliseconds (or when it ends).
fn killed_after(w: &Work, args: &[&str], ms: u64) {
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(w.root())
        .args(args)
        .current_dir(w.dir.path())
        .env("AIFIRST_STATE_DIR", w.dir.path().join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
}

/// Settles what a kill left half-done, as a person would: an interrupted call took effect (its
/// state now becomes the step's after-state), an interrupted undo is simply run again.
fn settle(w: &Work) {
    let out = w.ok(&["history", "--json"]);
    let steps: Value = serde_json::from_str(&out).unwrap();
    for s in steps.as_array().unwrap() {
        if s["state"] == "intended" {
            let id = s["id"].to_string();
            let out = w.run(&["undo", "--resolve", &id, "done"]);
            let err = String::from_utf8_lossy(&out.stderr);
            // A call stopped before its snapshot was complete never ran: undo passes it.
            assert!(out.status.success() || err.contains("never ran"), "{err}");
        }
    }
}

#[test]
fn kill_9_during_calls_and_undos_loses_nothing_acknowledged() {
    let w = Work::new();
    // Big enough that a kill often lands inside the snapshot or the copy.
    let big: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| i.wrapping_mul(2_654_435_761) as u8)
        .collect();
    std::fs::write(w.root().join("big.bin"), &big).unwrap();
    let before = tree(&w.root());
    for (i, ms) in [5u64, 20, 40, 80, 160].into_iter().enumerate() {
        let dest = w.p(&format!("copy{i}.bin"));
        killed_after(
            &w,
            &[
                "call",
                "copy_file",
                "--args",
                &json!({"source": w.p("big.bin"), "destination": dest}).to_string(),
            ],
            ms,
        );
        settle(&w);
    }
    w.call(
        "delete_file",
        json!({"path": w.p("src"), "recursive": true}),
    );
    for ms in [2u64, 10, 30] {
        killed_after(&w, &["undo", "10"], ms);
    }
    // Whatever the kills left: undo everything still on the stack.
    let out = w.run(&["undo", "20"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut now = tree(&w.root());
    // A copy killed before its step was journaled leaves, at most, a temporary file of the
    // atomic write; never a half-written destination.
    now.retain(|k, _| !k.contains(".aifirst-"));
    assert_eq!(now, before);
    w.ok(&["audit", "verify"]);
}

/// Splits a shell line the way the README's lines need: words, `'single quoted'` words, and a
/// trailing `# comment` dropped.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            '#' if !quoted && !started => break,
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[test]
fn the_readme_file_commands_do_what_it_says() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("## Files an agent can change")
        .nth(1)
        .and_then(|s| s.split("```sh").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README has the section and its shell block");
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for line in section.lines() {
        let words = shell_words(line);
        let Some(rest) =
            words.strip_prefix(&["cargo", "run", "-q", "-p", "airun", "--"].map(String::from))
        else {
            continue;
        };
        if rest.iter().any(|w| w == "serve") {
            continue; // waits for a client on stdin: the MCP tests drive it
        }
        let out = Command::new(BIN)
            .args(rest)
            .current_dir(dir.path())
            .env_remove("AIFIRST_STATE_DIR")
            .env_remove("AIFIRST_ROOTS")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        match ran {
            0 => assert_eq!(
                std::fs::read_to_string(dir.path().join("scratch.txt")).unwrap(),
                "hello\n"
            ),
            1 => {
                assert!(
                    stdout.contains("remove") && stdout.contains("scratch.txt"),
                    "{stdout}"
                );
                assert!(
                    dir.path().join("scratch.txt").exists(),
                    "a dry run changes nothing"
                );
            }
            _ => assert!(!dir.path().join("scratch.txt").exists(), "{stdout}"),
        }
        ran += 1;
    }
    assert_eq!(ran, 3, "the README's write, dry run and undo lines");
}

#[test]
fn the_state_directory_inside_a_root_is_out_of_reach() {
    let w = Work::new();
    // `--root .` with the default `.aifirst`: the journal and audit log sit inside the root.
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["--root", "."])
            .args(args)
            .current_dir(w.root())
            .env_remove("AIFIRST_STATE_DIR")
            .env_remove("AIFIRST_ROOTS")
            .output()
            .unwrap()
    };
    let call = |tool: &str, args: Value| run(&["call", tool, "--args", &args.to_string()]);
    assert!(call("write_file", json!({"path": "a.txt", "content": "x"}))
        .status
        .success());
    assert!(w.root().join(".aifirst/journal.sqlite3").exists());
    for (tool, args) in [
        (
            "read_text_file",
            json!({"path": ".aifirst/journal.sqlite3"}),
        ),
        (
            "read_text_file",
            json!({"path": "src/../.aifirst/audit.sqlite3"}),
        ),
        (
            "write_file",
            json!({"path": ".aifirst/journal.sqlite3", "content": ""}),
        ),
        (
            "delete_file",
            json!({"path": ".aifirst", "recursive": true}),
        ),
        (
            "move_file",
            json!({"source": ".aifirst", "destination": "moved"}),
        ),
        (
            "copy_file",
            json!({"source": ".aifirst", "destination": "copied", "recursive": true}),
        ),
        ("list_directory", json!({"path": ".aifirst/blobs"})),
    ] {
        let out = call(tool, args.clone());
        assert!(!out.status.success(), "{tool} {args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("state directory"), "{tool} {args}: {err}");
    }
    // Nor through a link inside the root: one to the root itself, one to the state directory,
    // one up from a subdirectory. The links still work for everything else.
    std::os::unix::fs::symlink(".", w.root().join("self")).unwrap();
    std::os::unix::fs::symlink(".aifirst", w.root().join("st")).unwrap();
    std::fs::create_dir(w.root().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", w.root().join("sub/up")).unwrap();
    // Dangling, into the state directory: where it would lead counts.
    std::os::unix::fs::symlink(".aifirst/new", w.root().join("dang")).unwrap();
    for (tool, args) in [
        (
            "read_text_file",
            json!({"path": "self/.aifirst/journal.sqlite3"}),
        ),
        (
            "hash_file",
            json!({"path": "sub/up/.aifirst/audit.sqlite3"}),
        ),
        ("read_media_file", json!({"path": "st/journal.sqlite3"})),
        (
            "delete_file",
            json!({"path": "self/.aifirst/audit.sqlite3"}),
        ),
        (
            "delete_file",
            json!({"path": "sub/up/.aifirst/journal.sqlite3"}),
        ),
        ("write_file", json!({"path": "st/evil", "content": "x"})),
        (
            "create_directory",
            json!({"path": "self/.aifirst/new/deeper"}),
        ),
        ("delete_file", json!({"path": "st", "recursive": true})),
        (
            "copy_file",
            json!({"source": "st", "destination": "copied", "recursive": true}),
        ),
        (
            "move_file",
            json!({"source": "self/.aifirst/journal.sqlite3", "destination": "j"}),
        ),
        ("list_directory", json!({"path": "sub/up/.aifirst"})),
        (
            "copy_file",
            json!({"source": "self", "destination": "copied", "recursive": true}),
        ),
        ("append_file", json!({"path": "dang", "content": "x"})),
        (
            "copy_file",
            json!({"source": "a.txt", "destination": "dang"}),
        ),
    ] {
        let out = call(tool, args.clone());
        assert!(!out.status.success(), "{tool} {args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("state directory"), "{tool} {args}: {err}");
    }
    for kept in ["journal.sqlite3", "audit.sqlite3"] {
        assert!(w.root().join(".aifirst").join(kept).is_file(), "{kept}");
    }
    for absent in [".aifirst/evil", ".aifirst/new", "copied", "j"] {
        assert!(!w.root().join(absent).exists(), "{absent}");
    }
    let read = call("read_text_file", json!({"path": "sub/up/self/a.txt"}));
    assert!(read.status.success(), "{read:?}");
    let listed = call("list_directory", json!({"path": "sub/up"}));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("a.txt") && !listed.contains(".aifirst"),
        "{listed}"
    );
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "\"x\"");
    let listed = call("list_directory", json!({"path": "."}));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("a.txt") && !listed.contains(".aifirst"),
        "{listed}"
    );
    let tree = call("directory_tree", json!({"path": "."}));
    assert!(!String::from_utf8_lossy(&tree.stdout).contains(".aifirst"));
    assert!(run(&["undo"]).status.success());
    assert!(!w.root().join("a.txt").exists());
    assert!(run(&["audit", "verify"]).status.success());
}

#[test]
fn long_names_links_and_moves_onto_existing_files() {
    let w = Work::new();
    let long = "é".repeat(120) + ".txt"; // 244 bytes: a temporary name beside it must not grow
    w.call(
        "write_file",
        json!({"path": w.p(&long), "content": "long\n"}),
    );
    w.call("delete_file", json!({"path": w.p(&long)}));
    w.ok(&["undo"]);
    assert_eq!(
        std::fs::read_to_string(w.root().join(&long)).unwrap(),
        "long\n"
    );
    w.ok(&["undo"]);
    assert!(!w.root().join(&long).exists());
    // Appending through a link is refused: the snapshot keeps the link, not what it names.
    std::os::unix::fs::symlink("README.md", w.root().join("alias.md")).unwrap();
    let err = w.fails(&[
        "call",
        "append_file",
        "--args",
        &json!({"path": w.p("alias.md"), "content": "x"}).to_string(),
    ]);
    assert!(err.contains("symbolic link"), "{err}");
    // A move never replaces what is at its destination.
    let err = w.fails(&[
        "call",
        "move_file",
        "--args",
        &json!({"source": w.p("README.md"), "destination": w.p("src/main.py")}).to_string(),
    ]);
    assert!(err.contains("exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(w.root().join("src/main.py")).unwrap(),
        "def main():\n    return 1\n"
    );
}

#[test]
fn two_sessions_on_one_file_never_lose_each_others_writes() {
    let w = Work::new();
    let file = w.p("shared.log");
    std::fs::write(w.root().join("shared.log"), "").unwrap();
    let run_session = |session: &'static str| {
        let root = w.root();
        let state = w.dir.path().join("state");
        let file = file.clone();
        std::thread::spawn(move || {
            for i in 0..10 {
                let out = Command::new(BIN)
                    .arg("--root")
                    .arg(&root)
                    .args(["--session", session, "call", "append_file", "--args"])
                    .arg(json!({"path": file, "content": format!("{session}{i}\n")}).to_string())
                    .env("AIFIRST_STATE_DIR", &state)
                    .env_remove("AIFIRST_ROOTS")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        })
    };
    let (a, b) = (run_session("a"), run_session("b"));
    a.join().unwrap();
    b.join().unwrap();
    let text = std::fs::read_to_string(w.root().join("shared.log")).unwrap();
    assert_eq!(text.lines().count(), 20, "no append was lost: {text}");
    // Undoing session a: a step whose file b changed since is refused, never written over.
    let out = w.run(&["--session", "a", "undo", "10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("changed since"),
        "{err}"
    );
    let after = std::fs::read_to_string(w.root().join("shared.log")).unwrap();
    for i in 0..10 {
        assert!(after.contains(&format!("b{i}\n")), "b{i} lost: {after}");
    }
    w.ok(&["audit", "verify"]);
}

/// `call --help` teaches with a capability this binary has (the standard library's write_file
/// here; a generated crate shows its own), never another crate's.
#[test]
fn call_help_shows_an_example_of_its_own() {
    let out = std::process::Command::new(BIN)
        .args(["call", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("airun call write_file --args '{\"path\":\"…\",\"content\":\"…\"}'"),
        "{text}"
    );
    assert!(!text.contains("create_note"), "{text}");
}

/// An `edit_file` preview (`dryRun`) changes nothing and leaves no step: `undo` reverts the
/// real edit before it. It used to spend itself on the preview and report it undone.
#[test]
fn an_edit_preview_leaves_nothing_to_undo() {
    let w = Work::new();
    let edit = |new: &str, dry: bool| {
        w.call(
            "edit_file",
            json!({"path": "README.md", "edits": [{"oldText": "line two", "newText": new}], "dryRun": dry}),
        )
    };
    edit("line 2", false);
    let preview = w.call(
        "edit_file",
        json!({"path": "README.md", "edits": [{"oldText": "line 2", "newText": "preview"}], "dryRun": true}),
    );
    assert!(preview.contains("+preview"), "{preview}");
    assert_eq!(
        std::fs::read_to_string(w.root().join("README.md")).unwrap(),
        "# demo\n\nline 2\n"
    );
    let history = w.ok(&["history", "--json"]);
    let steps: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(steps.as_array().map(Vec::len), Some(1), "{history}");
    w.ok(&["undo"]);
    assert_eq!(
        std::fs::read_to_string(w.root().join("README.md")).unwrap(),
        "# demo\n\nline two\n",
        "the real edit was undone"
    );
    assert!(w.ok(&["audit", "verify"]).contains("intact"));
}

/// A header in airun.toml whose variable is not set stops the commands that may send a request
/// (naming the variable), not `audit verify`, `history` or `checkpoint`, which used to exit 2.
#[test]
fn an_unset_header_variable_stops_only_what_may_send() {
    let w = Work::new();
    w.call("write_file", json!({"path": "a.txt", "content": "x"}));
    std::fs::write(
        w.dir.path().join("airun.toml"),
        "[http.headers]\nAuthorization = \"Bearer ${AIFIRST_TEST_UNSET_TOKEN}\"\n",
    )
    .unwrap();
    assert!(w.ok(&["audit", "verify"]).contains("intact"));
    assert!(w.ok(&["history"]).contains("write_file"));
    w.ok(&["checkpoint", "here"]);
    let err = w.fails(&[
        "call",
        "write_file",
        "--args",
        r#"{"path":"b.txt","content":"y"}"#,
    ]);
    assert!(err.contains("AIFIRST_TEST_UNSET_TOKEN is not set"), "{err}");
    assert!(!w.root().join("b.txt").exists());
}

/// Undo of a recursive copy removes read-only directories the copy kept (`0555`), as a user
/// other than root: removing them failed part-way and the rerun refused. As root the commands
/// run as `nobody` (setpriv), where permissions bind.
#[test]
fn a_copy_with_read_only_directories_is_undone_as_a_plain_user() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    std::fs::create_dir_all(root.join("src/ro")).unwrap();
    std::fs::write(root.join("src/ro/h"), "h").unwrap();
    std::fs::set_permissions(root.join("src/ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    // What this process made is its user's: root's when it runs as root.
    let as_root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir.path()).unwrap()) == 0;
    if as_root {
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
    }
    let run = |args: &[&str]| {
        let mut c = if as_root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        c.arg("--state-dir")
            .arg(dir.path().join("st"))
            .arg("--root")
            .arg(&root)
            .args(args)
            .env_remove("AIFIRST_ROOTS")
            .env_remove("AIFIRST_STATE_DIR")
            .output()
            .unwrap()
    };
    let out = run(&[
        "call",
        "copy_file",
        "--args",
        r#"{"source":"src","destination":"dst","recursive":true}"#,
    ]);
    assert!(out.status.success(), "{out:?}");
    let mode = std::fs::metadata(root.join("dst/ro"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o555);
    let out = run(&["undo"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!root.join("dst").exists());
    assert_eq!(std::fs::read_to_string(root.join("src/ro/h")).unwrap(), "h");
}

/// `run_command` with `undo_paths` naming the root, which the program removes: the commands
/// that read or undo the journal still start (a call or a server would stop, naming the root),
/// undo from a new process puts the root back byte-exact with its mode, redo removes it again.
#[test]
fn a_root_a_program_removed_is_put_back_by_undo() {
    let w = Work::new();
    std::fs::write(
        w.dir.path().join("airun.toml"),
        "allowed_commands = [\"rm\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(w.root(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let before = tree(&w.root());
    let root = w.p("");
    w.ok(&[
        "--allow",
        "run_command",
        "call",
        "run_command",
        "--args",
        &json!({"program": "rm", "args": ["-rf", root], "undo_paths": [root]}).to_string(),
    ]);
    assert!(!w.root().exists());
    let refused = w.fails(&[
        "call",
        "write_file",
        "--args",
        &json!({"path": "new.txt", "content": "x"}).to_string(),
    ]);
    assert!(refused.contains("No such file"), "{refused}");
    assert!(w.ok(&["history"]).contains("run_command"));
    let planned = w.ok(&["undo", "--dry-run"]);
    assert!(planned.contains("restore"), "{planned}");
    assert!(!w.root().exists(), "a dry run changes nothing");
    w.ok(&["undo"]);
    assert_eq!(tree(&w.root()), before);
    let mode = std::fs::metadata(w.root()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750);
    w.ok(&["redo"]);
    assert!(!w.root().exists());
    w.ok(&["undo"]);
    assert_eq!(tree(&w.root()), before);
    assert!(w.ok(&["audit", "verify"]).contains("intact"));
}

/// `undo_paths` given as the pattern the program's arguments expand to (`build/*.o`): the
/// snapshot was of no file of that name, so undo lost what the program removed. The directory
/// the wildcard lists is kept.
#[test]
fn undo_paths_given_as_a_pattern_keep_the_directory_it_lists() {
    let w = Work::new();
    std::fs::write(
        w.dir.path().join("airun.toml"),
        "allowed_commands = [\"rm\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(w.root().join("build")).unwrap();
    std::fs::write(w.root().join("build/a.o"), [0u8, 7, 255]).unwrap();
    std::fs::write(w.root().join("build/b.o"), "b").unwrap();
    std::fs::write(w.root().join("build/keep.c"), "c").unwrap();
    let before = tree(&w.root());
    w.ok(&[
        "--allow",
        "run_command",
        "call",
        "run_command",
        "--args",
        &json!({"program": "rm", "args": [w.p("build/a.o"), w.p("build/b.o")],
                "undo_paths": [w.p("build/*.o")]})
        .to_string(),
    ]);
    assert!(!w.root().join("build/a.o").exists());
    let planned = w.ok(&["undo", "--dry-run"]);
    assert!(
        planned.contains("restore") && planned.contains("build"),
        "{planned}"
    );
    w.ok(&["undo"]);
    assert_eq!(tree(&w.root()), before);
}

/// A program that leaves a FIFO where its `undo_paths` point: the state it left cannot be
/// kept, and the undo says that (it said "a tree nested deeper than 48 directories, or a
/// process stopped first"); `--force` removes the FIFO. A path given in `undo_paths` that the
/// program left as it was is not listed as something the undo would remove.
#[test]
fn a_fifo_a_program_left_is_named_as_why_undo_needs_force() {
    let w = Work::new();
    std::fs::write(
        w.dir.path().join("airun.toml"),
        "allowed_commands = [\"mkfifo\"]\n",
    )
    .unwrap();
    let pipe = w.p("pipe");
    let untouched = w.p("never-made");
    w.ok(&[
        "--allow",
        "run_command",
        "call",
        "run_command",
        "--args",
        &json!({"program": "mkfifo", "args": [pipe], "undo_paths": [pipe, untouched]}).to_string(),
    ]);
    let dry = w.run(&["undo", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(1));
    let planned = String::from_utf8_lossy(&dry.stdout);
    assert!(planned.contains("a FIFO, socket or device"), "{planned}");
    assert!(!planned.contains("nested deeper"), "{planned}");
    assert!(!planned.contains("never-made"), "{planned}");
    let refused = w.fails(&["undo"]);
    assert!(refused.contains("a FIFO, socket or device"), "{refused}");
    assert!(w.root().join("pipe").exists());
    w.ok(&["undo", "--force"]);
    assert!(!w.root().join("pipe").exists());
}

/// A checkpoint's name marks one step: taken again it is refused (an agent re-using a user's
/// name moved it silently, and `undo --to` then undid less), `--move` moves it and says from
/// where; an empty name or one with a line break is refused.
#[test]
fn a_checkpoint_is_moved_only_when_asked() {
    let w = Work::new();
    w.call(
        "write_file",
        json!({"path": w.p("a.txt"), "content": "one\n"}),
    );
    w.ok(&["checkpoint", "before"]);
    w.call(
        "write_file",
        json!({"path": w.p("b.txt"), "content": "two\n"}),
    );
    let again = w.run(&["checkpoint", "before"]);
    assert_eq!(again.status.code(), Some(2));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("already marks step 1"), "{said}");
    assert!(said.contains("--move"), "{said}");
    // Still where the user put it: undoing to it undoes the second write only.
    w.ok(&["undo", "--to", "before", "--dry-run"]);
    let moved = w.ok(&["checkpoint", "before", "--move"]);
    assert!(
        moved.contains("moved from after step 1 to after step 2"),
        "{moved}"
    );
    for bad in ["", "two\nlines", "tab\there"] {
        let out = w.run(&["checkpoint", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
