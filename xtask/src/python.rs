//! `cargo xtask bench-python [--runs N] [--calls N] [--skip-peer]`: forge's Python front end on
//! CPython's own standard library, and a Python function served over MCP.
//!
//! 1. **The standard library sweep.** Every `.py` file under the interpreter's stdlib directory
//!    (`python3`'s `sysconfig.get_paths()['stdlib']`; `site-packages` left out, no symbolic link
//!    followed), sorted. CPython says which of them it parses (`ast.parse` of the bytes, one
//!    `python3` process for all of them); then forge's front end (`driver::lower`, as `forge
//!    inspect` runs it) reads each file in this process, a panic caught per file. Reported:
//!    files, CPython-parsable, imported / refused / crashed, capabilities found, wall times.
//!    The task fails at the end if a file crashed or a file CPython parses was refused: "0
//!    crashes; files CPython itself parses all import".
//! 2. **Parse speed.** The 20 largest of those files: `forge inspect FILE --format json` (release
//!    build, a fresh process, stdout to /dev/null) against `python3 -c "ast.parse(…)" FILE` (a
//!    fresh process too), taking turns run by run (`--runs`, default 5). Medians per file, the
//!    ratio forge / python per file, the median ratio and the ratio of the totals (goal ≤ 0.5×).
//! 3. **MCP round trip** (skipped with `--skip-peer`). `wait_for_note` of fixtures/python/notes.py
//!    with `seconds: 0` (read-only, returns false at once) over stdio: ours (`pyrun serve`, the
//!    generated crate of notes.py behind the shared CLI, its Python worker) against the MCP
//!    Python SDK's own server serving the same function (`target/venv`, made by `.ci/setup`),
//!    taking turns call by call (`--calls`, default 300) after 20 warm-up calls each. Medians,
//!    p90 and ours / theirs (goal ≤ 1×); our first call (the worker's start-up) separately.
//!
//! Nothing here asserts a time; the numbers are printed beside baselines measured in the same run.

use std::os::unix::ffi::OsStrExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::stdlib::Client;
use crate::{build_forge, median, ms, workspace_root};

/// Reads paths from stdin, one a line; prints `ok` or `err` for each: whether CPython parses it.
const CHECK_SCRIPT: &str = r#"import ast, os, sys
for line in sys.stdin.buffer:
    p = os.fsdecode(line.rstrip(b"\n"))
    try:
        with open(p, "rb") as f:
            ast.parse(f.read())
        print("ok")
    except Exception:
        print("err")
"#;

/// The parse-speed baseline: a fresh interpreter parses one file.
const PARSE_ONE: &str = "import ast,sys; ast.parse(open(sys.argv[1],'rb').read())";

/// The peer: the MCP Python SDK's own server with `notes.wait_for_note` as its one tool
/// (`MCPServer` in mcp 2.x; `FastMCP` before). `sys.argv[1]` is fixtures/python.
const PEER_SCRIPT: &str = r#"import sys
sys.path.insert(0, sys.argv[1])
import notes
try:
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:
    from mcp.server.fastmcp import FastMCP as Server
m = Server("notes")
m.tool()(notes.wait_for_note)
m.run()
"#;

/// How many of the largest files the parse-speed part times.
const LARGEST: usize = 20;

/// What forge's front end did with one file.
enum Outcome {
    /// Imported, with this many capabilities.
    Imported(usize),
    /// Refused with a fatal diagnostic (its first line).
    Refused(String),
    /// Panicked (the message), in this thread or in the front end's own reader thread.
    Crashed(String),
}

