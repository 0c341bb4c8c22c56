//! Level 2 lab: a root of the container's own, a user namespace's id maps,
//! and joining a running container.
//!
//! Write the three functions below; `cargo lab 2` checks them, and
//! `cargo lab hint 2` gives a hint when you are stuck. Call the kernel only
//! through `kernel::`: each call narrates itself, and the check compares
//! what your program does, and the calls it makes, with the reference.
//! The sheet, labs/02-namespaces/README.md, says what each function must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use std::path::Path;

use nix::mount::MsFlags;
use nix::unistd::Pid;

use crate::error::Result;
use crate::kernel::{self, Root};

use super::{IdMap, IdMaps, Kind, Mount};

/// In a new mount namespace: makes `rootfs` the root of the whole mount
/// tree, with `mounts` made inside it, and lets go of the host's root.
/// The copies of the host's mounts first take `propagation`. `before_pivot`
/// runs once the mounts are made, before the pivot, with the rootfs opened
/// as a root to make things in.
pub fn pivot_into(
    rootfs: &Path,
    mounts: &[Mount],
    propagation: MsFlags,
    before_pivot: impl FnOnce(&Root) -> Result<()>,
) -> Result<()> {
    todo!(
        "make rootfs the root of this namespace's whole mount tree, the host's mounts' copies given \
         `propagation` first, with `mounts` made in it and before_pivot run before the switch, and \
         nothing of the host's root left; `cargo lab hint 2` when stuck"
    )
}

/// From outside: says which ids outside the user namespace of `child` its
/// ids inside stand for.
pub fn map_ids(child: Pid, maps: &IdMaps) -> Result<()> {
    todo!(
        "make the ids inside the child's user namespace stand for the ids outside that `maps` says, \
         users by `maps.uids` and groups by `maps.gids`; `cargo lab hint 2` when stuck"
    )
}

/// Enters the namespaces of process `pid` of the given kinds, in the order given.
pub fn join(pid: Pid, kinds: &[Kind]) -> Result<()> {
    todo!(
        "move this process into process `pid`'s namespaces of the kinds in `kinds`, in the order given; \
         `cargo lab hint 2` when stuck"
    )
}
