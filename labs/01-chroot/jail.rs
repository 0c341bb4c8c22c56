//! Level 1 lab: a root filesystem, a way into it, and the way out.
//!
//! Write the three functions below, in order; `cargo lab 1` checks them.
//! Call the kernel only through `kernel::` (mkdir, chmod, mknod_char, copy, symlink_each,
//! write_file, chroot, chdir, file_id): each call narrates itself, and the
//! narration is part of what the check compares.
//! The sheet, labs/01-chroot/README.md, says more.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use std::path::Path;

use crate::error::Result;
use crate::kernel;

/// Fills the empty directory `rootfs` with a root filesystem.
pub fn build_rootfs(rootfs: &Path, busybox: &Path, applets: &[String]) -> Result<()> {
    todo!(
        "make bin, dev, etc, proc, root, sys (0o755) and tmp (0o1777, then chmod it), \
         mknod dev/null (1, 3, 0o666, then chmod it), copy busybox to bin/busybox, \
         link each applet in bin to \"busybox\", and write etc/passwd and etc/group for root"
    )
}

/// Makes `rootfs` this process's "/".
pub fn enter(rootfs: &Path) -> Result<()> {
    todo!("chroot into the rootfs, then chdir to \"/\" (chroot does not move the working directory)")
}

/// Leaves a chroot jail the classic way.
pub fn break_out() -> Result<()> {
    todo!(
        "mkdir /.escape, chroot into it without chdir, chdir(\"..\") until \".\" and \"..\" \
         have the same file_id, then chroot(\".\")"
    )
}
