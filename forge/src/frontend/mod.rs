//! Front ends: each reads one kind of source into the neutral [`crate::ir::Ir`] and says what it
//! could not use as diagnostics. Inference, budgets, inspection and emission come after, in
//! [`crate::driver`], and are the same for every front end.

pub mod openapi;
pub mod python;
