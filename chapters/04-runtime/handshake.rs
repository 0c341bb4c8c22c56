//! The three pieces of level 4 that the lab asks you to write: the mount
//! options of config.json turned into mount(2)'s flags, and the two halves
//! of the handshake between `create` and `start`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::error::Result;
use crate::kernel;

// ANCHOR: mount_options
/// Splits mount options into flags, propagation flags, and the rest, which
/// is the file system's own data ("mode=755,size=65536k").
pub fn mount_options(options: &[String]) -> (MsFlags, MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        let (set, clear, propagate) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), false),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, false),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), false),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, false),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), false),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, false),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), false),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, false),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), false),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, false),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), false),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), false),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), false),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK, false),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), false),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, false),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), false),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, false),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), false),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, false),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), false),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME, false),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), false),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty(), false),
            "private" => (MsFlags::MS_PRIVATE, MsFlags::empty(), true),
            "rprivate" => (MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::empty(), true),
            "shared" => (MsFlags::MS_SHARED, MsFlags::empty(), true),
            "rshared" => (MsFlags::MS_SHARED | MsFlags::MS_REC, MsFlags::empty(), true),
            "slave" => (MsFlags::MS_SLAVE, MsFlags::empty(), true),
            "rslave" => (MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::empty(), true),
            "unbindable" => (MsFlags::MS_UNBINDABLE, MsFlags::empty(), true),
            "runbindable" => (MsFlags::MS_UNBINDABLE | MsFlags::MS_REC, MsFlags::empty(), true),
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        if propagate {
            propagation |= set;
        } else {
            flags = (flags | set) & !clear;
        }
    }
    (flags, propagation, (!data.is_empty()).then(|| data.join(",")))
}
// ANCHOR_END: mount_options

// ANCHOR: wait_for_start
/// In the container's first process, set up and ready: waits at the FIFO
/// until `start` comes, then says it is through. `ready` tells `create` that
/// we are at the door; it must run once the open is told and before it
/// waits. The open end comes back: keep it until execve, which closes it
/// (O_CLOEXEC), and that close is what tells `start` the program runs.
pub fn wait_for_start(fifo: &OwnedFd, ready: impl FnOnce()) -> Result<OwnedFd> {
    // Our root is the container's now, where the FIFO's path means nothing;
    // the handle `create` opened before the pivot still reaches it.
    let door = kernel::open_write_waiting(&through(fifo), ready)?;
    kernel::write_to(&door, b"0", "exec.fifo")?;
    Ok(door)
}
// ANCHOR_END: wait_for_start

// ANCHOR: release
/// In `start`: lets the process waiting at the FIFO go on, and waits until
/// it has written its byte and closed its end (at execve). True if it did;
/// false if it ended without coming through (`alive` is how to tell).
pub fn release(fifo: &Path, alive: impl Fn() -> bool) -> Result<bool> {
    // The name goes first, while the process still waits: a container
    // without its FIFO is one that has been started, as `state` tells it.
    // A handle keeps the FIFO itself, to be opened through /proc/self/fd.
    let handle = kernel::open_path(fifo)?;
    kernel::unlink(fifo)?;
    // Opening it to read is what lets the writer's open return. From here
    // on the process tells its own calls; we only read, untold.
    let reader = kernel::open_read_nonblocking(&through(&handle))?;
    Ok(!kernel::read_until_closed(&reader, "exec.fifo", alive)?.is_empty())
}
// ANCHOR_END: release

/// The path that reaches an open file through our handle on it, wherever
/// its name is (or whether it has one at all).
fn through(handle: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()))
}
