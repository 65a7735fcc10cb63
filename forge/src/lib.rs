//! forge: the AI-First Runtime compiler.
pub mod budget;
pub mod diag;
pub mod docs;
pub mod emit;
pub mod infer;
pub mod inspect;
pub mod ir;
pub mod load;
pub mod lower;
pub mod naming;
pub mod normalize;
pub mod scaffold;
pub mod schema;
