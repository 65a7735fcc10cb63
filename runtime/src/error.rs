//! Errors a capability call can end in.

use std::fmt;

/// Why a call did not produce a result. Serialises to a structured MCP tool error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolError {
    /// The arguments do not fit the input schema.
    #[error("invalid arguments: {message}")]
    InvalidArguments { message: String },
    /// The handler returned an error.
    #[error("{message}")]
    Handler { message: String },
    /// The API answered with a status outside 2xx.
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// The request did not reach the API or got no answer (connection, timeout, TLS).
    #[error("request failed: {message}")]
    Transport { message: String },
    /// The call would reach outside what the configuration allows (a host not in
    /// `allowed_hosts`, a path outside `allowed_roots`).
    #[error("not allowed: {message}")]
    NotAllowed { message: String },
    /// The result could not be turned into JSON.
    #[error("the result cannot be serialised: {message}")]
    Output { message: String },
}

impl ToolError {
    /// A handler error from anything printable.
    pub fn handler(e: impl fmt::Display) -> Self {
        ToolError::Handler {
            message: e.to_string(),
        }
    }
}
