//! Front ends: each reads one kind of source into the neutral [`crate::ir::Ir`] and says what it
//! could not use as diagnostics. Inference, budgets, inspection and emission come after, in
//! [`crate::driver`], and are the same for every front end.

pub mod openapi;
pub mod python;

use std::path::Path;

/// Why [`read_regular`] read nothing.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    /// Larger than the limit: its size, or what was read before stopping.
    TooLarge(u64),
}

/// The bytes of `path`, an input file, read only when it is a regular file — looked at before it
/// is opened (opening a FIFO with no writer would hold forge for ever) and again once open — and
/// at most `limit` of them (a device or pipe reports no size; `/dev/zero` never ends).
pub(crate) fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let not_a_file = || {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or socket): give forge a file",
        ))
    };
    if !std::fs::metadata(path).map_err(ReadError::Io)?.is_file() {
        return Err(not_a_file());
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}