pub fn bench_python(args: &[String]) -> Result<()> {
    let mut runs = 5usize;
    let mut calls = 300usize;
    let mut skip_peer = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--calls" => calls = it.next().context("--calls N")?.parse()?,
            "--skip-peer" => skip_peer = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let (runs, calls) = (runs.max(1), calls.max(1));
    let mut problems = Vec::new();

    // 1. The sweep.
    let (python, stdlib) = interpreter()?;
    let files = py_files(&stdlib)?;
    let (parses, cpython_time) = cpython_parses(&python, &files)?;
    let started = Instant::now();
    let outcomes = sweep(files.clone())?;
    let sweep_time = started.elapsed();
    let shown = |p: &Path| p.strip_prefix(&stdlib).unwrap_or(p).display().to_string();
    let parsable = parses.iter().filter(|&&ok| ok).count();
    let (mut imported, mut refused, mut capabilities) = (0usize, 0usize, 0usize);
    let mut crashed: Vec<(String, String)> = Vec::new();
    let mut refused_parsable: Vec<(String, String)> = Vec::new();
    for ((file, outcome), &ok) in files.iter().zip(&outcomes).zip(&parses) {
        match outcome {
            Outcome::Imported(n) => {
                imported += 1;
                capabilities += n;
            }
            Outcome::Refused(why) => {
                refused += 1;
                if ok {
                    refused_parsable.push((shown(file.as_path()), why.clone()));
                }
            }
            Outcome::Crashed(why) => crashed.push((shown(file.as_path()), why.clone())),
        }
    }
    println!(
        "CPython standard library sweep: {} ({})",
        stdlib.display(),
        python.display()
    );
    println!(
        "  {} .py files; CPython parses {parsable} (ast.parse, one process for all: {:.2} s)",
        files.len(),
        cpython_time.as_secs_f64()
    );
    println!(
        "  forge: {imported} imported, {refused} refused, {} crashed; {capabilities} capabilities; \
         {:.2} s in this process ({:.2}× CPython's pass)",
        crashed.len(),
        sweep_time.as_secs_f64(),
        sweep_time.as_secs_f64() / cpython_time.as_secs_f64().max(1e-9)
    );
    println!(
        "  files CPython parses that forge refused: {} (goal 0)",
        refused_parsable.len()
    );
    for (file, why) in refused_parsable.iter().take(20) {
        println!("    {file}: {why}");
    }
    if refused_parsable.len() > 20 {
        println!("    … and {} more", refused_parsable.len() - 20);
    }
    for (file, why) in &crashed {
        println!("    CRASHED {file}: {why}");
    }
    if !crashed.is_empty() {
        problems.push(format!("{} files crashed forge", crashed.len()));
    }
    if !refused_parsable.is_empty() {
        problems.push(format!(
            "{} files CPython parses were refused",
            refused_parsable.len()
        ));
    }

    // 2. Parse speed on the largest files CPython parses.
    let mut sized: Vec<(PathBuf, u64)> = Vec::new();
    for (file, &ok) in files.iter().zip(&parses) {
        if ok {
            sized.push((file.clone(), std::fs::metadata(file)?.len()));
        }
    }
    sized.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sized.truncate(LARGEST);
    let forge = build_forge()?;
    parse_speed(&forge, &python, &sized, runs, &shown, &mut problems)?;

    // 3. The MCP round trip.
    if skip_peer {
        println!("MCP round trip: skipped (--skip-peer)");
    } else {
        round_trip(calls)?;
    }

    if !problems.is_empty() {
        bail!("bench-python: {}", problems.join("; "));
    }
    Ok(())
}

/// The interpreter `python3` runs (resolved, so a shim such as pyenv's is not timed) and its
/// standard library directory.
fn interpreter() -> Result<(PathBuf, PathBuf)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, sysconfig; print(sys.executable); print(sysconfig.get_paths()['stdlib'])",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running python3 (CPython 3 is needed)")?;
    if !out.status.success() {
        bail!("python3 could not name its standard library");
    }
    let text = String::from_utf8(out.stdout).context("python3's answer is not UTF-8")?;
    let mut lines = text.lines();
    let python = lines
        .next()
        .filter(|l| !l.is_empty())
        .map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let stdlib = lines
        .next()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .context("python3 named no standard library directory")?;
    Ok((python, stdlib))
}

