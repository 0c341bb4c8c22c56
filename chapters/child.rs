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
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::ExitCode;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};

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
            let code = child_side(&report_write, None, setup);
            // _exit, not exit: the parent's clean-up guards live in this
            // copy of memory too, and must run only in the parent.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => parent_side(child, report_read, report_write, None, None),
    }
}
// ANCHOR_END: run_in_child

/// Like [`run_in_child`], but the child is cloned into new namespaces of the
/// kinds in `namespaces`, and waits until the parent lets it go. Before
/// that, `prepare`, if given, runs in the parent with the child's pid: a
/// user namespace needs its uid and gid maps written from outside, a
/// cgroup its first process put in, before the process inside goes on.
pub fn run_in_new_namespaces(
    namespaces: CloneFlags,
    prepare: Option<&mut dyn FnMut(Pid) -> Result<()>>,
    setup: impl FnOnce() -> Result<i32>,
) -> Result<Exit> {
    let (report_read, report_write) = kernel::pipe_cloexec()?;
    let (go_read, go_write) = kernel::pipe_cloexec()?;
    kernel::forward_signals_to_child()?;
    let go = (go_read, go_write);
    let child = kernel::clone(namespaces, || child_side(&report_write, Some(&go), setup))?;
    let (go_read, go_write) = go;
    drop(go_read);
    parent_side(child, report_read, report_write, prepare, Some(go_write))
}

/// The child's half: wait to be let go (if asked), run `setup`, and turn its
/// outcome into an exit code, its error into a report to the parent.
fn child_side(report: &OwnedFd, go: Option<&(OwnedFd, OwnedFd)>, setup: impl FnOnce() -> Result<i32>) -> i32 {
    if let Some((go_read, go_write)) = go {
        if !let_go(go_read, go_write) {
            return 1;
        }
    }
    let code = match std::panic::catch_unwind(AssertUnwindSafe(setup)) {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            let _ = nix::unistd::write(report, error.to_string().as_bytes());
            1
        }
        Err(_panic) => 101,
    };
    let _ = std::io::stdout().flush();
    code
}

/// The parent's half: run `prepare` and let a waiting child go, learn from
/// the report pipe whether its set-up failed, reap it.
fn parent_side(
    child: Pid,
    report_read: OwnedFd,
    report_write: OwnedFd,
    prepare: Option<&mut dyn FnMut(Pid) -> Result<()>>,
    go_write: Option<OwnedFd>,
) -> Result<Exit> {
    kernel::set_signal_target(Some(child));
    drop(report_write);
    if let Some(prepare) = prepare {
        if let Err(error) = prepare(child) {
            // The child waits for us; it must not go on half prepared.
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            kernel::set_signal_target(None);
            return Err(error);
        }
    }
    if let Some(go_write) = go_write {
        say_go(go_write);
    }
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
        other => Err(Error::new(format!("the child ended in an unexpected way: {other:?}"))),
    }
}

/// Clones a child into new namespaces that lives on after this call: a
/// container created and waiting to be started. `setup` runs in the child
/// and calls `ready` once it is set up; errors before that come back here,
/// with the child killed and reaped. Returns the child's pid once ready.
/// The child is born in the existing namespaces `joins` names (a container
/// joining a pod's), its new ones made inside them; this process stays
/// where it is.
pub fn spawn_in_new_namespaces(
    namespaces: CloneFlags,
    joins: &[(CloneFlags, &Path)],
    prepare: Option<&mut dyn FnMut(Pid) -> Result<()>>,
    setup: impl FnOnce(&mut dyn FnMut()) -> Result<i32>,
) -> Result<Pid> {
    let (report_read, report_write) = kernel::pipe_cloexec()?;
    let (go_read, go_write) = kernel::pipe_cloexec()?;
    let go = (go_read, go_write);
    let parent = kernel::pidfd_open(nix::unistd::getpid())?;
    let run_child = || {
        let report = std::cell::Cell::new(Some(report_write.as_raw_fd()));
        // A READY byte, then closing our end of the report pipe, tells the
        // parent we are ready: a quick program may be gone before the
        // parent looks, so the byte, not our being alive, is the news.
        // From then on the container outlives its creator, as it must.
        let mut ready = || {
            if let Some(fd) = report.take() {
                let _ = kernel::outlive_parent();
                // SAFETY: the fd is our end of the report pipe, still open.
                let _ = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, &[READY]);
                unsafe { nix::libc::close(fd) };
            }
        };
        // Until it is ready, a child whose creator was killed must not go
        // on alone: before the word to go, the end of the pipe tells it;
        // after, while it sets itself up, the parent-death signal.
        if !let_go(&go.0, &go.1) || kernel::die_with_parent(&parent).is_err() {
            return 1;
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| setup(&mut ready)));
        let code = match outcome {
            Ok(Ok(code)) => code,
            Ok(Err(error)) => {
                match report.take() {
                    // SAFETY: the fd is our end of the report pipe, still open.
                    Some(fd) => {
                        let _ = nix::unistd::write(
                            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                            error.to_string().as_bytes(),
                        );
                    }
                    None => eprintln!("container: {error}"),
                }
                1
            }
            Err(_panic) => 101,
        };
        let _ = std::io::stdout().flush();
        code
    };
    let child = kernel::clone_joining(joins, namespaces, run_child)?;
    let (go_read, go_write) = go;
    drop(go_read);
    drop(report_write);
    let fail = |error: Error| {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        Err(error)
    };
    if let Some(prepare) = prepare {
        if let Err(error) = prepare(child) {
            return fail(error);
        }
    }
    say_go(go_write);
    let mut report = Vec::new();
    let _ = File::from(report_read).read_to_end(&mut report);
    match report.as_slice() {
        [READY] => Ok(child),
        // The pipe also closes when the child dies without a word (a panic,
        // a signal) before it is ready.
        [] => fail(Error::new("the process ended while being set up, without a word (a signal, or a crash)")),
        error => fail(Error::new(String::from_utf8_lossy(error).into_owned())),
    }
}

/// What a child writes on its report pipe to say it is set up; an error
/// is text, and never this byte alone.
const READY: u8 = 0;

/// What the parent writes on the go pipe once it has prepared the child:
/// its cgroup joined, its id maps written, its hooks run.
const GO: u8 = b'g';

/// The parent's word that the child may go on, then its end closed.
fn say_go(go_write: OwnedFd) {
    let _ = nix::unistd::write(&go_write, &[GO]);
}

/// The child's wait for the parent's word. Only the word lets it go on:
/// the end of the pipe without it means the parent died or gave up while
/// preparing it (killed, a hook that failed), and a child that went on then
/// would run without its cgroup, its id maps or its device rules.
fn let_go(go_read: &OwnedFd, go_write: &OwnedFd) -> bool {
    // Our copy of the write end must go, or we would wait for ourselves.
    // SAFETY: the fd is our copy of the pipe's write end, not used again.
    unsafe { nix::libc::close(go_write.as_raw_fd()) };
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(go_read, &mut byte) {
            Ok(1) => return byte[0] == GO,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return false,
        }
    }
}
