//! The `forge` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aifirst_capability::{Confidence, Effect};
use aifirst_forge::diag::Severity;
use aifirst_forge::driver::{lower, Lowered, Options};
use aifirst_forge::infer::Overrides;
use aifirst_forge::inspect::{check, report, CheckRules, Filter};
use aifirst_forge::naming;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// forge compiles API descriptions into capabilities an AI agent can call safely.
///
/// Exit codes: 0 clean, 1 findings (diagnostics or check violations), 2 error (nothing usable).
#[derive(Parser, Debug)]
#[command(name = "forge", version, about, long_about, term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the capabilities an OpenAPI description or a Python module yields, writing nothing.
    ///
    /// Reads Swagger 2.0, OpenAPI 3.0 and 3.1 in JSON or YAML, including descriptions split over
    /// several files (references must stay inside the root file's directory; remote references
    /// are refused). Reads a Python module (`.py`) or a package directory without running it:
    /// one capability per public function, schemas from type hints, descriptions from
    /// docstrings, effects and undo from the calls in its body. Prints one row a capability
    /// with its inferred effects and undo plan, and a summary with undo coverage and the size of
    /// the MCP `tools/list` payload; `--format json` prints the whole IR.
    ///
    /// Examples:
    ///   forge inspect fixtures/petstore/openapi.yaml
    ///   forge inspect fixtures/python/notes.py
    ///   forge inspect api.json --include-tag repos --ops 'repos_create_*'
    ///   forge inspect api.json --format json > ir.json
    #[command(verbatim_doc_comment)]
    Inspect {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also print informational diagnostics (renames) in table mode.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Lint a description against a safety policy; exits 1 listing every violation.
    ///
    /// Meant for CI: fail the build when an API grows operations an agent must not call, or
    /// mutating operations that cannot be undone.
    ///
    /// Examples:
    ///   forge check openapi.yaml --deny delete,execute
    ///   forge check openapi.yaml --require-undo --min-confidence medium
    #[command(verbatim_doc_comment)]
    Check {
        #[command(flatten)]
        spec: SpecArgs,
        /// Effects no capability may have (comma-separated: read, create, update, delete, execute, …).
        #[arg(long, value_delimiter = ',', value_parser = parse_effect, value_name = "EFFECTS")]
        deny: Vec<Effect>,
        /// Every mutating capability needs an undo plan (not `irreversible`).
        #[arg(long)]
        require_undo: bool,
        /// With --require-undo: plans below this confidence count as missing.
        #[arg(long, value_enum, default_value_t = MinConfidence::Low)]
        min_confidence: MinConfidence,
    },
    /// Generate a handler crate from an OpenAPI description: one capability per operation, with
    /// its effects and undo plan, and a binary that is the shared CLI and MCP server.
    ///
    /// The crate builds with no edits: `cargo build` in DIR, then `NAME list`, `NAME call …`,
    /// `NAME undo`, `NAME serve`. forge records how it was made in DIR/forge.toml (yours to edit:
    /// filters and overrides) and the files it wrote in DIR/.forge/generated; it never writes
    /// outside DIR and never overwrites a file you changed unless --force. The filters keep the
    /// capabilities that kept ones' undo plans call, too.
    ///
    /// Examples:
    ///   forge import fixtures/petstore/openapi.yaml -o petstore
    ///   forge import api.github.com.json -o github --include-tag issues --include-tag repos
    ///   forge import --update -o petstore          # regenerate after the description changed
    #[command(verbatim_doc_comment)]
    Import(ImportArgs),
    /// Scaffold a crate of hand-written capabilities: an example with an undo, a test and a
    /// README; it builds and passes its tests as generated.
    ///
    /// Example:
    ///   forge new notes && cd notes && cargo test
    #[command(verbatim_doc_comment)]
    New {
        /// The crate's name (also its directory unless -o).
        name: String,
        /// Where to create it [default: ./NAME].
        #[arg(long, short, value_name = "DIR")]
        output: Option<PathBuf>,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The OpenAPI description (JSON or YAML), or a Python module (.py) or package directory; not
    /// with --update.
    #[arg(required_unless_present = "update", conflicts_with = "update")]
    spec: Option<PathBuf>,
    /// The crate directory to write.
    #[arg(long, short, value_name = "DIR")]
    output: PathBuf,
    /// Regenerate DIR as its forge.toml says (after the description changed).
    #[arg(long)]
    update: bool,
    /// The crate and binary name [default: from the description's title].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Filters (capabilities that kept ones' undo plans call are kept too) and overrides.
    #[command(flatten)]
    select: SelectArgs,
    /// Include output schemas (off by default: descriptions are often wrong about responses,
    /// and MCP clients reject results that do not match their schema).
    #[arg(long)]
    output_schemas: bool,
    /// Leave out the `[workspace]` table, to add the crate to an enclosing workspace.
    #[arg(long)]
    workspace_member: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Overwrite files that were changed by hand.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct RuntimeArgs {
    /// Depend on the runtime in this checkout of AI-First Runtime (relative paths are taken
    /// from the crate directory) [default: the checkout forge was built from, if it still exists]
    #[arg(long, value_name = "DIR", conflicts_with = "runtime_version")]
    runtime_path: Option<String>,
    /// Depend on the published runtime crates of this version.
    #[arg(long, value_name = "VERSION")]
    runtime_version: Option<String>,
}

impl RuntimeArgs {
    /// (path, version) for a crate in `dir`.
    fn resolve(&self, dir: &std::path::Path) -> (Option<String>, Option<String>) {
        use aifirst_forge::emit::{own_checkout, record};
        if let Some(p) = &self.runtime_path {
            return (Some(p.clone()), None);
        }
        if let Some(v) = &self.runtime_version {
            return (None, Some(v.clone()));
        }
        match own_checkout() {
            Some(root) => (Some(record::relative(&record::absolute(dir), &root)), None),
            None => (None, Some(env!("CARGO_PKG_VERSION").to_string())),
        }
    }
}

/// What both `inspect` and `check` read.
#[derive(Args, Debug)]
struct SpecArgs {
    /// The OpenAPI description (JSON or YAML), or a Python module (.py) or package directory.
    spec: PathBuf,
    #[command(flatten)]
    select: SelectArgs,
}

/// What `inspect`, `check` and `import` take from a description.
#[derive(Args, Debug)]
struct SelectArgs {
    /// Project overrides of effects, annotations and undo plans (a forge.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep only operations with this tag (repeatable).
    #[arg(long = "include-tag", value_name = "TAG")]
    include_tags: Vec<String>,
    /// Drop operations with this tag (repeatable).
    #[arg(long = "exclude-tag", value_name = "TAG")]
    exclude_tags: Vec<String>,
    /// Keep only capabilities whose name or operationId matches this glob (`*`, `?`; repeatable,
    /// or comma-separated).
    #[arg(long = "ops", value_name = "PATTERN")]
    ops: Vec<String>,
    /// Longest capability name; longer ones are shortened with a stable hash (16–64).
    #[arg(long, value_name = "N", default_value_t = naming::DEFAULT_MAX_NAME_LEN as u16,
          value_parser = clap::value_parser!(u16).range(16..=64))]
    max_name_len: u16,
    /// Token budget of one tool's tools/list entry (about 4 bytes a token). Larger tools are
    /// pruned in order: descriptions to their first sentence, deep and recursive object levels
    /// left open (naming what was left out), the tool's description to its first sentence.
    /// Pruning only ever widens what a call may send. 0: no budget.
    #[arg(long, value_name = "TOKENS", default_value_t = aifirst_forge::budget::DEFAULT_MAX_TOOL_TOKENS)]
    max_tool_tokens: usize,
}

