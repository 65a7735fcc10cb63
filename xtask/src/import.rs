//! `cargo xtask bench-import [--runs N] [--spec FILE] [--no-build] [--release]`: `forge import` of GitHub's
//! description and the rebuild time of the crate it writes.
//!
//! - import: a fresh process writing a fresh directory each run (median), against a warm
//!   in-process serde_json read+parse of the same file measured in the same run;
//! - rebuild: with the dependencies already built, `cargo build` after touching the crate's
//!   sources (median of `--runs`, at most 3), against the same for the 10-operation petstore
//!   crate in the same run, so the per-operation cost is (github − petstore) / (ops − 10).
//!
//! The crates build in target/bench-import with the workspace's Cargo.lock, offline; the dev
//! profile, or with `--release` the release profile (its own dependencies, built once: minutes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::{build_forge, fetch_github, median, ms, run_measured, workspace_root};

fn import(forge: &Path, spec: &Path, out: &Path, name: &str) -> Result<(Duration, u64)> {
    let _ = std::fs::remove_dir_all(out);
    let t = Instant::now();
    let (code, _, rss) = run_measured(
        Command::new(forge)
            .arg("import")
            .arg(spec)
            .arg("-o")
            .arg(out)
            .args(["--name", name, "--runtime-path"])
            .arg(workspace_root()),
    )?;
    let took = t.elapsed();
    if code == 2 || code < 0 {
        bail!("forge import {} failed", spec.display());
    }
    Ok((took, rss))
}

fn cargo_build(dir: &Path, target: &Path, release: bool) -> Result<Duration> {
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    let t = Instant::now();
    let status = crate::cargo()
        .args(["build", "--quiet", "--offline"])
        .args(release.then_some("--release"))
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .status()?;
    if !status.success() {
        bail!("cargo build in {} failed", dir.display());
    }
    Ok(t.elapsed())
}

/// Marks every source file changed, so cargo rebuilds the crate (and only it).
fn touch_sources(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir.join("src"))? {
        let p = e?.path();
        let text = std::fs::read(&p)?;
        std::fs::write(&p, text)?;
    }
    Ok(())
}

fn rebuilds(dir: &Path, target: &Path, runs: usize, release: bool) -> Result<Duration> {
    cargo_build(dir, target, release)?; // dependencies and a first build
    let mut times = Vec::new();
    for _ in 0..runs {
        // File times have a granularity; make sure the touch is newer than the last build.
        std::thread::sleep(Duration::from_millis(1100));
        touch_sources(dir)?;
        times.push(cargo_build(dir, target, release)?);
    }
    Ok(median(times))
}

fn count_ops(dir: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(dir.join("capabilities.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["capabilities"].as_array().map_or(0, Vec::len))
}

/// The release binary of the crate generated from GitHub's description (imported and built
/// here when missing), for `bench-mcp --github`.
pub fn github_release_binary() -> Result<PathBuf> {
    let work = workspace_root().join("target/bench-import");
    let github = work.join("github");
    if !github.join("capabilities.json").is_file() {
        let forge = build_forge()?;
        import(&forge, &fetch_github()?, &github, "github")?;
    }
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        github.join("Cargo.lock"),
    )?;
    eprintln!("building the generated GitHub crate (release)…");
    let status = crate::cargo()
        .args(["build", "--release", "--quiet", "--offline"])
        .current_dir(&github)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .status()?;
    if !status.success() {
        bail!("cargo build --release in {} failed", github.display());
    }
    Ok(work.join("target/release/github"))
}

pub fn bench_import(args: &[String]) -> Result<()> {
    let (runs, spec, flags) = crate::bench_args(args, 7, &["--no-build", "--release"])?;
    let build = !flags.iter().any(|f| f == "--no-build");
    let release = flags.iter().any(|f| f == "--release");
    let profile = if release { "release" } else { "debug" };
    let forge = build_forge()?;
    let work = workspace_root().join("target/bench-import");
    std::fs::create_dir_all(&work)?;

    let mut parse = Vec::new();
    let mut imports = Vec::new();
    let mut rss = 0;
    for i in 0..runs {
        let t = Instant::now();
        let text = std::fs::read(&spec)?;
        let v: serde_json::Value = serde_json::from_slice(&text)?;
        std::hint::black_box(&v);
        parse.push(t.elapsed());
        let (took, peak) = import(&forge, &spec, &work.join(format!("run{i}")), "github")?;
        imports.push(took);
        rss = rss.max(peak);
    }
    let github = work.join("github");
    let _ = std::fs::remove_dir_all(&github);
    std::fs::rename(work.join("run0"), &github)?;
    for i in 1..runs {
        let _ = std::fs::remove_dir_all(work.join(format!("run{i}")));
    }
    let ops = count_ops(&github)?;
    let files = std::fs::read_dir(github.join("src"))?.count();
    let (p, f) = (median(parse), median(imports));
    println!(
        "forge import {} → {ops} capabilities, {files} source files; {runs} runs, medians",
        spec.display()
    );
    println!(
        "  serde_json read+parse, in process (warm)  {:>8.1} ms",
        ms(p)
    );
    println!(
        "  forge import, fresh process, fresh dir    {:>8.1} ms   = {:.2}x the parse; peak RSS {:.0} MB  (goal <= 1 s)",
        ms(f),
        f.as_secs_f64() / p.as_secs_f64(),
        rss as f64 / 1_048_576.0
    );
    if !build {
        return Ok(());
    }

    let target = work.join("target");
    let petstore = work.join("petstore");
    import(
        &forge,
        &workspace_root().join("fixtures/petstore/openapi.yaml"),
        &petstore,
        "petstore",
    )?;
    let rebuild_runs = runs.min(3);
    eprintln!(
        "building the generated crates ({profile}: dependencies once, then {rebuild_runs} rebuilds each)…"
    );
    let small = rebuilds(&petstore, &target, rebuild_runs, release)?;
    let big = rebuilds(&github, &target, rebuild_runs, release)?;
    let per_op = big.saturating_sub(small).as_secs_f64() / (ops.saturating_sub(10).max(1)) as f64;
    println!("  rebuild, dependencies built ({profile}), median of {rebuild_runs}:");
    println!(
        "    petstore crate, 10 operations          {:>8.1} s",
        small.as_secs_f64()
    );
    println!(
        "    github crate, {ops} operations        {:>8.1} s   = {:.1} ms per operation beyond petstore, {:.1} ms per operation overall  (goal <= {} s)",
        big.as_secs_f64(),
        per_op * 1e3,
        big.as_secs_f64() * 1e3 / ops as f64,
        if release { 30 } else { 5 }
    );
    println!(
        "  binary: {}",
        target.join(profile).join("github").display()
    );
    Ok(())
}
