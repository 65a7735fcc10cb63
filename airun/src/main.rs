//! `airun`: the shared CLI over the capabilities linked into this binary.

use std::process::ExitCode;

// Links the standard library's capabilities (they register themselves).
#[cfg(feature = "stdlib")]
use aifirst_stdlib as _;

fn main() -> ExitCode {
    airun::run(airun::App {
        name: "airun",
        version: env!("CARGO_PKG_VERSION"),
        about: "Call, undo, audit and serve AI-First capabilities: the standard library (fs) and any linked crate.",
    })
}
