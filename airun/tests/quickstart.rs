//! QUICKSTART.md, executed: every `sh` block, in order, in one shell (`set -euo pipefail`), so a
//! command there that breaks fails this test.
//!
//! The one block not run as written is the first, the build: cargo is already running these
//! tests, and a nested build in the same target directory would wait on cargo's lock. The test
//! checks that block is what the page says and puts the binaries this build made on PATH instead,
//! which is what the block does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion

use std::path::Path;
use std::process::Command;

const BUILD_BLOCK: &str =
    "cargo build -p airun -p aifirst-forge\nexport PATH=\"$PWD/target/debug:$PATH\"\n";

/// The `sh` blocks of a Markdown page.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

#[test]
fn every_shell_block_of_the_quickstart_works() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let page = std::fs::read_to_string(repo.join("QUICKSTART.md")).unwrap();
    let mut blocks = sh_blocks(&page);
    assert!(
        blocks.len() >= 6,
        "QUICKSTART.md has {} sh blocks",
        blocks.len()
    );
    assert_eq!(
        blocks[0], BUILD_BLOCK,
        "the build block changed: update this test"
    );
    let airun = Path::new(env!("CARGO_BIN_EXE_airun"));
    let bin = airun.parent().unwrap();
    assert!(
        bin.join("forge").is_file(),
        "forge is not built beside airun in {}: run the workspace's tests (`cargo test --workspace`) or `cargo build -p aifirst-forge`",
        bin.display()
    );
    blocks[0] = format!("export PATH=\"{}:$PATH\"\n", bin.display());

    // The page runs from the repository's root and writes into quickstart/: here, a temporary
    // directory that sees the repository's inputs.
    let dir = tempfile::tempdir().unwrap();
    for input in ["fixtures", "examples"] {
        std::os::unix::fs::symlink(
            repo.join(input).canonicalize().unwrap(),
            dir.path().join(input),
        )
        .unwrap();
    }
    let mut script = String::from("set -euo pipefail\n");
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '::block {}'\n{block}", i + 1));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("AIRUN", airun)
        .env_remove("AIFIRST_ROOTS")
        .env_remove("AIFIRST_STATE_DIR")
        .env_remove("AIFIRST_SESSION")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout
        .lines()
        .rfind(|l| l.starts_with("::block "))
        .unwrap_or("before the first block");
    assert!(
        out.status.success(),
        "QUICKSTART.md failed in {last}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("::block {}", blocks.len())),
        "{stdout}"
    );
    for expected in [
        "- buy oat milk",
        "todo.md is gone again",
        "audit log intact",
        "\"name\":\"edit_file\"",
        "create_pet",
        "file_snapshot",
        "byte-identical to the checkpoint",
    ] {
        assert!(
            stdout.contains(expected),
            "no `{expected}` in:\n{stdout}\n{stderr}"
        );
    }
    assert!(dir.path().join("quickstart/petstore/Cargo.toml").is_file());
    assert!(dir
        .path()
        .join("quickstart/tools/python/tools.py")
        .is_file());
}
