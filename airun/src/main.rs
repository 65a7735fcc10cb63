//! `airun`: the shared CLI over the capabilities linked into this binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    airun::run(airun::App {
        name: "airun",
        version: env!("CARGO_PKG_VERSION"),
        about: "Call, undo, audit and serve AI-First capabilities.",
    })
}
