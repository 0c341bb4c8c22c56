//! Mounts: mount(2), umount2(2), pivot_root(2), chroot(2), and reading the mount table.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::unistd::{self};

use super::{failed, flag_names, io_failed};
use crate::error::Result;
use crate::narrate;

/// umount2(2) with MNT_DETACH: takes the mount out of the tree now, and
/// lets the kernel finish when nothing uses it any more.
pub fn umount_detach(path: &Path) -> Result<()> {
    narrate!("umount2({path:?}, MNT_DETACH)");
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| failed(format!("umount2({path:?})"), e))
}

/// The mount points at or below `dir`, deepest first, as this process's
/// /proc/self/mountinfo lists them. Only looks.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io_failed("reading /proc/self/mountinfo".into(), e))?;
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect();
    // Deepest first, so that no mount is detached from under another.
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// The mount point of the mount that `path` is on: the deepest mount point
/// of /proc/self/mountinfo that contains it. Only looks.
pub fn mount_point_of(path: &Path) -> Result<PathBuf> {
    let path = std::fs::canonicalize(path).map_err(|e| io_failed(format!("realpath({path:?})"), e))?;
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io_failed("reading /proc/self/mountinfo".into(), e))?;
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount_point| path.starts_with(mount_point))
        .max_by_key(|mount_point| mount_point.components().count())
        .unwrap_or_else(|| PathBuf::from("/")))
}

/// mountinfo writes space, tab, newline and backslash in paths as \ooo.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// chroot(2): from now on this process resolves "/" to `path`. Nothing
/// else changes: not the working directory, not open files, not mounts.
pub fn chroot(path: &Path) -> Result<()> {
    narrate!("chroot({path:?})");
    unistd::chroot(path).map_err(|e| failed(format!("chroot({path:?})"), e))
}

/// mount(2). `None` for what a mount does not use, told as `none`.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount_told(source, target, &format!("{target:?}"), fstype, flags, data)
}

fn mount_told(
    source: Option<&Path>,
    target: &Path,
    target_shown: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let shown = |p: Option<&Path>| p.map_or("none".to_string(), |p| format!("{p:?}"));
    let data_shown = data.map(|d| format!(", {d:?}")).unwrap_or_default();
    let call = format!(
        "mount({}, {target_shown}, {}, {}{data_shown})",
        shown(source),
        fstype.map_or("none".to_string(), |t| format!("{t:?}")),
        flag_names(flags)
    );
    narrate!("{call}");
    nix::mount::mount(source, target, fstype, flags, data).map_err(|e| failed(call, e))
}

/// mount(2) onto a file or directory found inside a root, reached through
/// its descriptor (/proc/self/fd/N), so that the mount lands on the very
/// file that was resolved, whatever has happened to its path since.
pub fn mount_on(
    source: Option<&Path>,
    target: &super::Inside,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let through = target.through_proc();
    let shown = format!("{through:?} = {:?} in the root", target.path());
    mount_told(source, &through, &shown, fstype, flags, data)
}

/// pivot_root(2): makes `new_root` the root mount of this mount namespace
/// and puts the old root at `put_old` (which may be `new_root` itself).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> Result<()> {
    narrate!("pivot_root({new_root:?}, {put_old:?})");
    unistd::pivot_root(new_root, put_old)
        .map_err(|e| failed(format!("pivot_root({new_root:?}, {put_old:?})"), e))
}

/// Makes `command` run in a mount namespace of its own in which /var/lib is
/// an empty tmpfs. Peers such as skopeo and buildah keep caches there
/// (/var/lib/containers/cache) that would outlive the run; this way they
/// go with the namespace when the command ends.
pub fn with_private_var_lib(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    narrate!(
        "for {:?}: unshare(CLONE_NEWNS), mount(\"tmpfs\", \"/var/lib\", \"tmpfs\"): a /var/lib of its own",
        command.get_program()
    );
    let done = |returned: i32| match returned {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    };
    // SAFETY: between fork and exec only system calls are made, with
    // constant arguments: nothing allocates or takes a lock.
    unsafe {
        command.pre_exec(move || {
            use nix::libc;
            done(libc::unshare(libc::CLONE_NEWNS))?;
            let private = libc::MS_REC | libc::MS_PRIVATE;
            done(libc::mount(c"none".as_ptr(), c"/".as_ptr(), std::ptr::null(), private, std::ptr::null()))?;
            done(libc::mount(c"tmpfs".as_ptr(), c"/var/lib".as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b\011c\134d"), "/tmp/a b\tc\\d");
        assert_eq!(unescape_mountinfo(r"/plain/path"), "/plain/path");
        // A backslash not followed by three octal digits is itself.
        assert_eq!(unescape_mountinfo(r"/odd\9"), r"/odd\9");
    }
}
