//! One call at a time per session, across threads and processes: mutating calls and undos of a
//! session take its lock, so undo order is effect order and no compensation is claimed twice.
//! Read-only calls take none and may overlap.
//!
//! In a process, a fair (FIFO) async mutex per session keeps arrival order; across processes, an
//! advisory lock (`flock`) on `locks/<hash>.lock` under the state directory. Waiting is bounded:
//! past `wait`, the call fails naming the session and the lock file instead of hanging.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The locks of one state directory.
pub(crate) struct SessionLocks {
    dir: PathBuf,
    local: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The in-process half of [`SessionLocks::files`].
    files_local: Arc<tokio::sync::Mutex<()>>,
    pub(crate) wait: Duration,
}

/// Held while a session's call or undo runs; released on drop.
pub(crate) struct SessionGuard {
    _file: File,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// Held while a call or an undo changes these paths (file-snapshot steps); released on drop.
pub(crate) struct PathGuard {
    _file: File,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// Why a session's lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("session `{session}` is busy: another call or undo has held {path} for more than {secs} s; try again, or stop the other process")]
    Busy {
        session: String,
        path: PathBuf,
        secs: u64,
    },
    #[error("cannot open the session lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SessionLocks {
    pub(crate) fn new(state_dir: &std::path::Path) -> Self {
        SessionLocks {
            dir: state_dir.join("locks"),
            local: Mutex::new(HashMap::new()),
            files_local: Arc::new(tokio::sync::Mutex::new(())),
            wait: Duration::from_secs(60),
        }
    }

    fn path(&self, session: &str) -> PathBuf {
        let digest = Sha256::digest(session.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.lock"))
    }

    /// Takes the session's lock, in arrival order within this process.
    pub(crate) async fn lock(&self, session: &str) -> Result<SessionGuard, LockError> {
        let local = {
            let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(session.to_string()).or_default())
        };
        let local = local.lock_owned().await;
        let file = self.flock(self.path(session), session)?;
        Ok(SessionGuard {
            _file: file,
            _local: local,
        })
    }

    /// Takes the lock every file-snapshot call, undo and redo of this state directory holds
    /// while it snapshots, changes and restores files (across sessions and processes): a call
    /// and an undo that touch the same files — under whatever name, nested or not — never
    /// interleave, and an undo's conflict check and its restore see the same files. One lock
    /// for all paths: agents' file changes are short, and per-path locks cannot see that
    /// `a/new` and `a/new/b.txt`, or one file under two roots, overlap. Waits in arrival
    /// order within the process, then on `flock` across processes, bounded by `wait`.
    pub(crate) async fn files(&self) -> Result<PathGuard, LockError> {
        let local = Arc::clone(&self.files_local).lock_owned().await;
        let file = self.flock(self.dir.join("files.lock"), "file changes")?;
        Ok(PathGuard {
            _file: file,
            _local: local,
        })
    }

    /// Takes the `flock` on `path` (created when missing), polling: another process holding it
    /// has short work to do. Past `wait`, busy, naming `what`.
    fn flock(&self, path: PathBuf, what: &str) -> Result<File, LockError> {
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = open_lock_file(&self.dir, &path).map_err(io)?;
        let started = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) => {
                    if started.elapsed() >= self.wait {
                        return Err(LockError::Busy {
                            session: what.to_string(),
                            path,
                            secs: self.wait.as_secs(),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
    }
}

/// Opens (or creates) a lock file, making its directory (`0700`) only when it is missing.
fn open_lock_file(dir: &std::path::Path, path: &std::path::Path) -> std::io::Result<File> {
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::journal::create_private_dir(dir)?;
            open()
        }
        other => other,
    }
}
