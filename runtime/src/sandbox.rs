//! The sandbox: what a capability may reach. It belongs to the engine — handlers see it through
//! [`crate::Ctx::fs`] and [`crate::Ctx::http`] — so two engines in one process can differ, and
//! nothing is a process-wide setting.

use std::path::PathBuf;
use std::sync::Arc;

use crate::fs::Fs;
use crate::http::{Net, NetLimits};
use crate::redact::Redactor;

/// Allowed roots (files), allowed hosts (network) and how much of a response the network tools
/// read, allowed programs (processes), and the operator's redaction rules for what capabilities
/// hand back from outside (a program's output, the machine's environment). The default reaches
/// no file, only hosts with public addresses, reads responses up to [`NetLimits::DEFAULT`],
/// starts no program, and redacts with the built-in rules.
#[derive(Debug, Default)]
pub struct Sandbox {
    fs: Fs,
    net: Arc<Net>,
    net_limits: NetLimits,
    commands: Arc<Vec<String>>,
    redactor: Arc<Redactor>,
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

    /// As [`Sandbox::with_roots`], keeping a root that does not exist as one an undo may put
    /// back ([`Fs::new_allowing_missing`]).
    pub fn with_roots_allowing_missing(
        mut self,
        roots: &[PathBuf],
    ) -> Result<Sandbox, std::io::Error> {
        self.fs = Fs::new_allowing_missing(roots)?;
        Ok(self)
    }

    /// The network rules: allowed hosts (empty: any public host) and headers sent to every
    /// API's own origin (never to a host a redirect leads to).
    pub fn with_net(mut self, net: Net) -> Sandbox {
        self.net = Arc::new(net);
        self
    }

    /// How much of a response the network tools read (airun.toml `max_fetch_bytes`,
    /// `max_response_bytes`, `max_download_bytes`). Default: [`NetLimits::DEFAULT`].
    pub fn with_net_limits(mut self, limits: NetLimits) -> Sandbox {
        self.net_limits = limits;
        self
    }

    /// The programs a capability may start (airun.toml `allowed_commands`): bare names, found
    /// on `PATH` when run, or absolute paths. Empty (the default): none.
    pub fn with_commands(mut self, commands: Vec<String>) -> Sandbox {
        self.commands = Arc::new(
            commands
                .into_iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        );
        self
    }

    /// The redaction rules capabilities apply to text they bring in from outside (a program's
    /// output, command lines, environment values): the operator's configured keys, patterns and
    /// secrets on top of the built-in ones. Default: the built-in rules.
    pub fn with_redactor(mut self, redactor: Redactor) -> Sandbox {
        self.redactor = Arc::new(redactor);
        self
    }

    /// This sandbox with its roots narrowed to the directories a client offers (MCP roots):
    /// an offered directory inside a root becomes a root; a root inside an offered directory
    /// stays; the rest go. Never wider than this sandbox: offering `/` keeps the roots as they
    /// are, and offering nothing that overlaps leaves no file access. The network, its limits, the
    /// programs and the redaction rules are shared.
    pub fn narrowed_to(&self, offered: &[PathBuf]) -> Sandbox {
        Sandbox {
            fs: self.fs.narrowed(offered),
            net: Arc::clone(&self.net),
            net_limits: self.net_limits,
            commands: Arc::clone(&self.commands),
            redactor: Arc::clone(&self.redactor),
        }
    }

    /// Puts the runtime's state directory out of the file tools' reach ([`Fs::protect`]); the
    /// engine does this with its own.
    pub fn protecting(mut self, state_dir: &std::path::Path) -> Sandbox {
        self.fs.protect(state_dir);
        self
    }

    pub fn fs(&self) -> &Fs {
        &self.fs
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    /// How much of a response the network tools read ([`Sandbox::with_net_limits`]).
    pub fn net_limits(&self) -> NetLimits {
        self.net_limits
    }

    /// The programs a capability may start ([`Sandbox::with_commands`]).
    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    /// The redaction rules ([`Sandbox::with_redactor`]).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_limits_default_and_survive_narrowing() {
        assert_eq!(Sandbox::new().net_limits(), NetLimits::DEFAULT);
        assert_eq!(
            NetLimits::DEFAULT,
            NetLimits {
                max_fetch_bytes: 5 << 20,
                max_response_bytes: 16 << 20,
                max_download_bytes: 256 << 20,
            }
        );
        let limits = NetLimits {
            max_fetch_bytes: 1,
            max_response_bytes: 2,
            max_download_bytes: 3,
        };
        let sandbox = Sandbox::new().with_net_limits(limits);
        assert_eq!(sandbox.net_limits(), limits);
        assert_eq!(sandbox.narrowed_to(&[]).net_limits(), limits);
    }
}
