//! The three pieces of level 2 that the lab asks you to write: the switch
//! to a root of the container's own, the user namespace's id maps, and
//! joining the namespaces of a running container.

use std::path::Path;

use nix::mount::MsFlags;
use nix::unistd::Pid;

use crate::error::Result;
use crate::kernel::{self, Root};

use super::{IdMap, IdMaps, Kind, Mount};

// ANCHOR: pivot_into
/// In a new mount namespace: makes `rootfs` the root of the whole mount
/// tree, with `mounts` made inside it, and lets go of the host's root.
/// The copies of the host's mounts first take `propagation` (level 2:
/// private). `before_pivot` runs once the mounts are made, while the host's
/// files are still in view, with the rootfs opened as a root to make things
/// in (level 4 makes its devices there and runs its createContainer hooks).
pub fn pivot_into(
    rootfs: &Path,
    mounts: &[Mount],
    propagation: MsFlags,
    before_pivot: impl FnOnce(&Root) -> Result<()>,
) -> Result<()> {
    // Our mount namespace began as a copy of the host's, and its mounts may
    // still share events with the host's. Each takes `propagation` first,
    // from "/" down: private, so that nothing we mount or unmount from here
    // on reaches the host (level 2); or a slave, which hears of the host's
    // mounts and tells it nothing (a runtime's default).
    kernel::mount(None, Path::new("/"), None, propagation, None)?;
    // pivot_root refuses a new root whose parent mount is shared: when all
    // were made shared, the one the rootfs is on is made private again.
    if propagation.contains(MsFlags::MS_SHARED) {
        kernel::mount(None, &kernel::mount_point_of(rootfs)?, None, MsFlags::MS_PRIVATE, None)?;
    }
    // pivot_root wants the new root to be a mount point: bind it onto itself.
    kernel::mount(Some(rootfs), rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    // The rootfs as a root to resolve targets in, opened now that the bind
    // is there: a descriptor taken before it would hold the directory
    // underneath, and mounts made through it would be hidden by the bind.
    let root = Root::open(rootfs)?;
    // The container's own file systems: a proc of its own, for one (it
    // shows the processes of the PID namespace that mounts it). Mounted
    // before the pivot, while the host's /proc is still in view (the kernel
    // wants to see one before it allows another). A target is a path in
    // the container: resolved inside the root (made if missing, a file for
    // a bind of a file), mounted on through the descriptor it gave.
    for mount in mounts {
        let target = mount.target_in(&root)?;
        kernel::mount_on(
            mount.source.as_deref(),
            &target,
            mount.fstype.as_deref(),
            mount.flags,
            mount.data.as_deref(),
        )?;
    }
    before_pivot(&root)?;
    // pivot_root(".", "."): the new root becomes "/", and the old root is
    // stacked on top of it, on the same directory...
    kernel::chdir(rootfs)?;
    kernel::pivot_root(Path::new("."), Path::new("."))?;
    // ...from where one detach takes it away. Nothing above "/" remains.
    // Its mounts become slaves first: were they shared with the host's, the
    // detach would unmount the host's own (runc takes the same care).
    kernel::mount(None, Path::new("."), None, MsFlags::MS_REC | MsFlags::MS_SLAVE, None)?;
    kernel::umount_detach(Path::new("."))?;
    kernel::chdir(Path::new("/"))?;
    Ok(())
}
// ANCHOR_END: pivot_into

// ANCHOR: map_ids
/// From outside: says which ids outside the user namespace of `child` its
/// ids inside stand for, users and groups each by their own lines. Each
/// file can be written once, all its lines in one write.
pub fn map_ids(child: Pid, maps: &IdMaps) -> Result<()> {
    let lines = |maps: &[IdMap]| -> String {
        maps.iter().map(|map| format!("{} {} {}\n", map.inside, map.outside, map.count)).collect()
    };
    let dir = Path::new("/proc").join(child.to_string());
    kernel::write_file(&dir.join("uid_map"), &lines(&maps.uids))?;
    kernel::write_file(&dir.join("gid_map"), &lines(&maps.gids))?;
    Ok(())
}
// ANCHOR_END: map_ids

// ANCHOR: join
/// Enters the namespaces of process `pid` of the given kinds, as nsenter
/// does. The order matters: the user namespace first (it grants the right
/// to enter the others), the mount namespace last (after it, /proc is the
/// container's, where `pid` means another process).
pub fn join(pid: Pid, kinds: &[Kind]) -> Result<()> {
    for kind in kinds {
        let file = Path::new("/proc").join(pid.to_string()).join("ns").join(kind.file);
        kernel::setns(&file, kind.flag)?;
    }
    Ok(())
}
// ANCHOR_END: join
