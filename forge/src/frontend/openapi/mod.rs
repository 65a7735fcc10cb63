//! The OpenAPI front end: Swagger 2.0 and OpenAPI 3.0/3.1, JSON or YAML.
//!
//! [`load`] reads a file (size, depth and format checks), [`refs`] holds the documents a
//! description spans and resolves `$ref` across them, [`normalize`] brings Swagger 2.0 to 3.x,
//! [`schema`] converts schemas to JSON Schema 2020-12 and [`lower`] makes one capability per
//! operation.

pub mod load;
pub mod lower;
pub mod normalize;
pub mod refs;
pub mod schema;

pub use lower::lower;
