//! The sandbox: what a capability may reach. It belongs to the engine — handlers see it through
//! [`crate::Ctx::fs`] and [`crate::Ctx::http`] — so two engines in one process can differ, and
//! nothing is a process-wide setting.

use std::path::PathBuf;

use crate::fs::Fs;
use crate::http::Net;

/// Allowed roots (files) and allowed hosts (network). The default reaches no file and only
/// hosts with public addresses.
#[derive(Debug, Default)]
pub struct Sandbox {
    fs: Fs,
    net: Net,
}

impl Sandbox {
    /// No file access, public hosts only.
    pub fn new() -> Sandbox {
        Sandbox::default()
    }

    /// Files may be touched beneath these directories (each must exist).
    pub fn with_roots(mut self, roots: &[PathBuf]) -> Result<Sandbox, std::io::Error> {
        self.fs = Fs::new(roots)?;
        Ok(self)
    }

    /// The network rules: allowed hosts (empty: any public host) and headers sent to every
    /// API's own origin (never to a host a redirect leads to).
    pub fn with_net(mut self, net: Net) -> Sandbox {
        self.net = net;
        self
    }

    pub fn fs(&self) -> &Fs {
        &self.fs
    }

    pub fn net(&self) -> &Net {
        &self.net
    }
}
