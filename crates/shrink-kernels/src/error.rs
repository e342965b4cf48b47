//! The one error type of this crate: a caller passed inconsistent shapes or parameters.
use std::fmt;

/// A kernel refused its arguments; the message names the argument and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError(pub String);

impl KernelError {
    pub(crate) fn new(msg: impl Into<String>) -> KernelError {
        KernelError(msg.into())
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KernelError {}

/// Result of a kernel call.
pub type Result<T> = std::result::Result<T, KernelError>;

/// Fails with "`what` has length L, expected E" unless `len == expected`.
pub(crate) fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(KernelError::new(format!("{what} has length {len}, expected {expected}")))
    }
}

/// `a * b`, or an error naming `what` on overflow.
pub(crate) fn mul(what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| KernelError::new(format!("{what}: size {a} x {b} overflows")))
}
