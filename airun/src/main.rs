//! `airun`: the shared CLI over the capabilities linked into this binary.

use std::process::ExitCode;

// Links the standard library's capabilities (they register themselves).
#[cfg(feature = "stdlib")]
use aifirst_stdlib as _;

fn main() -> ExitCode {
    // This program is also query_json's worker: a jq filter that recurses without end then
    // ends a worker, not the server, and one past its time limit is killed. (Here, not in
    // `airun::run`: naming the standard library there would link its tools into every
    // program built on airun.)
    #[cfg(feature = "stdlib")]
    if let Some(code) = aifirst_stdlib::data::jq_worker_setup() {
        return code;
    }
    airun::run(airun::App {
        name: "airun",
        version: env!("CARGO_PKG_VERSION"),
        about: "Call, undo, audit and serve AI-First capabilities: the standard library (fs) and any linked crate.",
    })
}