/// Every `.py` file under `root`, sorted; `site-packages` left out, symbolic links not followed.
fn py_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            // `file_type` does not follow a symbolic link: a link is neither dir nor file here.
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                if entry.file_name().as_os_str() != std::ffi::OsStr::new("site-packages") {
                    stack.push(path);
                }
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "py") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether CPython parses each file (one process for all), and how long that process took.
fn cpython_parses(python: &Path, files: &[PathBuf]) -> Result<(Vec<bool>, Duration)> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("check.py");
    std::fs::write(&script, CHECK_SCRIPT)?;
    let list = dir.path().join("paths.txt");
    let mut bytes = Vec::new();
    for f in files {
        bytes.extend_from_slice(f.as_os_str().as_bytes());
        bytes.push(b'\n');
    }
    std::fs::write(&list, &bytes)?;
    let started = Instant::now();
    let out = Command::new(python)
        .arg(&script)
        .stdin(std::fs::File::open(&list)?)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("the CPython parse check failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<bool> = text.lines().map(|l| l.trim() == "ok").collect();
    if verdicts.len() != files.len() {
        bail!(
            "CPython answered for {} of {} files",
            verdicts.len(),
            files.len()
        );
    }
    Ok((verdicts, took))
}

/// forge's front end on every file, in order, on a thread with a large stack (the front end
/// walks its trees on its own large-stack thread; this one is for safety).
fn sweep(files: Vec<PathBuf>) -> Result<Vec<Outcome>> {
    let worker = std::thread::Builder::new()
        .name("bench-python-sweep".into())
        .stack_size(64 << 20)
        .spawn(move || files.iter().map(|f| lower_one(f)).collect::<Vec<_>>())
        .context("starting the sweep thread")?;
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the sweep thread panicked"))
}

/// One file through `driver::lower`; a panic is caught and reported as a crash, and so is the
/// `internal` diagnostic the front end makes of a panic in its own reader thread.
fn lower_one(path: &Path) -> Outcome {
    use aifirst_forge::driver::{lower, Options};
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        lower(path, &Options::default()).map(|l| l.ir.capabilities.len())
    }));
    match caught {
        Ok(Ok(n)) => Outcome::Imported(n),
        Ok(Err(d)) if d.code == "internal" => Outcome::Crashed(first_line(&d.to_string())),
        Ok(Err(d)) => Outcome::Refused(first_line(&d.to_string())),
        Err(payload) => Outcome::Crashed(panic_message(&*payload)),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic (no message)".to_string()
    }
}

