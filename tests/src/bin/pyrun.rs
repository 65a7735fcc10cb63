//! The generated `pynotes` crate (forge import of fixtures/python/notes.py) behind the shared CLI,
//! for the tests of Python capabilities (tests/python.rs).
use pynotes as _;

fn main() -> std::process::ExitCode {
    airun::run(airun::App {
        name: "pyrun",
        version: env!("CARGO_PKG_VERSION"),
        about: "The functions of fixtures/python/notes.py, run by a Python worker.",
    })
}