impl SelectArgs {
    /// `--ops a,b --ops c` → `[a, b, c]`.
    fn ops(&self) -> Vec<String> {
        self.ops
            .iter()
            .flat_map(|p| p.split(','))
            .map(str::to_string)
            .collect()
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns and a summary, for people.
    Table,
    /// The IR with diagnostics and summary, for programs (a stable contract).
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum MinConfidence {
    Low,
    Medium,
    High,
}

fn parse_effect(s: &str) -> Result<Effect, String> {
    Effect::parse(s.trim()).ok_or_else(|| {
        let all: Vec<&str> = Effect::ALL.iter().map(|e| e.as_str()).collect();
        format!("unknown effect `{s}` (one of {})", all.join(", "))
    })
}

/// Loads and lowers the spec; on failure prints why and gives the exit code.
fn load(spec: &SpecArgs) -> Result<(Lowered, Filter), u8> {
    let sel = &spec.select;
    let overrides = match &sel.config {
        None => Overrides::default(),
        Some(path) => match Overrides::load(path) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error[bad-config]: {e}");
                return Err(2);
            }
        },
    };
    let opts = Options {
        max_name_len: usize::from(sel.max_name_len),
        overrides,
        max_tool_tokens: (sel.max_tool_tokens > 0).then_some(sel.max_tool_tokens),
    };
    let lowered = lower(&spec.spec, &opts).map_err(|d| {
        eprintln!("{d}");
        2u8
    })?;
    let filter = Filter {
        include_tags: sel.include_tags.clone(),
        exclude_tags: sel.exclude_tags.clone(),
        ops: sel.ops(),
    };
    Ok((lowered, filter))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Inspect {
            spec,
            format,
            verbose,
        } => match load(&spec) {
            Err(code) => code,
            Ok((lowered, filter)) => {
                let rep = report(&lowered, &filter);
                let mut stdout = std::io::stdout().lock();
                let written = match format {
                    Format::Json => {
                        let mut out = std::io::BufWriter::with_capacity(1 << 16, &mut stdout);
                        rep.write_json(&mut out)
                            .map_err(std::io::Error::from)
                            .and_then(|_| writeln!(out))
                            .and_then(|_| out.flush())
                    }
                    Format::Table => {
                        print_diagnostics(rep.diagnostics, verbose);
                        stdout.write_all(
                            aifirst_forge::diag::terminal_safe(&rep.to_table()).as_bytes(),
                        )
                    }
                };
                let _ = stdout.flush();
                let code = match written {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        eprintln!("error: cannot write output: {e}");
                        2
                    }
                    _ if rep.summary.errors + rep.summary.warnings > 0 => 1,
                    _ => 0,
                };
                drop(rep);
                // Keep the document and IR alive until exit: see the comment at `process::exit`.
                std::mem::forget(lowered);
                code
            }
        },
        Command::Check {
            spec,
            deny,
            require_undo,
            min_confidence,
        } => match load(&spec) {
            Err(code) => code,
            Ok((lowered, filter)) => {
                print_diagnostics(&lowered.diagnostics, false);
                let rules = CheckRules {
                    deny,
                    require_undo,
                    min_confidence: match min_confidence {
                        MinConfidence::Low => Confidence::Low,
                        MinConfidence::Medium => Confidence::Medium,
                        MinConfidence::High => Confidence::High,
                    },
                };
                let violations = check(&lowered, &filter, &rules);
                let mut stdout = std::io::stdout().lock();
                for v in &violations {
                    // Names from the description reach the header: no escape sequence of
                    // theirs may clear the screen or hide what was printed before.
                    let _ = writeln!(
                        stdout,
                        "{}\n",
                        aifirst_forge::diag::terminal_safe(&v.to_string())
                    );
                }
                let checked = lowered
                    .ir
                    .capabilities
                    .iter()
                    .filter(|c| filter.keeps(c))
                    .count();
                let _ = writeln!(
                    stdout,
                    "{} violation{} in {checked} capabilities",
                    violations.len(),
                    if violations.len() == 1 { "" } else { "s" }
                );
                let _ = stdout.flush();
                let code = u8::from(!violations.is_empty());
                std::mem::forget(lowered);
                code
            }
        },
        Command::Import(args) => import(args),
        Command::New {
            name,
            output,
            runtime,
        } => {
            let dir = output.unwrap_or_else(|| PathBuf::from(&name));
            let (path, version) = runtime.resolve(&dir);
            match aifirst_forge::scaffold::new_crate(&name, &dir, path, version) {
                Ok(files) => {
                    println!(
                        "created {} ({} files); try: cd {} && cargo test && cargo run -- list",
                        dir.display(),
                        files,
                        dir.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
    };
    // Freeing a large API's document and IR node by node takes a sixth of the run; the operating
    // system reclaims it at once. Output is flushed above.
    std::process::exit(i32::from(code))
}

fn import(args: ImportArgs) -> u8 {
    use aifirst_forge::emit::{import_crate, record, ImportError};
    let dir = &args.output;
    let (spec, rec) = if args.update {
        let path = dir.join("forge.toml");
        let rec = match record::read(&path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        (dir.join(&rec.source), rec)
    } else {
        let Some(spec) = args.spec.clone() else {
            eprintln!("error: give a description to import, or --update");
            return 2;
        };
        let (runtime_path, runtime_version) = args.runtime.resolve(dir);
        let sel = &args.select;
        let config = sel
            .config
            .as_ref()
            .map(|c| record::relative(&record::absolute(dir), &record::absolute(c)));
        let rec = record::ImportRecord {
            source: String::new(),
            name: args.name.clone().unwrap_or_default(),
            include_tags: sel.include_tags.clone(),
            exclude_tags: sel.exclude_tags.clone(),
            ops: sel.ops(),
            config,
            max_name_len: sel.max_name_len,
            max_tool_tokens: sel.max_tool_tokens,
            output_schemas: args.output_schemas,
            runtime_path,
            runtime_version,
            workspace_member: args.workspace_member,
        };
        (spec, rec)
    };
    eprintln!("forge: importing {} …", spec.display());
    match import_crate(&spec, dir, rec, args.force) {
        Ok(out) => {
            print_diagnostics(&out.lowered.diagnostics, false);
            let w = &out.written;
            println!(
                "{}: {} capabilities in {} modules; {} files written, {} unchanged{}{}",
                dir.display(),
                out.emitted.capabilities,
                out.emitted.modules,
                w.written.len(),
                w.unchanged.len(),
                if w.removed.is_empty() {
                    String::new()
                } else {
                    format!(", {} removed", w.removed.len())
                },
                if w.kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; kept {} you changed that are no longer generated: {}",
                        w.kept.len(),
                        w.kept.join(", ")
                    )
                },
            );
            if !out.emitted.companions.is_empty() {
                println!(
                    "kept {} capabilities the filters left out because undo plans call them: {}",
                    out.emitted.companions.len(),
                    out.emitted.companions.join(", ")
                );
            }
            let errors = out
                .lowered
                .diagnostics
                .iter()
                .filter(|d| d.severity >= Severity::Warning)
                .count();
            std::mem::forget(out);
            u8::from(errors > 0)
        }
        Err(ImportError::Spec(d)) => {
            eprintln!("{d}");
            2
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn print_diagnostics(diags: &[aifirst_forge::diag::Diagnostic], verbose: bool) {
    let mut stderr = std::io::stderr().lock();
    for d in diags {
        if d.severity > Severity::Info || verbose {
            let _ = writeln!(stderr, "{d}\n");
        }
    }
}
