//! forge: the AI-First Runtime compiler.
//!
//! One driver ([`driver`]) selects a front end ([`frontend`]), which reads a source into the
//! neutral IR ([`ir`]); inference ([`infer`]) adds effects and undo plans; the IR is then
//! inspected ([`inspect`]) or emitted as a crate ([`emit`]).
pub mod budget;
pub mod defs;
pub mod diag;
pub mod driver;
pub mod emit;
pub mod frontend;
pub mod infer;
pub mod inspect;
pub mod ir;
pub mod naming;
pub mod scaffold;
