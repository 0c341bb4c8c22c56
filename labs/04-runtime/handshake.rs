//! Level 4 lab: the mount options of config.json as mount(2)'s flags, and
//! the two halves of the handshake between `create` and `start`.
//!
//! Write the three functions below, in order; `cargo lab 4` checks them.
//! Call the kernel only through `kernel::` (open_write_waiting, write_to,
//! open_path, unlink, open_read_nonblocking, read_until_closed): each call
//! narrates itself, and the narration is part of what the check compares.
//! The sheet, labs/04-runtime/README.md, says more.

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
        "for each option: a flag to set (ro, nosuid, bind, ...) or clear (rw, suid, ...), a propagation \
         flag (private, rslave, ...), or else data; data joined with \",\", None if there is none"
    )
}

/// In the container's first process, set up and ready: waits at the FIFO
/// until `start` comes, then says it is through. Returns the open end, to
/// be kept until execve closes it.
pub fn wait_for_start(fifo: &OwnedFd, ready: impl FnOnce()) -> Result<OwnedFd> {
    todo!(
        "open /proc/self/fd/<fifo> to write with kernel::open_write_waiting (it calls ready() before it \
         waits), write the byte \"0\" to it (what: \"exec.fifo\"), return the open end"
    )
}

/// In `start`: lets the process waiting at the FIFO go on, and waits until
/// it has written its byte and closed its end. True if it did.
pub fn release(fifo: &Path, alive: impl Fn() -> bool) -> Result<bool> {
    todo!(
        "open_path the FIFO, unlink it, open /proc/self/fd/<handle> with open_read_nonblocking, then \
         read_until_closed (what: \"exec.fifo\", alive): true if something came"
    )
}
