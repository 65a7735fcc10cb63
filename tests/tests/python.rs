//! Python capabilities end to end: the crate `forge import` wrote from fixtures/python/notes.py
//! (tests/generated/pynotes), run by its Python worker through the shared CLI, each change
//! undone from a new process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_pyrun");

struct Bench {
    state: tempfile::TempDir,
    root: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        Bench {
            state: tempfile::tempdir().unwrap(),
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> String {
        self.root.path().join(rel).to_str().unwrap().to_string()
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--state-dir")
            .arg(self.state.path())
            .arg("--root")
            .arg(self.root.path())
            .arg("--json")
            .current_dir(self.state.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn call(&self, name: &str, args: Value) -> Output {
        self.run(&["call", name, "--args", &args.to_string()], &[])
    }

    fn ok(&self, name: &str, args: Value) -> Value {
        let out = self.call(name, args);
        assert!(
            out.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn undo(&self, n: usize) {
        let out = self.run(&["undo", &n.to_string()], &[]);
        assert!(
            out.status.success(),
            "undo: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every path under the root: content (None for a directory) and mode.
    fn tree(&self) -> BTreeMap<String, (Option<Vec<u8>>, u32)> {
        fn walk(base: &Path, at: &Path, out: &mut BTreeMap<String, (Option<Vec<u8>>, u32)>) {
            for e in std::fs::read_dir(at).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
                if p.is_dir() {
                    out.insert(rel, (None, mode));
                    walk(base, &p, out);
                } else {
                    out.insert(rel, (Some(std::fs::read(&p).unwrap()), mode));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out
    }
}

fn seed(b: &Bench) {
    std::fs::create_dir_all(b.root.path().join("notes/deep")).unwrap();
    std::fs::write(b.root.path().join("notes/a.md"), "alpha\n").unwrap();
    std::fs::write(
        b.root.path().join("notes/deep/b.bin"),
        [0u8, 159, 146, 150, 255],
    )
    .unwrap();
    std::fs::set_permissions(
        b.root.path().join("notes/a.md"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
}

#[test]
fn each_change_is_undone_from_a_new_process_byte_for_byte() {
    let b = Bench::new();
    seed(&b);
    let before = b.tree();
    // A write over an existing note, an append to it, a new note, a move, a delete and a purge
    // of a folder: each call is its own process, and so is each undo.
    assert_eq!(
        b.ok(
            "write_note",
            json!({"path": b.path("notes/a.md"), "text": "changed"})
        ),
        json!(7)
    );
    b.ok(
        "write_note",
        json!({"path": b.path("notes/a.md"), "text": "+more", "mode": "a"}),
    );
    b.ok(
        "write_note",
        json!({"path": b.path("notes/new.md"), "text": "new"}),
    );
    b.ok(
        "move_note",
        json!({"source": b.path("notes/new.md"), "destination": b.path("moved.md")}),
    );
    b.ok("delete_note", json!({"path": b.path("moved.md")}));
    b.ok("purge_folder", json!({"root": b.path("notes")}));
    assert!(!b.root.path().join("notes").exists());
    b.undo(6);
    assert_eq!(b.tree(), before);
}

#[test]
fn reads_return_values_converted_from_python() {
    let b = Bench::new();
    seed(&b);
    assert_eq!(
        b.ok("read_note", json!({"path": b.path("notes/a.md")})),
        json!("alpha")
    );
    assert_eq!(
        b.ok("list_notes", json!({"root": b.path("notes")})),
        json!([b.path("notes/a.md")])
    );
    // A dataclass with an Enum field comes back as an object.
    assert_eq!(
        b.ok("describe_note", json!({"path": b.path("notes/a.md")})),
        json!({"path": b.path("notes/a.md"), "size": 6, "mood": "calm"})
    );
}

#[test]
fn an_exception_is_a_tool_error_naming_it() {
    let b = Bench::new();
    let out = b.call("read_note", json!({"path": b.path("missing.md")}));
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("FileNotFoundError"), "{text}");
    assert!(text.contains("notes.py"), "{text}");
}

#[test]
fn a_call_past_its_time_is_stopped_and_reported() {
    let b = Bench::new();
    let out = b.run(
        &[
            "call",
            "wait_for_note",
            "--args",
            &json!({"path": b.path("never.md"), "seconds": 30}).to_string(),
        ],
        &[("AIFIRST_PYTHON_TIMEOUT", "1")],
    );
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("did not finish within 1 s"), "{text}");
    // The same limit from airun.toml, and the next call works (a new worker).
    std::fs::write(
        b.state.path().join("airun.toml"),
        "[python]\ntimeout_secs = 1\n",
    )
    .unwrap();
    let out = b.call(
        "wait_for_note",
        json!({"path": b.path("never.md"), "seconds": 30}),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("within 1 s"));
    assert_eq!(
        b.ok(
            "wait_for_note",
            json!({"path": b.path("never.md"), "seconds": 0})
        ),
        json!(false)
    );
}

#[test]
fn an_irreversible_function_is_refused_without_leave() {
    let b = Bench::new();
    seed(&b);
    // Nothing listens on port 9 of loopback: were the call run, it would fail differently.
    let out = b.call(
        "publish_note",
        json!({"path": b.path("notes/a.md"), "url": "http://127.0.0.1:9/"}),
    );
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("irreversible") || text.contains("confirm"),
        "{text}"
    );
    assert!(!text.contains("URLError"), "{text}");
}

#[test]
fn a_path_outside_the_roots_is_refused_before_python_runs() {
    let b = Bench::new();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("keep.md");
    std::fs::write(&victim, "keep").unwrap();
    let out = b.call("delete_note", json!({"path": victim.to_str().unwrap()}));
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn a_read_outside_the_roots_is_refused_before_python_runs() {
    // Reads are the function's own opens too: a path argument must lead inside the roots.
    let b = Bench::new();
    seed(&b);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.md");
    std::fs::write(&secret, "the secret").unwrap();
    std::os::unix::fs::symlink(&secret, b.root.path().join("peek.md")).unwrap();
    std::fs::create_dir_all(b.root.path().join("a/b")).unwrap();
    std::os::unix::fs::symlink("../..", b.root.path().join("a/b/up")).unwrap();
    let through_up = format!(
        "{}/a/b/up/../{}/secret.md",
        b.root.path().display(),
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    for path in [
        secret.to_str().unwrap().to_string(),
        b.path("peek.md"),
        "../../../../../../../../etc/hostname".to_string(),
        through_up,
    ] {
        let out = b.call("read_note", json!({"path": path}));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{path}: {said}");
        assert!(!said.contains("the secret"), "{path}: {said}");
        assert!(said.contains("outside the allowed roots"), "{path}: {said}");
    }
    // Text a function may expand or strip into another path.
    for path in ["~/.bashrc", "$HOME/.bashrc", " /etc/hostname"] {
        let out = b.call("read_note", json!({"path": path}));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{path}: {said}");
        assert!(
            said.contains("the function opens it itself"),
            "{path}: {said}"
        );
    }
    // A FIFO would hold the call until its timeout.
    let fifo = b.root.path().join("notes/pipe.md");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = b.call("read_note", json!({"path": fifo.to_str().unwrap()}));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("FIFO"), "{said}");
    std::fs::remove_file(&fifo).unwrap();
    // Read the way a function that normalises the text first would (`x/../door/…` with
    // `x -> notes/deep`): `door` leads out.
    std::os::unix::fs::symlink("notes/deep", b.root.path().join("x")).unwrap();
    std::os::unix::fs::symlink(outside.path(), b.root.path().join("door")).unwrap();
    let out = b.call("read_note", json!({"path": b.path("x/../door/secret.md")}));
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("the secret"));
    // A control character Python's strip() removes.
    let out = b.call("read_note", json!({"path": "\u{1f}/etc/hostname"}));
    assert!(!out.status.success());
    // A pattern joined under the folder it lists, and a wildcard that reads through a link.
    for (root, pattern) in [(b.path("."), "door/*"), (b.path("."), "*/secret.md")] {
        let out = b.call("list_notes", json!({"root": root, "pattern": pattern}));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{pattern}: {said}");
        assert!(
            said.contains("outside the allowed roots"),
            "{pattern}: {said}"
        );
    }
    // A glob's pattern is a path of the read too.
    let out = b.call(
        "list_notes",
        json!({"root": b.path("notes"), "pattern": "../../*"}),
    );
    assert!(!out.status.success());
    assert_eq!(
        b.ok("read_note", json!({"path": "notes/a.md"})),
        json!("alpha")
    );
}

/// A path the function expands as a glob names no file: its snapshot was of the text
/// `notes/*.tmp` (absent), the function deleted what it matched, and undo said "done" with the
/// files lost. The directory the first wildcard lists is kept, so undo puts them back.
#[test]
fn a_glob_a_function_expands_is_undone_with_what_it_matched() {
    let b = Bench::new();
    seed(&b);
    std::fs::write(b.root.path().join("notes/x.tmp"), "scratch x").unwrap();
    std::fs::write(b.root.path().join("notes/deep/y.tmp"), [0u8, 1, 2]).unwrap();
    std::fs::set_permissions(
        b.root.path().join("notes/x.tmp"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let before = b.tree();
    for (pattern, gone) in [
        (b.path("notes/*.tmp"), 1),
        ("notes/*/[xy].tmp".to_string(), 1),
    ] {
        assert_eq!(
            b.ok("sweep_notes", json!({ "pattern": pattern })),
            json!(gone)
        );
    }
    assert!(!b.root.path().join("notes/x.tmp").exists());
    assert!(!b.root.path().join("notes/deep/y.tmp").exists());
    let planned = b.run(&["undo", "2", "--dry-run"], &[]);
    assert!(planned.status.success(), "{planned:?}");
    b.undo(2);
    assert_eq!(b.tree(), before);
}

#[test]
fn a_relative_path_means_the_same_to_python_as_to_the_runtime() {
    // The runtime takes it relative to the first root, and the function runs there.
    let b = Bench::new();
    seed(&b);
    let before = b.tree();
    b.ok(
        "write_note",
        json!({"path": "notes/rel.md", "text": "made"}),
    );
    assert_eq!(
        std::fs::read_to_string(b.root.path().join("notes/rel.md")).unwrap(),
        "made"
    );
    b.undo(1);
    assert_eq!(b.tree(), before);
}

#[test]
fn python_writes_through_links_only_where_undo_can_follow() {
    let b = Bench::new();
    seed(&b);
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("keep.md");
    std::fs::write(&victim, "keep").unwrap();
    // A link out of the roots: refused before Python runs (it would write the file it names).
    std::os::unix::fs::symlink(&victim, b.root.path().join("out.md")).unwrap();
    let out = b.call("write_note", json!({"path": b.path("out.md"), "text": "x"}));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("outside the allowed roots"), "{said}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    std::fs::remove_file(b.root.path().join("out.md")).unwrap();

    // Removing a root itself: undo could not write back into it, so the call needs leave.
    let out = b.call(
        "purge_folder",
        json!({"root": b.root.path().to_str().unwrap()}),
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("an allowed root itself"), "{said}");
    assert!(b.root.path().join("notes/a.md").exists());

    // A link inside them: the note it names is kept with it, and undo puts it back.
    std::os::unix::fs::symlink("notes/a.md", b.root.path().join("alias.md")).unwrap();
    let before = b.tree();
    b.ok(
        "write_note",
        json!({"path": b.path("alias.md"), "text": "changed"}),
    );
    assert_eq!(
        std::fs::read_to_string(b.root.path().join("notes/a.md")).unwrap(),
        "changed"
    );
    b.undo(1);
    assert_eq!(b.tree(), before);
}

/// The process's parent pid and state, from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let mut parts = rest.split_whitespace();
    let state = parts.next()?.chars().next()?;
    let ppid = parts.next()?.parse().ok()?;
    Some((ppid, state))
}

#[test]
fn a_worker_ends_when_the_process_that_started_it_is_killed() {
    let b = Bench::new();
    seed(&b);
    let mut cmd = Command::new(BIN);
    cmd.args([
        "call",
        "wait_for_note",
        "--args",
        &json!({"path": b.path("never.md"), "seconds": 120}).to_string(),
    ])
    .arg("--state-dir")
    .arg(b.state.path())
    .arg("--root")
    .arg(b.root.path())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut parent = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let worker = loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let is_worker = String::from_utf8_lossy(&cmdline).contains("aifirst_python_worker");
            (is_worker && proc_stat(pid)?.0 == parent.id()).then_some(pid)
        });
        if let Some(pid) = found {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no worker started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // Killed mid-call (the call is sent as soon as the worker is ready), with no chance to stop
    // its worker.
    std::thread::sleep(std::time::Duration::from_secs(2));
    parent.kill().unwrap();
    parent.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proc_stat(worker).is_some_and(|(_, state)| state != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker {worker} outlived the process that started it"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A Python with the official MCP SDK (`target/venv`, made by `.ci/setup`).
fn sdk_python() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/python");
    assert!(
        venv.exists(),
        "the MCP tests need the Python MCP SDK: run `bash .ci/setup` (it makes target/venv)"
    );
    venv
}

/// The official MCP SDK drives `pyrun serve` over stdio (airun's session script records what it
/// saw): the Python functions are listed with their annotations, called, refused when
/// irreversible, and undone through the `undo` tool; then a new process undoes the rest.
#[test]
fn the_official_mcp_sdk_calls_and_undoes_python_functions() {
    let b = Bench::new();
    seed(&b);
    let before = b.tree();
    let plan = json!({
        "command": [BIN, "serve", "--root", b.root.path(), "--state-dir", b.state.path()],
        "cwd": b.state.path(),
        "mode": "auto",
        "roots": null,
        "calls": [
            ["write_note", {"path": b.path("notes/a.md"), "text": "rewritten"}],
            ["describe_note", {"path": b.path("notes/a.md")}],
            ["read_note", {"path": b.path("missing.md")}],
            ["publish_note", {"path": b.path("notes/a.md"), "url": "http://127.0.0.1:9/"}],
            ["purge_folder", {"root": b.path("notes")}],
            ["undo", {"steps": 1}],
            ["write_note", {"path": b.path("notes/c.md"), "text": "c"}],
        ],
    });
    let plan_file = b.state.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let out = Command::new(sdk_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../airun/tests/fs_session.py"))
        .arg(&plan_file)
        .current_dir(b.state.path())
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
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tools = &seen["tools"];
    assert_eq!(
        tools["read_note"]["annotations"]["readOnlyHint"], true,
        "{tools}"
    );
    assert_eq!(
        tools["purge_folder"]["annotations"]["destructiveHint"],
        true
    );
    assert_eq!(
        tools["write_note"]["inputSchema"]["properties"]["mode"]["enum"],
        json!(["w", "a"])
    );
    let r = &seen["results"];
    let text = |i: usize| {
        r[i]["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_ne!(r[0]["isError"], true, "{}", r[0]);
    assert_eq!(text(0), "9");
    assert_ne!(r[1]["isError"], true, "{}", r[1]);
    assert!(text(1).contains("\"mood\""), "{}", r[1]);
    assert_eq!(r[2]["isError"], true, "{}", r[2]);
    assert!(text(2).contains("FileNotFoundError"), "{}", r[2]);
    assert_eq!(r[3]["isError"], true, "{}", r[3]);
    assert!(!text(3).contains("URLError"), "{}", r[3]);
    assert_ne!(r[4]["isError"], true, "{}", r[4]);
    assert_ne!(r[5]["isError"], true, "{}", r[5]);
    assert!(
        b.root.path().join("notes/deep/b.bin").exists(),
        "the purge was undone"
    );
    assert_ne!(r[6]["isError"], true, "{}", r[6]);
    // A new process undoes the other two writes: the tree is as it was.
    b.undo(2);
    assert_eq!(b.tree(), before);
}
