//! Files and directories: making, changing, opening and removing them.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd;

use super::{failed, io_failed};
use super::{mounts_under, umount_detach};
use crate::error::{Error, Result};
use crate::narrate;

/// Makes a new, empty, private directory named `<prefix>XXXXXX` in $TMPDIR.
pub fn mkdtemp(prefix: &str) -> Result<PathBuf> {
    let template = std::env::temp_dir().join(format!("{prefix}XXXXXX"));
    let made = unistd::mkdtemp(&template).map_err(|e| failed(format!("mkdtemp({template:?})"), e))?;
    narrate!("mkdtemp({template:?}) = {made:?}");
    Ok(made)
}

/// mkdir(2). The mode passes through the process's umask.
pub fn mkdir(path: &Path, mode: u32) -> Result<()> {
    narrate!("mkdir({path:?}, {mode:#o})");
    unistd::mkdir(path, Mode::from_bits_truncate(mode)).map_err(|e| failed(format!("mkdir({path:?})"), e))
}

/// mkdir(2) for each directory of `path` that is missing, 0o755, as
/// `mkdir -p` does; tells only the ones it makes.
pub fn mkdir_all(path: &Path) -> Result<()> {
    let missing: Vec<&Path> =
        path.ancestors().take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists()).collect();
    for dir in missing.into_iter().rev() {
        match mkdir(dir, 0o755) {
            // Made by another process in the meantime (two creates into a
            // new --root at once): what we wanted is there.
            Err(_) if dir.is_dir() => continue,
            made => made?,
        }
    }
    Ok(())
}

/// umask(2): the bits that new files' modes lose from now on.
pub fn umask(mask: u32) {
    narrate!("umask({mask:#o})");
    nix::sys::stat::umask(Mode::from_bits_truncate(mask));
}

/// chmod(2): sets the mode exactly, umask or not.
pub fn chmod(path: &Path, mode: u32) -> Result<()> {
    narrate!("chmod({path:?}, {mode:#o})");
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| failed(format!("chmod({path:?})"), e))
}

/// chown(2), without following a symbolic link at the end.
pub fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    narrate!("chown({path:?}, {uid}, {gid})");
    unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(unistd::Uid::from_raw(uid)),
        Some(unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| failed(format!("chown({path:?})"), e))
}

/// Copies a file's bytes and permissions (the kernel does it with
/// copy_file_range(2), without the bytes passing through us).
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    narrate!("copy({from:?}, {to:?})");
    std::fs::copy(from, to).map(drop).map_err(|e| io_failed(format!("copy({from:?}, {to:?})"), e))
}

/// mknod(2) of a character device, such as /dev/null (1, 3). The mode
/// passes through the umask.
pub fn mknod_char(path: &Path, major: u64, minor: u64, mode: u32) -> Result<()> {
    use nix::sys::stat::{makedev, SFlag};
    narrate!("mknod({path:?}, S_IFCHR|{mode:#o}, makedev({major}, {minor}))");
    nix::sys::stat::mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(mode), makedev(major, minor))
        .map_err(|e| failed(format!("mknod({path:?})"), e))
}

/// symlink(2): `link` will point at `target`, which is not checked.
pub fn symlink(target: &Path, link: &Path) -> Result<()> {
    narrate!("symlink({target:?}, {link:?})");
    unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link)
        .map_err(|e| failed(format!("symlink({target:?}, {link:?})"), e))
}

/// One symlink to `target` for each name in `dir`, told as one line: the list
/// is long and its length depends on the version of whatever provides it.
pub fn symlink_each(target: &Path, dir: &Path, names: &[String], each: &str) -> Result<()> {
    narrate!("symlink({target:?}, \"{}/<{each}>\") for each {each}", dir.display());
    for name in names {
        let link = dir.join(name);
        unistd::symlinkat(target, nix::fcntl::AT_FDCWD, &link)
            .map_err(|e| failed(format!("symlink({target:?}, {link:?})"), e))?;
    }
    Ok(())
}

/// Creates (or truncates) a file and writes `contents` into it.
pub fn write_file(path: &Path, contents: &str) -> Result<()> {
    // Short contents are the lesson (a limit, a map); long ones, a size.
    if contents.len() <= 100 {
        narrate!("write({path:?}, {contents:?})");
    } else {
        narrate!("write({path:?}, {} bytes)", contents.len());
    }
    std::fs::write(path, contents).map_err(|e| io_failed(format!("write({path:?})"), e))
}

/// Writes into `path` what the file `source` holds, told without the
/// contents (they differ from machine to machine: a group's CPUs, say).
pub fn write_file_from(path: &Path, source: &Path) -> Result<()> {
    narrate!("write({path:?}, what {source:?} holds)");
    let contents = std::fs::read_to_string(source).map_err(|e| io_failed(format!("read({source:?})"), e))?;
    std::fs::write(path, contents.trim()).map_err(|e| io_failed(format!("write({path:?})"), e))
}

