//! `cargo xtask corpus-crates [DIR]`: `forge import` every description in the corpus (default
//! ../shared/corpus/openapi) into one scratch workspace under target/corpus-crates, then
//! `cargo check` all the crates together. A crate that does not compile is a forge bug.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::{build_forge, workspace_root};

pub fn corpus_crates(args: &[String]) -> Result<()> {
    let dir = match args.first() {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("../shared/corpus/openapi"),
    };
    let forge = build_forge()?;
    let out = workspace_root().join("target/corpus-crates");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        })
        .collect();
    specs.sort();
    let mut members = Vec::new();
    for spec in &specs {
        let stem = spec
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let t = Instant::now();
        let status = Command::new(&forge)
            .arg("import")
            .arg(spec)
            .arg("-o")
            .arg(out.join(&name))
            .args(["--name", &name, "--workspace-member", "--runtime-path"])
            .arg(workspace_root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        if status.code() == Some(2) || status.code().is_none() {
            bail!("forge import {} failed", spec.display());
        }
        let caps = std::fs::read_to_string(out.join(&name).join("capabilities.json"))?;
        let n = serde_json::from_str::<serde_json::Value>(&caps)?["capabilities"]
            .as_array()
            .map_or(0, Vec::len);
        println!(
            "{name:<34} {n:>5} capabilities  imported in {:>6.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        members.push(format!("{name:?}"));
    }
    std::fs::write(
        out.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )?;
    std::fs::copy(workspace_root().join("Cargo.lock"), out.join("Cargo.lock"))?;
    eprintln!("cargo check of {} crates…", members.len());
    let t = Instant::now();
    let output = crate::cargo()
        .args(["check", "--offline", "--message-format", "short"])
        .current_dir(&out)
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("target/corpus-crates-target"),
        )
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings = stderr.lines().filter(|l| l.contains("warning:")).count();
    let errors = stderr
        .lines()
        .filter(|l| l.starts_with("error") || l.contains(": error"))
        .count();
    println!(
        "cargo check: {} ({} crates, {warnings} warnings, {errors} error lines, {:.0} s)",
        if output.status.success() {
            "ok"
        } else {
            "FAILED"
        },
        members.len(),
        t.elapsed().as_secs_f64()
    );
    if !output.status.success() || warnings > 0 {
        eprintln!("{stderr}");
        bail!("a generated crate does not compile cleanly");
    }
    Ok(())
}
