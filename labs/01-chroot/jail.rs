//! Level 1 lab: a root filesystem, a way into it, and the way out.
//!
//! Write the three functions below; `cargo lab 1` checks them, and
//! `cargo lab hint 1` gives a hint when you are stuck. Call the kernel only
//! through `kernel::`: each call narrates itself, and the check compares
//! what your program does, and the calls it makes, with the reference.
//! The sheet, labs/01-chroot/README.md, says what each function must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use std::path::Path;

use crate::error::Result;
use crate::kernel;

/// Fills the empty directory `rootfs` with a root filesystem.
pub fn build_rootfs(rootfs: &Path, busybox: &Path, applets: &[String]) -> Result<()> {
    todo!(
        "make rootfs a root filesystem that busybox's applets can run in (the sheet says what it holds); \
         `cargo lab hint 1` when stuck"
    )
}

/// Makes `rootfs` this process's "/".
pub fn enter(rootfs: &Path) -> Result<()> {
    todo!(
        "make rootfs this process's \"/\", so that no path, absolute or relative, reaches the host; \
         `cargo lab hint 1` when stuck"
    )
}

/// Leaves a chroot jail the classic way.
pub fn break_out() -> Result<()> {
    todo!(
        "from inside the jail, make the host's real root this process's \"/\" again; \
         `cargo lab hint 1` when stuck"
    )
}
