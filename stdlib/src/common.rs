//! Argument checks and error constructors the modules share.

use aifirst::ToolError;

/// Longer paths are refused before they reach the file system.
pub(crate) const MAX_PATH_BYTES: usize = 4096;

/// Bad arguments, in words.
pub(crate) fn invalid(message: String) -> ToolError {
    ToolError::InvalidArguments { message }
}

/// The call failed, in words.
#[allow(dead_code)] // not every module combination uses it
pub(crate) fn failed(message: String) -> ToolError {
    ToolError::Handler { message }
}

/// Refuses paths no file system call should see: empty, with a NUL byte, or overlong.
#[allow(dead_code)] // not every module combination uses it
pub(crate) fn check_path(path: &str, arg: &str) -> Result<(), ToolError> {
    if path.is_empty() {
        return Err(invalid(format!(
            "`{arg}` is empty: give an absolute path inside an allowed directory, or one \
             relative to the first (list_allowed_directories shows them)"
        )));
    }
    if path.contains('\0') {
        return Err(invalid(format!(
            "`{arg}` contains a NUL byte, which no file name can hold: \"{}\"",
            path.escape_debug()
        )));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(invalid(format!(
            "`{arg}` is {} bytes long; paths are limited to {MAX_PATH_BYTES} bytes",
            path.len()
        )));
    }
    Ok(())
}