/// rename(2): `from` takes the name `to`, in one step; refused (EEXIST,
/// ENOTEMPTY) where `to` is a directory that is not empty.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    narrate!("rename({from:?}, {to:?})");
    std::fs::rename(from, to).map_err(|e| io_failed(format!("rename({from:?}, {to:?})"), e))
}

/// Creates (or truncates) a file and writes `bytes` into it, told by size.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    narrate!("write({path:?}, {} bytes)", bytes.len());
    std::fs::write(path, bytes).map_err(|e| io_failed(format!("write({path:?})"), e))
}

/// flock(2) LOCK_EX on `path` (made if missing): held until what it
/// returns is dropped, so that processes that take it take turns.
pub fn lock_file(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    narrate!("flock({path:?}, LOCK_EX)");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io_failed(format!("open({path:?})"), e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| failed(format!("flock({path:?}, LOCK_EX)"), e))
}

/// Replaces the file at `path` as one step: the contents go to a new file
/// beside it, which rename(2) then puts in its place. A reader (containerd
/// asks for a container's state often) sees the old file or the new one,
/// never one half written.
pub fn write_file_atomically(path: &Path, contents: &str) -> Result<()> {
    let mut new = path.as_os_str().to_owned();
    new.push(".new");
    let new = PathBuf::from(new);
    let name = new.file_name().unwrap_or_default().to_string_lossy().into_owned();
    narrate!("write({path:?}, {} bytes) through {name:?} and rename(2)", contents.len());
    std::fs::write(&new, contents).map_err(|e| io_failed(format!("write({new:?})"), e))?;
    std::fs::rename(&new, path).map_err(|e| io_failed(format!("rename({new:?}, {path:?})"), e))
}

/// Removes a directory tree: unlink(2) for each file, rmdir(2) for each
/// directory, deepest first. Does not follow symlinks out of the tree.
///
/// Whatever is mounted inside the tree is detached first: without a mount
/// namespace of its own, a mount made in a chroot lands in the host's mount
/// table, and a bind mount there would lead the removal into host files.
pub fn remove_dir_all(path: &Path) -> Result<()> {
    for mount_point in mounts_under(path)? {
        umount_detach(&mount_point)?;
    }
    narrate!("remove_dir_all({path:?})");
    std::fs::remove_dir_all(path).map_err(|e| io_failed(format!("remove_dir_all({path:?})"), e))
}

/// rmdir(2). A cgroup's directory stays busy for a moment after its last
/// process died, so EBUSY is retried for up to a second.
pub fn rmdir(path: &Path) -> Result<()> {
    narrate!("rmdir({path:?})");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(io_failed(format!("rmdir({path:?})"), e)),
        }
    }
}

/// mkfifo(3): a named pipe. Opening it to write waits for a reader.
pub fn mkfifo(path: &Path, mode: u32) -> Result<()> {
    narrate!("mkfifo({path:?}, {mode:#o})");
    unistd::mkfifo(path, Mode::from_bits_truncate(mode)).map_err(|e| failed(format!("mkfifo({path:?})"), e))
}

/// open(2) with O_PATH: a handle on a file that neither reads nor writes
/// it, and can be opened properly later through /proc/self/fd.
pub fn open_path(path: &Path) -> Result<OwnedFd> {
    narrate!("open({path:?}, O_PATH|O_CLOEXEC)");
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| failed(format!("open({path:?}, O_PATH)"), e))
}

/// A handle on the character device `path` (O_PATH), once fstat says it
/// is the device `major`:`minor`: what a bind mount of it will show, and
/// not whatever file or link has taken its name.
pub fn open_char_device(path: &Path, major: u64, minor: u64) -> Result<OwnedFd> {
    let handle = open_path(path)?;
    let stat = nix::sys::stat::fstat(&handle).map_err(|e| failed(format!("fstat({path:?})"), e))?;
    let is_char = stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR;
    let numbers = (nix::sys::stat::major(stat.st_rdev), nix::sys::stat::minor(stat.st_rdev));
    if !is_char || numbers != (major, minor) {
        return Err(Error::new(format!(
            "{path:?} is not the character device {major}:{minor} but another file in its place: \
             refusing to use it; make it with mknod -m 666 {} c {major} {minor}",
            path.display()
        )));
    }
    Ok(handle)
}

/// open(2) to write a new file (or an old one, emptied), mode 0644.
pub fn create_file(path: &Path) -> Result<OwnedFd> {
    narrate!("open({path:?}, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0o644)");
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o644))
        .map_err(|e| failed(format!("open({path:?}, O_CREAT)"), e))
}

