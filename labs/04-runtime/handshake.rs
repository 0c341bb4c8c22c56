//! Level 4 lab: the mount options of config.json as mount(2)'s flags, and
//! the two halves of the handshake between `create` and `start`.
//!
//! Write the three functions below; `cargo lab 4` checks them, and
//! `cargo lab hint 4` gives a hint when you are stuck. Call the kernel only
//! through `kernel::`: each call narrates itself, and the check compares
//! what your program does, and the calls it makes, with the reference.
//! The sheet, labs/04-runtime/README.md, says what each function must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::error::Result;
use crate::kernel;

/// Splits mount options into flags, propagation flags, and the rest, which
/// is the file system's own data ("mode=755,size=65536k").
pub fn mount_options(options: &[String]) -> (MsFlags, MsFlags, Option<String>) {
    todo!(
        "split mount options into mount(2)'s flags (a later option winning), the propagation, and \
         the file system's data; `cargo lab hint 4` when stuck"
    )
}

/// In the container's first process, set up and ready: waits at the FIFO
/// until `start` comes, then says it is through. Returns the open end, to
/// be kept until execve closes it.
pub fn wait_for_start(fifo: &OwnedFd, ready: impl FnOnce()) -> Result<OwnedFd> {
    todo!(
        "wait at the FIFO until start comes (letting create end first, through ready), say you are \
         through, and hand back the open end; `cargo lab hint 4` when stuck"
    )
}

/// In `start`: lets the process waiting at the FIFO go on, and waits until
/// it has written its byte and closed its end. True if it did.
pub fn release(fifo: &Path, alive: impl Fn() -> bool) -> Result<bool> {
    todo!(
        "make state say running, let the process waiting at the FIFO go on, and wait until its \
         program runs (true) or it is gone (false); `cargo lab hint 4` when stuck"
    )
}
