//! The standard capabilities of AI-First Runtime: ready-made tools any `airun` server (or
//! embedding program) can offer, each declared with its effects and its undo like a hand-written
//! capability.
//!
//! # Modules
//!
//! - [`fs`] (cargo feature `fs`, on by default): file tools — a drop-in for the official MCP
//!   filesystem server (`@modelcontextprotocol/server-filesystem`: the same tool names, argument
//!   names and output text), plus `delete_file`, `copy_file`, `append_file` and
//!   `search_file_contents`. Every access goes through the engine's sandbox
//!   ([`aifirst::Ctx::fs`]): only beneath the allowed roots, no symbolic link leading out, no
//!   FIFO or device opened. Each tool that changes files declares a file-snapshot undo, so the
//!   engine can put the files back byte for byte.
//!
//! # Linking
//!
//! Capabilities register themselves at link time (`linkme`). A binary offers these tools once
//! the crate is linked into it; name it anywhere, for example in `main.rs`:
//!
//! ```
//! use aifirst_stdlib as _;
//!
//! let registry = aifirst::Registry::new().unwrap();
//! # #[cfg(feature = "fs")]
//! assert!(registry.get("read_text_file").is_some());
//! ```
//!
//! Without the feature (`default-features = false`) the crate registers nothing.

mod common;
#[cfg(feature = "data")]
pub mod data;
#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "sys")]
pub mod sys;