/// open(2) with O_CREAT|O_EXCL, then `contents` written: a file made only
/// if there is none of that name, atomically, so that of two callers one
/// makes it. False if it was there already.
pub fn create_new_file(path: &Path, contents: &str) -> Result<bool> {
    narrate!("open({path:?}, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0o644), write({contents:?})");
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
    let file = match nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o644)) {
        Ok(file) => file,
        Err(Errno::EEXIST) => return Ok(false),
        Err(e) => return Err(failed(format!("open({path:?}, O_CREAT|O_EXCL)"), e)),
    };
    std::io::Write::write_all(&mut std::fs::File::from(file), contents.as_bytes())
        .map_err(|e| Error::new(format!("write({path:?}) failed: {e}")))?;
    Ok(true)
}

/// open(2) to write, which for a FIFO waits until someone opens it to read.
/// `about_to_wait` runs once the call is told, just before it waits: to let
/// a parent know that we are at the door.
pub fn open_write_waiting(path: &Path, about_to_wait: impl FnOnce()) -> Result<OwnedFd> {
    narrate!("open({path:?}, O_WRONLY|O_CLOEXEC)");
    about_to_wait();
    nix::fcntl::open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| failed(format!("open({path:?}, O_WRONLY)"), e))
}

/// open(2) to read without waiting: a FIFO opened so lets a writer waiting
/// in its own open go on.
pub fn open_read_nonblocking(path: &Path) -> Result<OwnedFd> {
    narrate!("open({path:?}, O_RDONLY|O_NONBLOCK|O_CLOEXEC)");
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| failed(format!("open({path:?}, O_RDONLY)"), e))
}

/// read(2) from a FIFO opened without waiting, until a writer has come,
/// written, and closed its end; what it wrote. Not told: it only reads
/// (and the writer is telling its own calls meanwhile). Between reads it
/// sleeps in poll(2), woken by the writer's bytes or its close.
/// `writer_may_come` is asked while no writer is there, at least every
/// tenth of a second: when it says no, the wait ends, with nothing. A
/// writer that closes without writing ends it with nothing too.
pub fn read_until_closed(fd: &OwnedFd, what: &str, writer_may_come: impl Fn() -> bool) -> Result<Vec<u8>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut bytes = Vec::new();
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(failed(format!("poll({what})"), e)),
        }
        // Linux tells a hang-up on a FIFO only once a writer has come and
        // gone, never before the first one comes.
        let came_and_went = fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLHUP));
        let mut buffer = [0u8; 64];
        match unistd::read(fd, &mut buffer) {
            // No writer: none has come yet, or it came and went.
            Ok(0) if !bytes.is_empty() || came_and_went => break,
            Ok(0) if !writer_may_come() => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            // A writer, with nothing written yet.
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(failed(format!("read({what})"), e)),
        }
    }
    Ok(bytes)
}

/// unlink(2).
pub fn unlink(path: &Path) -> Result<()> {
    narrate!("unlink({path:?})");
    unistd::unlink(path).map_err(|e| failed(format!("unlink({path:?})"), e))
}

/// write(2) of `bytes` to `fd`, told by what it is for.
pub fn write_to(fd: &OwnedFd, bytes: &[u8], what: &str) -> Result<()> {
    narrate!("write({what}, {} byte)", bytes.len());
    unistd::write(fd, bytes).map(drop).map_err(|e| failed(format!("write({what})"), e))
}

/// chdir(2).
pub fn chdir(path: &Path) -> Result<()> {
    narrate!("chdir({path:?})");
    unistd::chdir(path).map_err(|e| failed(format!("chdir({path:?})"), e))
}

/// The identity of a file: its device and inode. Two paths with the same
/// identity are the same directory, whatever their names. Only looks.
pub fn file_id(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| io_failed(format!("stat({path:?})"), e))?;
    Ok((meta.dev(), meta.ino()))
}

/// A pipe whose ends close by themselves when this process execs.
pub fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd)> {
    narrate!("pipe2(O_CLOEXEC)");
    unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed("pipe2(O_CLOEXEC)".into(), e))
}

/// Whether descriptor `fd` is open in this process. Only looks.
pub fn is_open(fd: i32) -> bool {
    nix::fcntl::fcntl(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, nix::fcntl::FcntlArg::F_GETFD)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_atomically_is_never_seen_half_written() {
        let dir = std::env::temp_dir().join(format!("podlab-unit-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("state.json");
        write_file_atomically(&file, "old").unwrap();
        // A reader that opened the old file keeps reading it whole...
        let mut reader = std::fs::File::open(&file).unwrap();
        write_file_atomically(&file, &"new".repeat(100_000)).unwrap();
        let mut old = String::new();
        std::io::Read::read_to_string(&mut reader, &mut old).unwrap();
        // ...and one that opens it now reads the new one whole.
        let new = std::fs::read_to_string(&file).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(old, "old");
        assert_eq!(new.len(), 300_000);
        assert_eq!(names, ["state.json"], "the new file's temporary name is gone");
    }
}
