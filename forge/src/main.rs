//! The `forge` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use aifirst_forge::diag::Severity;
use aifirst_forge::inspect::{report, Filter};
use aifirst_forge::lower::{import_openapi, Options};
use aifirst_forge::naming;
use clap::{Parser, Subcommand, ValueEnum};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// forge compiles API descriptions into capabilities an AI agent can call safely.
///
/// Exit codes: 0 clean, 1 usable with diagnostics (findings), 2 nothing usable (error).
#[derive(Parser, Debug)]
#[command(name = "forge", version, about, long_about, term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the capabilities an OpenAPI description yields, without writing anything.
    ///
    /// Reads Swagger 2.0, OpenAPI 3.0 and 3.1 in JSON or YAML, including descriptions split over
    /// several files (references must stay inside the root file's directory; remote references
    /// are refused). Prints one row a capability and a summary with the size of the MCP
    /// `tools/list` payload, or the whole IR with `--format json`.
    ///
    /// Examples:
    ///   forge inspect fixtures/petstore/openapi.yaml
    ///   forge inspect api.json --include-tag repos --ops 'repos_create_*'
    ///   forge inspect api.json --format json > ir.json
    #[command(verbatim_doc_comment)]
    Inspect {
        /// The OpenAPI description (JSON or YAML).
        spec: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Keep only operations with this tag (repeatable).
        #[arg(long = "include-tag", value_name = "TAG")]
        include_tags: Vec<String>,
        /// Drop operations with this tag (repeatable).
        #[arg(long = "exclude-tag", value_name = "TAG")]
        exclude_tags: Vec<String>,
        /// Keep only capabilities whose name or operationId matches this glob (`*`, `?`; repeatable).
        #[arg(long = "ops", value_name = "PATTERN")]
        ops: Vec<String>,
        /// Longest capability name; longer ones are shortened with a stable hash (16–64).
        #[arg(long, value_name = "N", default_value_t = naming::DEFAULT_MAX_NAME_LEN as u16,
              value_parser = clap::value_parser!(u16).range(16..=64))]
        max_name_len: u16,
        /// Also print informational diagnostics (renames) in table mode.
        #[arg(long, short)]
        verbose: bool,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns and a summary, for people.
    Table,
    /// The IR with diagnostics and summary, for programs (a stable contract).
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect {
            spec,
            format,
            include_tags,
            exclude_tags,
            ops,
            max_name_len,
            verbose,
        } => {
            let lowered = match import_openapi(
                &spec,
                &Options {
                    max_name_len: usize::from(max_name_len),
                },
            ) {
                Ok(l) => l,
                Err(d) => {
                    eprintln!("{d}");
                    return ExitCode::from(2);
                }
            };
            let filter = Filter {
                include_tags,
                exclude_tags,
                ops: ops
                    .iter()
                    .flat_map(|p| p.split(','))
                    .map(str::to_string)
                    .collect(),
            };
            let rep = report(&lowered, &filter);
            let mut stdout = std::io::stdout().lock();
            let written = match format {
                Format::Json => serde_json::to_writer_pretty(&mut stdout, &rep.to_json())
                    .map_err(std::io::Error::from)
                    .and_then(|_| writeln!(stdout)),
                Format::Table => {
                    let mut stderr = std::io::stderr().lock();
                    for d in rep.diagnostics {
                        if d.severity > Severity::Info || verbose {
                            let _ = writeln!(stderr, "{d}\n");
                        }
                    }
                    stdout.write_all(rep.to_table().as_bytes())
                }
            };
            if let Err(e) = written {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("error: cannot write output: {e}");
                    return ExitCode::from(2);
                }
            }
            let _ = stdout.flush();
            let code = if rep.summary.errors + rep.summary.warnings > 0 {
                1
            } else {
                0
            };
            // Freeing a large API's document and IR node by node takes a sixth of the run; the
            // operating system reclaims it at once. Output is flushed above.
            std::process::exit(code)
        }
    }
}
