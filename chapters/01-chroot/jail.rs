//! The three pieces of level 1 that the lab asks you to write: a root
//! filesystem, a way in (chroot), and the classic way out.

use std::path::Path;

use crate::error::Result;
use crate::kernel;

// ANCHOR: build_rootfs
/// Fills the empty directory `rootfs` with a root filesystem: the
/// directories programs expect, a statically linked busybox (it needs no
/// shared libraries, so it runs where there are none), a link named after
/// each of its applets, and the files that name the root user.
pub fn build_rootfs(rootfs: &Path, busybox: &Path, applets: &[String]) -> Result<()> {
    for dir in ["bin", "dev", "etc", "proc", "root", "sys"] {
        kernel::mkdir(&rootfs.join(dir), 0o755)?;
    }
    // /tmp is writable by everyone and sticky; mkdir's mode goes through the
    // umask, so set the bits with chmod.
    kernel::mkdir(&rootfs.join("tmp"), 0o1777)?;
    kernel::chmod(&rootfs.join("tmp"), 0o1777)?;

    // Programs expect /dev/null; the shell opens it for every job it
    // starts in the background. A device node is only a name for a driver's
    // numbers: 1, 3 is the null device. Everyone may write to it.
    kernel::mknod_char(&rootfs.join("dev/null"), 1, 3, 0o666)?;
    kernel::chmod(&rootfs.join("dev/null"), 0o666)?;

    kernel::copy(busybox, &rootfs.join("bin/busybox"))?;
    // busybox looks at the name it was started by (argv[0]) to know which
    // applet to be: /bin/ls -> busybox runs ls.
    kernel::symlink_each(Path::new("busybox"), &rootfs.join("bin"), applets, "applet")?;

    // `whoami` and `id` look names up in the rootfs's own /etc, not the host's.
    kernel::write_file(&rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    kernel::write_file(&rootfs.join("etc/group"), "root:x:0:\n")?;
    Ok(())
}
// ANCHOR_END: build_rootfs

// ANCHOR: enter
/// Makes `rootfs` this process's "/".
pub fn enter(rootfs: &Path) -> Result<()> {
    kernel::chroot(rootfs)?;
    // chroot(2) does not move the working directory: until this chdir, "."
    // is still the directory we were in, outside the new root.
    kernel::chdir(Path::new("/"))?;
    Ok(())
}
// ANCHOR_END: enter

// ANCHOR: break_out
/// Leaves a chroot jail, the way it has been done since the 1990s. Needs
/// only what the jailed process already has: root, and so CAP_SYS_CHROOT.
pub fn break_out() -> Result<()> {
    // 1. Any directory below the current root will do.
    let cell = Path::new("/.escape");
    kernel::mkdir(cell, 0o700)?;
    // 2. chroot into it, and do not chdir: the root moves down into the cell
    //    while the working directory stays above it, outside the new root.
    kernel::chroot(cell)?;
    // 3. The kernel stops a ".." walk at the process's root. Ours is below
    //    us now, so ".." climbs freely, up to the real root, where ".." is
    //    "." itself.
    while kernel::file_id(Path::new("."))? != kernel::file_id(Path::new(".."))? {
        kernel::chdir(Path::new(".."))?;
    }
    // 4. Make the real root our root again.
    kernel::chroot(Path::new("."))?;
    Ok(())
}
// ANCHOR_END: break_out
