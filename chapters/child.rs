//! Running a piece of our own code in a child process, the way container
//! runtimes start a container: fork, let the child set itself up and exec,
//! and learn through a close-on-exec pipe whether the set-up failed.
//!
//! The pipe is the trick: when execve(2) succeeds the kernel closes the
//! child's end, so the parent reads end-of-file and nothing else; when any
//! step fails the child writes the error there first. Either way the parent
//! knows, without guessing from an exit code.

use std::fs::File;
use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::ForkResult;

use crate::error::{Error, Result};
use crate::kernel;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(Signal),
}

impl Exit {
    /// The status a shell would report for it: the code, or 128 + signal.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Exit::Code(code) => ExitCode::from(code as u8),
            Exit::Signal(signal) => ExitCode::from(128 + signal as u8),
        }
    }
}

// ANCHOR: run_in_child
/// Runs `setup` in a forked child and waits for the child to end.
///
/// `setup` either execs (and so never returns), returns the code the child
/// should exit with, or fails; its failure comes back here as our error. A
/// panic in `setup` (a lab's unwritten piece, say) ends the child with 101
/// after the panic message, and never runs the parent's code in the child.
pub fn run_in_child(setup: impl FnOnce() -> Result<i32>) -> Result<Exit> {
    let (report_read, report_write) = kernel::pipe_cloexec()?;
    kernel::forward_signals_to_child()?;
    match kernel::fork()? {
        ForkResult::Child => {
            drop(report_read);
            let code = match std::panic::catch_unwind(AssertUnwindSafe(setup)) {
                Ok(Ok(code)) => code,
                Ok(Err(error)) => {
                    let _ = File::from(report_write).write_all(error.to_string().as_bytes());
                    1
                }
                Err(_panic) => 101,
            };
            let _ = std::io::stdout().flush();
            // _exit, not exit: the parent's clean-up guards live in this
            // copy of memory too, and must run only in the parent.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            kernel::set_signal_target(Some(child));
            drop(report_write);
            let mut report = String::new();
            let _ = File::from(report_read).read_to_string(&mut report);
            let status = kernel::waitpid(child);
            kernel::set_signal_target(None);
            let status = status?;
            if !report.is_empty() {
                return Err(Error::new(report));
            }
            match status {
                WaitStatus::Exited(_, code) => Ok(Exit::Code(code)),
                WaitStatus::Signaled(_, signal, _) => Ok(Exit::Signal(signal)),
                other => Err(Error::new(format!(
                    "the child ended in an unexpected way: {other:?}"
                ))),
            }
        }
    }
}
// ANCHOR_END: run_in_child
