//! `notebook`: the shared CLI over the notebook's capabilities.

use std::process::ExitCode;

use notebook as _;

fn main() -> ExitCode {
    airun::run(airun::App {
        name: "notebook",
        version: env!("CARGO_PKG_VERSION"),
        about: "Notes in a JSON file ($NOTEBOOK_DIR/notes.json), with undo.",
    })
}
