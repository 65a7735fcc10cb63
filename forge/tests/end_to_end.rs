//! From a description to a running, undoable toolset, with real parts: `forge import` the
//! petstore fixture, `cargo build` the crate it wrote, start a stateful petstore server on
//! 127.0.0.1, make calls through the generated binary and undo each from a new process, comparing
//! the server's state. And `forge new`: the scaffold builds and passes its own tests.
//!
//! The crates build in `target/generated` with this workspace's Cargo.lock, offline: the
//! dependencies are the ones the workspace already fetched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use petstore_server::Store;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// A crate outside the workspace does not get the workspace's `[profile.dev]`: these keep its
/// one-off builds as lean on disk as the workspace's (line tables only, no incremental cache).
const LEAN_BUILD: [(&str, &str); 2] = [
    ("CARGO_PROFILE_DEV_DEBUG", "line-tables-only"),
    ("CARGO_INCREMENTAL", "0"),
];

/// Builds (or tests) a crate outside the workspace, with the workspace's lock file.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target/generated"))
        .envs(LEAN_BUILD)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ------------------------------------------------------------------ a stateful petstore

/// The petstore the README's walk-through runs (`cargo run -p petstore-server`), on a free port.
fn serve() -> (String, Arc<Mutex<Store>>) {
    petstore_server::spawn("127.0.0.1:0").unwrap()
}

// ------------------------------------------------------------------ the tests

struct Petstore {
    bin: PathBuf,
    work: tempfile::TempDir,
    url: String,
}

impl Petstore {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(self.work.path())
            .env("PETSTORE_BASE_URL", &self.url)
            .env("PETSTORE_API_KEY", "test-key-123")
            .env_remove("AIFIRST_STATE_DIR")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[test]
fn imported_petstore_builds_runs_and_undoes_from_new_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let krate = tmp.path().join("petstore");
    let root = root();
    let status = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("import")
        .arg(root.join("fixtures/petstore/openapi.yaml"))
        .arg("-o")
        .arg(&krate)
        .arg("--runtime-path")
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    cargo(&krate, &["build", "--quiet"]);
    let bin = root.join("target/generated/debug/petstore");
    assert!(bin.is_file());
    // Its `call --help` example is one of its own capabilities.
    let help = Command::new(&bin)
        .args(["call", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("petstore call create_pet --args '{\"name\":\"…\"}'"),
        "{help}"
    );

    let (url, store) = serve();
    // A pet that was there before the agent came.
    store.lock().unwrap().pets.insert(
        "s1".into(),
        json!({"id": "s1", "name": "Seed", "tag": "fish", "status": "pending"}),
    );
    let p = Petstore {
        bin,
        work: tempfile::tempdir().unwrap(),
        url,
    };
    let state = || store.lock().unwrap().visible();

    let list = p.ok(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 10);

    // Calls, each in its own process; the state before each one is kept.
    let mut before = Vec::new();
    before.push(state());
    let rex = p.ok(&[
        "call",
        "create_pet",
        "--args",
        r#"{"name":"Rex","status":"available"}"#,
    ]);
    assert_eq!(rex["id"], "p1");
    before.push(state());
    p.ok(&[
        "call",
        "update_pet",
        "--args",
        r#"{"petId":"p1","status":"sold"}"#,
    ]);
    assert_eq!(store.lock().unwrap().pets["p1"]["status"], "sold");
    before.push(state());
    p.ok(&[
        "call",
        "replace_pet",
        "--args",
        r#"{"petId":"p1","name":"Max","tag":"dog"}"#,
    ]);
    before.push(state());
    p.ok(&["call", "star_pet", "--args", r#"{"petId":"p1"}"#]);
    assert!(store.lock().unwrap().stars.contains("p1"));
    before.push(state());
    p.ok(&["call", "delete_pet", "--args", r#"{"petId":"s1"}"#]);
    assert!(!store.lock().unwrap().pets.contains_key("s1"));
    // Created, then deleted: undoing the delete recreates it under a new id (POST), and undoing
    // the create must then remove that one — the journal keeps the alias.
    before.push(state());
    let tmp = p.ok(&[
        "call",
        "create_pet",
        "--args",
        r#"{"name":"Tmp","tag":"cat"}"#,
    ]);
    before.push(state());
    p.ok(&[
        "call",
        "delete_pet",
        "--args",
        &json!({"petId": tmp["id"]}).to_string(),
    ]);
    assert!(!store
        .lock()
        .unwrap()
        .pets
        .values()
        .any(|p| p["name"] == "Tmp"));
    assert!(store.lock().unwrap().keys.contains("test-key-123"));

    // An irreversible operation is refused without explicit permission, and never reaches
    // the server.
    let out = p.run(&[
        "call",
        "place_order",
        "--args",
        r#"{"petId":"p1","quantity":1}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be undone"));
    assert_eq!(store.lock().unwrap().orders, 0);

    // Undo each step from a new process, newest first: the server is back where it was.
    while let Some(expected) = before.pop() {
        let undo = p.ok(&["undo"]);
        assert_eq!(undo["undone"].as_array().unwrap().len(), 1, "{undo}");
        assert_eq!(state(), expected, "after undoing step {}", before.len() + 1);
    }
    assert_eq!(
        store.lock().unwrap().pets.len(),
        1,
        "only the seed pet is left"
    );

    // With explicit leave (in a session of its own, since it cannot be undone) it runs.
    p.ok(&[
        "--session",
        "orders",
        "--allow",
        "place_order",
        "call",
        "place_order",
        "--args",
        r#"{"petId":"p1","quantity":1}"#,
    ]);
    assert_eq!(store.lock().unwrap().orders, 1);
    let out = p.run(&["--session", "orders", "undo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be undone"));

    // The audit log saw all of it, intact.
    let v = p.ok(&["audit", "verify"]);
    assert_eq!(v["intact"], true);

    // allowed_hosts in airun.toml keeps calls to the hosts it names.
    let toml = p.work.path().join("airun.toml");
    std::fs::write(&toml, "allowed_hosts = [\"api.example.com\"]\n").unwrap();
    let out = p.run(&["call", "list_pets"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in allowed_hosts"));
    let port = p.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    std::fs::write(&toml, format!("allowed_hosts = [\"127.0.0.1:{port}\"]\n")).unwrap();
    p.ok(&["call", "list_pets"]);
}

#[test]
fn a_new_crate_builds_and_passes_its_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chores");
    let status = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(["new", "chores", "-o"])
        .arg(&dir)
        .arg("--runtime-path")
        .arg(root())
        .status()
        .unwrap();
    assert!(status.success());
    let out = cargo(&dir, &["test", "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 passed"), "{text}");
}

/// The Smart Importer demo the README tells users to run (examples/test_import_function.py):
/// inspect, import, build, call, refuse, undo, with its own assertions.
#[test]
fn the_python_smart_importer_demo_runs_as_documented() {
    let out = Command::new("python3")
        .arg(root().join("examples/test_import_function.py"))
        .current_dir(root())
        .env("FORGE", env!("CARGO_BIN_EXE_forge"))
        .env("CARGO_TARGET_DIR", root().join("target/generated"))
        .envs(LEAN_BUILD)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("byte-identical"), "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}
