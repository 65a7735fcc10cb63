//! The system tools end to end, called through the registry as a server calls them, with real
//! processes: only allowed programs start (no shell unless one is listed), in a directory inside
//! the roots; a timeout kills the whole process group; output is capped and redacted; the time
//! tools answer like the official MCP `time` server.

#![cfg(all(feature = "sys", unix))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aifirst::{Ctx, Redactor, Registry, Sandbox, ToolError, UndoDecl, UndoKind, Value};
use aifirst_stdlib as _;
use serde_json::json;

/// A GitHub token from the redaction corpus (runtime/tests/data/secrets.jsonl).
const GITHUB_TOKEN: &str = "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";

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    registry: Registry,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    Bench {
        _dir: dir,
        root,
        outside,
        registry: Registry::new().unwrap(),
    }
}

impl Bench {
    /// A context whose sandbox has this bench's root and these allowed programs.
    fn ctx(&self, commands: &[&str]) -> Ctx {
        Ctx::with_sandbox(Arc::new(
            Sandbox::new()
                .with_roots(std::slice::from_ref(&self.root))
                .unwrap()
                .with_commands(commands.iter().map(|c| c.to_string()).collect()),
        ))
    }

    /// An engine on this bench's root, these allowed programs and a state directory outside.
    fn engine(&self, commands: &[&str]) -> aifirst::Engine {
        aifirst::Engine::open(
            Registry::new().unwrap(),
            aifirst::Policy::default(),
            &self.outside.join("state"),
        )
        .unwrap()
        .with_sandbox(
            Sandbox::new()
                .with_roots(std::slice::from_ref(&self.root))
                .unwrap()
                .with_commands(commands.iter().map(|c| c.to_string()).collect()),
        )
    }

    async fn call(&self, commands: &[&str], tool: &str, args: Value) -> Result<Value, ToolError> {
        call_in(&self.registry, &self.ctx(commands), tool, args).await
    }

    async fn ok(&self, commands: &[&str], tool: &str, args: Value) -> Value {
        match self.call(commands, tool, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{tool} {args}: {e:?}"),
        }
    }

    async fn err(&self, commands: &[&str], tool: &str, args: Value) -> ToolError {
        match self.call(commands, tool, args.clone()).await {
            Err(e) => e,
            Ok(v) => panic!("{tool} {args} succeeded: {v}"),
        }
    }
}

async fn call_in(
    registry: &Registry,
    ctx: &Ctx,
    tool: &str,
    args: Value,
) -> Result<Value, ToolError> {
    let def = registry
        .get(tool)
        .unwrap_or_else(|| panic!("`{tool}` is not registered"));
    def.invoke(ctx, args).await
}

fn not_allowed(e: &ToolError) -> bool {
    matches!(e, ToolError::NotAllowed { .. })
}

fn invalid(e: &ToolError) -> bool {
    matches!(e, ToolError::InvalidArguments { .. })
}

fn message(e: &ToolError) -> String {
    e.to_string()
}

