//! forge: the AI-First Runtime compiler.
pub mod diag;
pub mod docs;
pub mod ir;
pub mod load;
pub mod normalize;
pub mod schema;
