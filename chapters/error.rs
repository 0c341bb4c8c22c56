//! Errors that a user can act on: one plain sentence that says what is wrong
//! and, where we know it, what to do.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug)]
pub struct Error(String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(sentence: impl Into<String>) -> Self {
        Error(sentence.into())
    }

    /// Adds what to do about it, for callers that know more than the
    /// system call that failed.
    pub fn hint(self, what_to_do: impl fmt::Display) -> Self {
        Error(format!("{}: {what_to_do}", self.0))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Bad input and failed set-up end with this code, as with runc and chroot(8)
/// usage errors; a command that ran ends with its own status.
pub const USAGE_EXIT: u8 = 2;

/// How every example ends: the status it computed, or its error as one line
/// on stderr and exit code 2.
pub fn finish(program: &str, result: Result<ExitCode>) -> ExitCode {
    finish_with(program, result, USAGE_EXIT)
}

/// Like [`finish`], with the exit code a peer uses for errors (runc: 1), for
/// programs that other programs drive and judge by that code.
pub fn finish_with(program: &str, result: Result<ExitCode>, error_code: u8) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{program}: {error}");
            ExitCode::from(error_code)
        }
    }
}