/// `forge inspect --format json` against `ast.parse` in a fresh interpreter, taking turns.
fn parse_speed(
    forge: &Path,
    python: &Path,
    files: &[(PathBuf, u64)],
    runs: usize,
    shown: &dyn Fn(&Path) -> String,
    problems: &mut Vec<String>,
) -> Result<()> {
    println!(
        "parse speed, the {} largest files CPython parses, median of {runs} fresh processes each \
         (forge inspect --format json / python3 -c ast.parse):",
        files.len()
    );
    let mut ratios: Vec<f64> = Vec::new();
    let (mut total_forge, mut total_python) = (Duration::ZERO, Duration::ZERO);
    for (file, size) in files {
        let mut forge_times = Vec::with_capacity(runs);
        let mut python_times = Vec::with_capacity(runs);
        let mut failed: Option<String> = None;
        for _ in 0..runs {
            let started = Instant::now();
            let status = Command::new(forge)
                .arg("inspect")
                .arg(file)
                .args(["--format", "json"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .with_context(|| format!("running {}", forge.display()))?;
            forge_times.push(started.elapsed());
            // 1 is "imported, with warnings": fine. 2 (refused), a panic's 101 or a signal is not.
            match status.code() {
                Some(0 | 1) => {}
                Some(code) => failed = Some(format!("forge inspect exited {code}")),
                None => failed = Some("forge inspect was killed by a signal".to_string()),
            }
            let started = Instant::now();
            let status = Command::new(python)
                .arg("-c")
                .arg(PARSE_ONE)
                .arg(file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .with_context(|| format!("running {}", python.display()))?;
            python_times.push(started.elapsed());
            if !status.success() {
                failed = Some(format!("python's ast.parse failed ({status})"));
            }
        }
        let (f, p) = (median(forge_times), median(python_times));
        let name = shown(file.as_path());
        if let Some(why) = failed {
            println!(
                "  {:>7.1} KiB  FAILED: {why}  {name}",
                *size as f64 / 1024.0
            );
            problems.push(format!("{name}: {why}"));
            continue;
        }
        let ratio = f.as_secs_f64() / p.as_secs_f64().max(1e-9);
        ratios.push(ratio);
        total_forge += f;
        total_python += p;
        println!(
            "  {:>7.1} KiB  forge {:>7.1} ms  python {:>7.1} ms  {:>5.2}×  {name}",
            *size as f64 / 1024.0,
            ms(f),
            ms(p),
            ratio
        );
    }
    if ratios.is_empty() {
        return Ok(());
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median_ratio = ratios[ratios.len() / 2];
    println!(
        "  median ratio {median_ratio:.2}× over {} files; total forge {:.1} ms / python {:.1} ms = {:.2}× (goal ≤ 0.5×)",
        ratios.len(),
        ms(total_forge),
        ms(total_python),
        total_forge.as_secs_f64() / total_python.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// `wait_for_note` over MCP stdio: `pyrun serve` against the Python SDK's own server.
fn round_trip(calls: usize) -> Result<()> {
    let root = workspace_root();
    let venv_python = root.join("target/venv/bin/python");
    if !venv_python.exists() {
        println!(
            "MCP round trip: skipped, no {} (make it with `bash .ci/setup`: the MCP Python SDK in target/venv)",
            venv_python.display()
        );
        return Ok(());
    }
    eprintln!("building pyrun (release)…");
    let status = crate::cargo()
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "aifirst-tests",
            "--bin",
            "pyrun",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("building pyrun failed");
    }
    let bin = root.join("target/release/pyrun");

    let scratch = tempfile::tempdir()?;
    let base = scratch.path().canonicalize()?;
    let state = base.join("state");
    let notes = base.join("root");
    std::fs::create_dir_all(&state)?;
    std::fs::create_dir_all(&notes)?;
    let args = json!({"path": notes.join("absent.md").display().to_string(), "seconds": 0});

    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .arg("--state-dir")
        .arg(&state)
        .arg("--root")
        .arg(&notes)
        .current_dir(&state)
        .env_remove("AIFIRST_ROOTS")
        .env_remove("AIFIRST_STATE_DIR");
    let mut ours = Client::start(cmd)?;
    let mut cmd = Command::new(&venv_python);
    cmd.arg("-c")
        .arg(PEER_SCRIPT)
        .arg(root.join("fixtures/python"))
        .current_dir(&base);
    let mut theirs = Client::start(cmd)?;

    // Our first call starts the Python worker.
    let first = ours.call("wait_for_note", args.clone())?;
    for _ in 0..20 {
        ours.call("wait_for_note", args.clone())?;
        theirs.call("wait_for_note", args.clone())?;
    }
    let mut ours_times = Vec::with_capacity(calls);
    let mut theirs_times = Vec::with_capacity(calls);
    for _ in 0..calls {
        ours_times.push(ours.call("wait_for_note", args.clone())?);
        theirs_times.push(theirs.call("wait_for_note", args.clone())?);
    }
    let (o90, t90) = (p90(&ours_times), p90(&theirs_times));
    let (o, t) = (median(ours_times), median(theirs_times));
    println!(
        "MCP stdio round trip of a trivial Python function (wait_for_note, seconds 0), {calls} calls \
         each, taking turns call by call after 20 warm-up calls:"
    );
    println!(
        "  ours (pyrun serve, its Python worker)   median {:>7.3} ms   p90 {:>7.3} ms",
        ms(o),
        ms(o90)
    );
    println!(
        "  the MCP Python SDK's own server         median {:>7.3} ms   p90 {:>7.3} ms",
        ms(t),
        ms(t90)
    );
    println!(
        "  ours/theirs {:.2}× (goal ≤ 1×); our first call, the worker's start-up included: {:.1} ms",
        o.as_secs_f64() / t.as_secs_f64().max(1e-9),
        ms(first)
    );
    Ok(())
}

/// The 90th percentile.
fn p90(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted
        .get(sorted.len() * 9 / 10)
        .or(sorted.last())
        .copied()
        .unwrap_or_default()
}
