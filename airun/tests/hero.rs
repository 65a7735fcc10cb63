//! The hero scenario's pytest suite (tests/test_hero_scenario.py), run with the airun this build
//! made: the README's test command runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn the_hero_scenario_passes_step_by_step() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(common::python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo.join("tests/test_hero_scenario.py"))
        .env("AIRUN", env!("CARGO_BIN_EXE_airun"))
        .env_remove("AIFIRST_STATE_DIR")
        .env_remove("AIFIRST_SESSION")
        .env_remove("AIFIRST_ROOTS")
        .current_dir(&repo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pytest failed (needs pytest in target/venv: `bash .ci/setup`)\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every test ran: a suite that collected nothing must not pass.
    assert!(stdout.contains("13 passed"), "{stdout}");
}