/// Whether process `pid` has ended: gone, or a zombie nobody has reaped yet. Waits up to five
/// seconds for it (an orphan is reaped by whoever adopts it, in its own time).
#[cfg(target_os = "linux")]
fn ended(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.trim_start().chars().next())
            });
        match state {
            None | Some('Z') | Some('X') => return true,
            Some(_) if Instant::now() >= deadline => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn read_pid(path: &Path) -> u32 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

#[test]
fn every_tool_is_registered_with_its_arguments_and_annotations() {
    let registry = Registry::new().unwrap();
    for name in [
        "run_command",
        "get_current_time",
        "convert_time",
        "system_info",
        "list_processes",
        "get_env",
        "which",
    ] {
        assert!(registry.get(name).is_some(), "{name} is missing");
    }
    let props = |tool: &str| {
        let schema = registry.get(tool).unwrap().input_schema();
        let v = serde_json::to_value(&schema).unwrap();
        v["properties"].as_object().cloned().unwrap_or_default()
    };
    // The official `time` server's argument names.
    assert!(props("get_current_time").contains_key("timezone"));
    let convert = props("convert_time");
    for key in ["source_timezone", "time", "target_timezone"] {
        assert!(convert.contains_key(key), "convert_time lacks {key}");
    }
    let run = props("run_command");
    for key in [
        "program",
        "args",
        "cwd",
        "env",
        "stdin",
        "timeout_secs",
        "undo_paths",
    ] {
        assert!(run.contains_key(key), "run_command lacks {key}");
    }

    // run_command changes things and may reach anything; the rest only look.
    let def = registry.get("run_command").unwrap();
    let a = def.annotations();
    assert_eq!(a.read_only_hint, Some(false));
    assert_eq!(a.destructive_hint, Some(true));
    assert_eq!(a.idempotent_hint, Some(false));
    assert_eq!(a.open_world_hint, Some(true));
    match def.undo {
        UndoDecl::Plan(_) => {
            let plan = def.undo.plan().unwrap();
            assert_eq!(plan.kind, UndoKind::FileSnapshot);
            assert_eq!(plan.paths.len(), 1);
        }
        other => panic!("run_command's undo is not a file snapshot: {other:?}"),
    }
    for name in [
        "get_current_time",
        "convert_time",
        "system_info",
        "list_processes",
        "get_env",
        "which",
    ] {
        let a = registry.get(name).unwrap().annotations();
        assert_eq!(a.read_only_hint, Some(true), "{name}");
        assert_eq!(a.open_world_hint, Some(false), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// run_command: what may run

#[tokio::test]
async fn a_program_not_allowed_is_refused_before_anything_runs() {
    let b = bench();
    let made = b.root.join("made");
    let args = json!({"program": "touch", "args": [made.display().to_string()]});

    // Nothing allowed (the default).
    let e = b.err(&[], "run_command", args.clone()).await;
    assert!(not_allowed(&e), "{e:?}");
    let m = message(&e);
    assert!(
        m.contains("allowed_commands") && m.contains("airun.toml"),
        "{m}"
    );
    // Something else allowed.
    let e = b.err(&["echo"], "run_command", args.clone()).await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(message(&e).contains("echo"), "{e}");
    // Through the engine, with no undo_paths (an irreversible call): refused as not allowed,
    // not first put to the user for confirmation.
    let engine = b.engine(&["echo"]);
    let e = engine
        .call("s", "run_command", args, aifirst::CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, aifirst::CallError::Tool(ToolError::NotAllowed { .. })),
        "{e:?}"
    );
    assert!(engine.history("s").unwrap().is_empty(), "no step");
    assert!(!made.exists(), "the refused program ran");
}

#[tokio::test]
async fn no_shell_runs_unless_one_is_allowed() {
    let b = bench();
    let made = b.root.join("made");
    let script = format!("touch {}", made.display());
    for program in ["sh", "bash", "/bin/sh"] {
        let e = b
            .err(
                &["touch", "echo"],
                "run_command",
                json!({"program": program, "args": ["-c", script]}),
            )
            .await;
        assert!(not_allowed(&e), "{program}: {e:?}");
    }
    assert!(!made.exists(), "a shell ran");

    // An argument is passed as it is: a `;` or `$(…)` in it means nothing to `echo`.
    let out = b
        .ok(
            &["echo"],
            "run_command",
            json!({"program": "echo", "args": ["a; touch made", "$(touch made)", "*"]}),
        )
        .await;
    assert_eq!(out["stdout"], "a; touch made $(touch made) *\n");
    assert!(!made.exists());
}

#[tokio::test]
async fn a_path_runs_only_when_listed_exactly() {
    let b = bench();
    let e = b
        .err(&["true"], "run_command", json!({"program": "./true"}))
        .await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(message(&e).contains("relative path"), "{e}");
    let e = b
        .err(
            &["true"],
            "run_command",
            json!({"program": "/usr/bin/true"}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");

    // Listed as an absolute path: runs by that path, or by its bare name.
    let sh = ["/bin/sh", "/usr/bin/sh"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("no sh");
    for program in [sh, "sh"] {
        let out = b
            .ok(
                &[sh],
                "run_command",
                json!({"program": program, "args": ["-c", "echo ok"]}),
            )
            .await;
        assert_eq!(out["stdout"], "ok\n", "{program}");
        assert_eq!(out["program"], sh);
    }
}

#[tokio::test]
async fn a_program_inside_a_root_never_runs() {
    let b = bench();
    // The model can write there: an allowed path inside the root could be anything.
    let hello = b.root.join("bin").join("hello");
    std::fs::create_dir_all(hello.parent().unwrap()).unwrap();
    std::fs::write(&hello, "#!/bin/sh\ntouch ran\necho hi\n").unwrap();
    std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
    let listed = hello.display().to_string();
    for program in [listed.as_str(), "hello"] {
        let e = b
            .err(
                &[listed.as_str()],
                "run_command",
                json!({"program": program}),
            )
            .await;
        assert!(not_allowed(&e), "{program}: {e:?}");
        let m = message(&e);
        assert!(
            m.contains("inside the allowed directory") && m.contains("allowed_commands"),
            "{m}"
        );
    }
    assert!(
        !b.root.join("ran").exists(),
        "the program inside the root ran"
    );
    let v = b
        .ok(&[listed.as_str()], "which", json!({"program": "hello"}))
        .await;
    assert_eq!(v["allowed"], false, "{v}");
}

#[tokio::test]
async fn an_allowed_program_runs_and_reports_its_exit() {
    let b = bench();
    let out = b
        .ok(
            &["sh"],
            "run_command",
            json!({"program": "sh", "args": ["-c", "echo out; echo oops >&2; exit 3"]}),
        )
        .await;
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["signal"], Value::Null);
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["stdout"], "out\n");
    assert_eq!(out["stderr"], "oops\n");
    assert_eq!(out["stdout_truncated"], false);
    assert!(out["program"].as_str().unwrap().ends_with("/sh"), "{out}");
    assert!(out["duration_ms"].as_u64().is_some());
}

// ---------------------------------------------------------------------------------------------
// run_command: where and with what

#[tokio::test]
async fn it_runs_in_the_first_root_or_in_cwd_inside_the_roots() {
    let b = bench();
    let real_root = b.root.canonicalize().unwrap();
    let out = b
        .ok(&["pwd"], "run_command", json!({"program": "pwd"}))
        .await;
    assert_eq!(out["stdout"], format!("{}\n", real_root.display()));
    let out = b
        .ok(
            &["pwd"],
            "run_command",
            json!({"program": "pwd", "cwd": "sub"}),
        )
        .await;
    assert_eq!(
        out["stdout"],
        format!("{}\n", real_root.join("sub").display())
    );

    // Outside the roots, by path, by `..` or through a link: refused.
    let e = b
        .err(
            &["pwd"],
            "run_command",
            json!({"program": "pwd", "cwd": b.outside.display().to_string()}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    assert!(message(&e).contains("cwd"), "{e}");
    let e = b
        .err(
            &["pwd"],
            "run_command",
            json!({"program": "pwd", "cwd": "../outside"}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    std::os::unix::fs::symlink(&b.outside, b.root.join("door")).unwrap();
    let e = b
        .err(
            &["pwd"],
            "run_command",
            json!({"program": "pwd", "cwd": "door"}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    // Not a directory.
    std::fs::write(b.root.join("file.txt"), "x").unwrap();
    let e = b
        .err(
            &["pwd"],
            "run_command",
            json!({"program": "pwd", "cwd": "file.txt"}),
        )
        .await;
    assert!(message(&e).contains("not a directory"), "{e}");
}

#[tokio::test]
async fn no_roots_means_no_program_runs() {
    let registry = Registry::new().unwrap();
    let ctx = Ctx::with_sandbox(Arc::new(
        Sandbox::new().with_commands(vec!["true".to_string()]),
    ));
    let e = call_in(&registry, &ctx, "run_command", json!({"program": "true"}))
        .await
        .unwrap_err();
    assert!(not_allowed(&e), "{e:?}");
    assert!(message(&e).contains("allowed_roots"), "{e}");
}

#[tokio::test]
async fn stdin_is_passed_through() {
    let b = bench();
    let out = b
        .ok(
            &["cat"],
            "run_command",
            json!({"program": "cat", "stdin": "hello\nworld"}),
        )
        .await;
    assert_eq!(out["stdout"], "hello\nworld");
    // Without `stdin` the program reads nothing (and does not wait for input).
    let out = b
        .ok(&["cat"], "run_command", json!({"program": "cat"}))
        .await;
    assert_eq!(out["stdout"], "");
    assert_eq!(out["exit_code"], 0);
}

#[tokio::test]
async fn the_environment_is_minimal_plus_what_the_call_sets() {
    let b = bench();
    // A variable of this process (named uniquely: tests run in parallel) is not passed on.
    let leaked = format!("AIFIRST_SYS_TEST_{}_LEAK", std::process::id());
    std::env::set_var(&leaked, "should not be seen");
    let out = b
        .ok(
            &["printenv"],
            "run_command",
            json!({"program": "printenv", "args": [leaked]}),
        )
        .await;
    assert_eq!(out["stdout"], "");
    assert_eq!(out["exit_code"], 1);

    let out = b
        .ok(
            &["printenv"],
            "run_command",
            json!({"program": "printenv", "args": ["GREETING", "TERM"], "env": {"GREETING": "hi there"}}),
        )
        .await;
    assert_eq!(out["stdout"], "hi there\ndumb\n");

    let e = b
        .err(
            &["printenv"],
            "run_command",
            json!({"program": "printenv", "env": {"LD_PRELOAD": "/tmp/evil.so"}}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    let e = b
        .err(
            &["printenv"],
            "run_command",
            json!({"program": "printenv", "env": {"A=B": "x"}}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");
}

#[tokio::test]
async fn the_call_cannot_set_path_or_variables_that_run_other_code() {
    let b = bench();
    let made = b.root.join("made");
    // PATH: a name would then lead wherever the call says (a directory the model wrote).
    let e = b
        .err(
            &["sh"],
            "run_command",
            json!({"program": "sh", "args": ["-c", "true"], "env": {"PATH": b.root.display().to_string()}}),
        )
        .await;
    assert!(not_allowed(&e), "{e:?}");
    let m = message(&e);
    assert!(m.contains("PATH") && m.contains("allowed_commands"), "{m}");

    // BASH_ENV (and ENV): a file a shell runs first.
    std::fs::write(
        b.root.join("evil.sh"),
        format!("touch {}\n", made.display()),
    )
    .unwrap();
    for name in [
        "BASH_ENV",
        "ENV",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "GIT_SSH_COMMAND",
    ] {
        let e = b
            .err(
                &["sh"],
                "run_command",
                json!({"program": "sh", "args": ["-c", "true"], "env": {name: "evil.sh"}}),
            )
            .await;
        assert!(not_allowed(&e), "{name}: {e:?}");
        assert!(message(&e).contains(name), "{e}");
    }
    assert!(!made.exists(), "a refused call ran");

    // Names a shell could not set are refused as bad arguments.
    let e = b
        .err(
            &["printenv"],
            "run_command",
            json!({"program": "printenv", "env": {"A-B": "x"}}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");
}

#[tokio::test]
async fn bad_arguments_are_refused() {
    let b = bench();
    for args in [
        json!({"program": ""}),
        json!({"program": "echo", "args": ["a\u{0}b"]}),
        json!({"program": "echo", "timeout_secs": 0}),
        json!({"program": "echo", "timeout_secs": 3601}),
    ] {
        let e = b.err(&["echo"], "run_command", args.clone()).await;
        assert!(invalid(&e), "{args}: {e:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// run_command: output and lifetime

#[tokio::test]
async fn output_is_capped_at_one_mebibyte() {
    let b = bench();
    let out = b
        .ok(
            &["sh"],
            "run_command",
            json!({"program": "sh", "args": ["-c", "head -c 3000000 /dev/zero | tr '\\0' a"]}),
        )
        .await;
    let stdout = out["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 1024 * 1024);
    assert!(stdout.bytes().all(|c| c == b'a'));
    assert_eq!(out["stdout_truncated"], true);
    assert_eq!(out["stderr_truncated"], false);
    // The program was not stopped by the cap: it wrote everything and ended normally.
    assert_eq!(out["exit_code"], 0);
}

#[tokio::test]
async fn the_operators_redaction_rules_apply_to_the_output() {
    let b = bench();
    let ctx = Ctx::with_sandbox(Arc::new(
        Sandbox::new()
            .with_roots(std::slice::from_ref(&b.root))
            .unwrap()
            .with_commands(vec!["echo".to_string()])
            .with_redactor(Redactor::default().with_secret("s3cr3t-value-xyz")),
    ));
    let out = call_in(
        &b.registry,
        &ctx,
        "run_command",
        json!({"program": "echo", "args": ["the value is s3cr3t-value-xyz"]}),
    )
    .await
    .unwrap();
    let stdout = out["stdout"].as_str().unwrap();
    assert!(!stdout.contains("s3cr3t-value-xyz"), "{stdout}");
    assert!(stdout.contains("[REDACTED"), "{stdout}");
}

#[tokio::test]
async fn secrets_in_the_output_are_redacted() {
    let b = bench();
    let out = b
        .ok(
            &["echo"],
            "run_command",
            json!({"program": "echo", "args": [format!("token: {GITHUB_TOKEN}")]}),
        )
        .await;
    let stdout = out["stdout"].as_str().unwrap();
    assert!(!stdout.contains(GITHUB_TOKEN), "{stdout}");
    assert!(stdout.contains("[REDACTED"), "{stdout}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let b = bench();
    let started = Instant::now();
    let out = b
        .ok(
            &["sh"],
            "run_command",
            json!({
                "program": "sh",
                "args": ["-c", "echo $$ > leader.pid; sleep 30 & echo $! > background.pid; sleep 30"],
                "timeout_secs": 1
            }),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["exit_code"], Value::Null);
    assert_eq!(out["signal"], 9);
    for file in ["leader.pid", "background.pid"] {
        let pid = read_pid(&b.root.join(file));
        assert!(ended(pid), "{file}: process {pid} is still running");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn what_a_program_leaves_in_the_background_is_stopped_when_it_exits() {
    let b = bench();
    let started = Instant::now();
    let out = b
        .ok(
            &["sh"],
            "run_command",
            json!({"program": "sh", "args": ["-c", "sleep 30 & echo $! > background.pid; echo done"]}),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["stdout"], "done\n");
    let pid = read_pid(&b.root.join("background.pid"));
    assert!(ended(pid), "process {pid} is still running");
}

/// Whether `setsid` (util-linux, busybox) is installed.
#[cfg(target_os = "linux")]
fn has_setsid() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "command -v setsid"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_process_that_leaves_the_group_does_not_hold_up_the_call() {
    if !has_setsid() {
        eprintln!("skipped: no setsid here");
        return;
    }
    let b = bench();
    let started = Instant::now();
    // The detached `sleep` keeps stdout and stderr open and outlives the group's kill.
    let out = b
        .ok(
            &["sh"],
            "run_command",
            json!({
                "program": "sh",
                "args": ["-c", "setsid sleep 30 & echo $! > stray.pid; echo started; sleep 30"],
                "timeout_secs": 2
            }),
        )
        .await;
    let took = started.elapsed();

    // Leave nothing behind: the stray sleep is killed by its pid (checked to be that sleep).
    let pid = read_pid(&b.root.join("stray.pid"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains("sleep") {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }

    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(out["timed_out"], true, "{out}");
    assert_eq!(out["stdout"], "started\n", "{out}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_dropped_call_stops_its_program() {
    let b = bench();
    let ctx = b.ctx(&["sh"]);
    let call = call_in(
        &b.registry,
        &ctx,
        "run_command",
        json!({"program": "sh", "args": ["-c", "echo $$ > leader.pid; sleep 30"]}),
    );
    let r = tokio::time::timeout(Duration::from_secs(2), call).await;
    assert!(r.is_err(), "the call ended on its own: {r:?}");
    let pid = read_pid(&b.root.join("leader.pid"));
    assert!(ended(pid), "process {pid} outlived its call");
}

// ---------------------------------------------------------------------------------------------
// Time

#[tokio::test]
async fn current_time_in_utc() {
    let b = bench();
    let v = b
        .ok(&[], "get_current_time", json!({"timezone": "UTC"}))
        .await;
    assert_eq!(v["timezone"], "UTC");
    assert_eq!(v["is_dst"], false);
    let dt = v["datetime"].as_str().unwrap();
    assert!(dt.ends_with("+00:00"), "{dt}");
    assert_eq!(dt.len(), "2025-01-01T00:00:00+00:00".len(), "{dt}");
    let days = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    assert!(days.contains(&v["day_of_week"].as_str().unwrap()), "{v}");
}

#[tokio::test]
async fn convert_time_london_to_tokyo() {
    let b = bench();
    let v = b
        .ok(
            &[],
            "convert_time",
            json!({"source_timezone": "Europe/London", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
        )
        .await;
    assert_eq!(v["source"]["timezone"], "Europe/London");
    assert_eq!(v["target"]["timezone"], "Asia/Tokyo");
    let source = v["source"]["datetime"].as_str().unwrap();
    assert!(source.contains("T12:00:00"), "{source}");
    let target = v["target"]["datetime"].as_str().unwrap();
    assert!(target.ends_with("+09:00"), "{target}");
    assert_eq!(v["target"]["is_dst"], false);
    // London is on GMT or, in summer, BST (+1).
    if v["source"]["is_dst"] == true {
        assert!(source.ends_with("+01:00"), "{source}");
        assert_eq!(v["time_difference"], "+8.0h");
        assert!(target.contains("T20:00:00"), "{target}");
    } else {
        assert!(source.ends_with("+00:00"), "{source}");
        assert_eq!(v["time_difference"], "+9.0h");
        assert!(target.contains("T21:00:00"), "{target}");
    }
}

#[tokio::test]
async fn convert_time_with_fractional_offsets() {
    let b = bench();
    let v = b
        .ok(
            &[],
            "convert_time",
            json!({"source_timezone": "UTC", "time": "00:00", "target_timezone": "Asia/Kathmandu"}),
        )
        .await;
    assert_eq!(v["time_difference"], "+5.75h");
    assert!(v["target"]["datetime"]
        .as_str()
        .unwrap()
        .ends_with("T05:45:00+05:45"));
    let v = b
        .ok(
            &[],
            "convert_time",
            json!({"source_timezone": "Asia/Kolkata", "time": "9:30", "target_timezone": "UTC"}),
        )
        .await;
    assert_eq!(v["time_difference"], "-5.5h");
    assert!(v["target"]["datetime"]
        .as_str()
        .unwrap()
        .ends_with("T04:00:00+00:00"));
}

#[tokio::test]
async fn unknown_zones_and_bad_times_are_invalid_arguments() {
    let b = bench();
    let e = b
        .err(
            &[],
            "get_current_time",
            json!({"timezone": "Mars/Olympus_Mons"}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");
    let m = message(&e);
    assert!(
        m.contains("Mars/Olympus_Mons") && m.contains("Europe/London"),
        "{m}"
    );
    let e = b
        .err(
            &[],
            "convert_time",
            json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Nowhere/City"}),
        )
        .await;
    assert!(invalid(&e), "{e:?}");
    for time in ["25:00", "12:60", "noon", "12:00:00", ""] {
        let e = b
            .err(
                &[],
                "convert_time",
                json!({"source_timezone": "UTC", "time": time, "target_timezone": "Asia/Tokyo"}),
            )
            .await;
        assert!(invalid(&e), "{time}: {e:?}");
        assert!(message(&e).contains("HH:MM"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// The machine

#[tokio::test]
async fn system_info_describes_the_machine_and_the_roots_disks() {
    let b = bench();
    let v = b.ok(&[], "system_info", json!({})).await;
    assert!(v["cpus"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["cpus_available"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["arch"], std::env::consts::ARCH);
    assert_eq!(v["os"], std::env::consts::OS);
    assert!(!v["kernel"].as_str().unwrap().is_empty());
    let roots = v["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{v}");
    assert_eq!(roots[0]["path"], b.root.display().to_string());
    assert!(roots[0]["total_bytes"].as_u64().unwrap() > 0, "{v}");
    #[cfg(target_os = "linux")]
    {
        let total = v["memory_total_bytes"].as_u64().unwrap();
        let available = v["memory_available_bytes"].as_u64().unwrap();
        assert!(total > 0 && available <= total, "{v}");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn list_processes_includes_this_test() {
    let b = bench();
    let me = std::process::id();
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let v = b
        .ok(
            &[],
            "list_processes",
            json!({"filter": exe_name, "limit": 5000}),
        )
        .await;
    let procs = v["processes"].as_array().unwrap();
    let mine = procs
        .iter()
        .find(|p| p["pid"] == me)
        .unwrap_or_else(|| panic!("pid {me} is not listed: {v}"));
    assert!(
        mine["command"].as_str().unwrap().contains(&exe_name),
        "{mine}"
    );
    assert!(mine["rss_bytes"].as_u64().unwrap() > 0, "{mine}");
    assert!(!mine["state"].as_str().unwrap().is_empty(), "{mine}");
    // Ordered by pid.
    let pids: Vec<u64> = procs.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert!(pids.windows(2).all(|w| w[0] < w[1]), "{pids:?}");

    // A limit cuts the list and says so.
    let v = b.ok(&[], "list_processes", json!({"limit": 1})).await;
    assert_eq!(v["processes"].as_array().unwrap().len(), 1);
    assert_eq!(v["truncated"], true, "{v}");
}

#[tokio::test]
async fn get_env_withholds_secrets() {
    let b = bench();
    let id = std::process::id();
    // Unique names: tests run in parallel in one process.
    let secret_name = format!("AIFIRST_SYS_TEST_{id}_PASSWORD");
    let plain_name = format!("AIFIRST_SYS_TEST_{id}_GREETING");
    let looks_secret = format!("AIFIRST_SYS_TEST_{id}_NOTE");
    std::env::set_var(&secret_name, "hunter2-is-not-a-password");
    std::env::set_var(&plain_name, "hello");
    std::env::set_var(&looks_secret, format!("use {GITHUB_TOKEN} for the API"));

    let v = b.ok(&[], "get_env", json!({"name": secret_name})).await;
    assert_eq!(v["value"], "[REDACTED]");
    assert_eq!(v["redacted"], true);
    let v = b.ok(&[], "get_env", json!({"name": looks_secret})).await;
    assert_eq!(v["value"], "[REDACTED]");
    assert_eq!(v["redacted"], true);
    let v = b.ok(&[], "get_env", json!({"name": plain_name})).await;
    assert_eq!(v["value"], "hello");
    assert_eq!(v["redacted"], false);
    let v = b
        .ok(
            &[],
            "get_env",
            json!({"name": format!("AIFIRST_SYS_TEST_{id}_UNSET")}),
        )
        .await;
    assert_eq!(v["value"], Value::Null);
    assert_eq!(v["redacted"], false);

    let e = b.err(&[], "get_env", json!({"name": "A=B"})).await;
    assert!(invalid(&e), "{e:?}");
}

#[tokio::test]
async fn get_env_withholds_what_the_operator_names_a_secret() {
    let b = bench();
    // A unique name (tests run in parallel in one process), not named like a secret.
    let name = format!("AIFIRST_SYS_TEST_{}_PLAIN", std::process::id());
    std::env::set_var(&name, "s3cr3t-value-xyz");
    let ctx = Ctx::with_sandbox(Arc::new(
        Sandbox::new().with_redactor(Redactor::default().with_secret("s3cr3t-value-xyz")),
    ));
    let v = call_in(&b.registry, &ctx, "get_env", json!({"name": name}))
        .await
        .unwrap();
    assert_eq!(v["value"], "[REDACTED]", "{v}");
    assert_eq!(v["redacted"], true, "{v}");
}

#[tokio::test]
async fn which_finds_programs_and_says_whether_they_may_run() {
    let b = bench();
    let v = b.ok(&[], "which", json!({"program": "sh"})).await;
    let path = v["path"].as_str().unwrap();
    assert!(path.ends_with("/sh"), "{v}");
    assert!(Path::new(path).is_absolute(), "{v}");
    assert_eq!(v["allowed"], false);
    let v = b.ok(&["sh"], "which", json!({"program": "sh"})).await;
    assert_eq!(v["allowed"], true);
    let v = b
        .ok(
            &[],
            "which",
            json!({"program": "no-such-program-aifirst-test"}),
        )
        .await;
    assert_eq!(v["path"], Value::Null);
    assert_eq!(v["allowed"], false);
}

#[tokio::test]
async fn relative_undo_paths_with_another_cwd_are_refused_before_anything_runs() {
    // Relative undo paths are the first root's; with `cwd` elsewhere they would name other files
    // than the program changes, so undo would put back the wrong ones.
    let b = bench();
    let engine = b.engine(&["touch"]);
    let call = |args: Value| engine.call("s", "run_command", args, aifirst::CallOptions::default());
    let e =
        call(json!({"program": "touch", "args": ["f.md"], "cwd": "sub", "undo_paths": ["f.md"]}))
            .await
            .unwrap_err();
    assert!(
        matches!(
            e,
            aifirst::CallError::Tool(ToolError::InvalidArguments { .. })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("absolute"), "{e}");
    assert!(!b.root.join("sub/f.md").exists(), "the refused program ran");
    // Absolute undo paths, or a cwd that is the first root: run, and undo puts back what ran.
    let made = b.root.join("sub/f.md");
    call(json!({"program": "touch", "args": ["f.md"], "cwd": "sub",
                "undo_paths": [made.display().to_string()]}))
    .await
    .unwrap();
    assert!(made.exists());
    let r = engine
        .undo_with(
            "s",
            aifirst::UndoTarget::Steps(1),
            aifirst::UndoOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.undone.len(), 1, "{r:?}");
    assert!(!made.exists());
    call(json!({"program": "touch", "args": ["g.md"], "cwd": ".", "undo_paths": ["g.md"]}))
        .await
        .unwrap();
    assert!(b.root.join("g.md").exists());
}
