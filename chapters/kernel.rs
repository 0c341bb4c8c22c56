//! The one seam between podlab and the kernel.
//!
//! Every call that changes the kernel's state goes through a function here,
//! and each one narrates itself before it acts. So "everything is narrated"
//! is a property of the design rather than a habit to keep, and a reader who
//! wants to know what a level really asks of Linux can read this file.
//!
//! Each function returns an [`Error`] naming the call that failed and why.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{self, ForkResult, Pid};

use crate::error::{Error, Result};
use crate::narrate;

fn failed(call: String, errno: Errno) -> Error {
    Error::new(format!("{call} failed: {} ({errno:?})", errno.desc()))
}

fn io_failed(call: String, error: std::io::Error) -> Error {
    match error.raw_os_error() {
        Some(code) => failed(call, Errno::from_raw(code)),
        None => Error::new(format!("{call} failed: {error}")),
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::new(format!("the path {path:?} contains a NUL byte")))
}

/// Refuses to go on without root, saying which privilege the level needs.
pub fn require_root(needs: &str) -> Result<()> {
    if unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "this needs root ({needs}): run it again with sudo, or as root in the course VM"
        )))
    }
}

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
    let missing: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
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

/// kill(2) with SIGKILL to every process `members` lists, again and again
/// until it lists none (a process may fork while we kill), for at most five
/// seconds. Told as one line, whether there were any or not (processes on
/// their way out make that a matter of timing); a process that is gone
/// already is no error.
pub fn kill_until_none_left(members: impl Fn() -> Vec<Pid>, whose: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    narrate!("kill(pid, SIGKILL) for each process {whose}, until none is left");
    let mut left = members();
    while !left.is_empty() && std::time::Instant::now() < deadline {
        for pid in &left {
            let _ = signal::kill(*pid, Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = members();
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
/// (and the writer is telling its own calls meanwhile). `writer_may_come`
/// is asked while no writer has come: when it says no, the wait ends, with
/// nothing.
pub fn read_until_closed(fd: &OwnedFd, what: &str, writer_may_come: impl Fn() -> bool) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let mut buffer = [0u8; 64];
        match unistd::read(fd, &mut buffer) {
            Ok(0) if !bytes.is_empty() => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(failed(format!("read({what})"), e)),
        }
        // A writer that came holds its end open a moment; one that did not
        // may be gone for good.
        if bytes.is_empty() && !writer_may_come() {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(10) {
            return Err(Error::new(format!("read({what}): no writer came and went within 10 s")));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
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

/// setrlimit(2). Raising a hard limit needs CAP_SYS_RESOURCE.
pub fn setrlimit(name: &str, resource: nix::sys::resource::Resource, soft: u64, hard: u64) -> Result<()> {
    narrate!("setrlimit({name}, {soft}, {hard})");
    nix::sys::resource::setrlimit(resource, soft, hard).map_err(|e| match e {
        Errno::EPERM => Error::new(format!(
            "setrlimit({name}) to a hard limit of {hard} failed: raising a hard limit needs CAP_SYS_RESOURCE, \
             which this process lacks; ask for at most the current hard limit"
        )),
        _ => failed(format!("setrlimit({name})"), e),
    })
}

/// Takes on the user and groups a container's process runs as: groups
/// first, while we still may change them.
pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    let groups: Vec<unistd::Gid> = groups.iter().map(|g| unistd::Gid::from_raw(*g)).collect();
    narrate!("setgroups({groups:?})");
    unistd::setgroups(&groups).map_err(|e| failed("setgroups".into(), e))?;
    narrate!("setresgid({gid}, {gid}, {gid})");
    let gid = unistd::Gid::from_raw(gid);
    unistd::setresgid(gid, gid, gid).map_err(|e| failed("setresgid".into(), e))?;
    narrate!("setresuid({uid}, {uid}, {uid})");
    let uid = unistd::Uid::from_raw(uid);
    unistd::setresuid(uid, uid, uid).map_err(|e| failed("setresuid".into(), e))
}

/// prctl(PR_SET_NO_NEW_PRIVS): from now on, execve never grants more
/// privilege (no setuid bits, no file capabilities).
pub fn no_new_privileges() -> Result<()> {
    narrate!("prctl(PR_SET_NO_NEW_PRIVS, 1)");
    nix::sys::prctl::set_no_new_privs().map_err(|e| failed("prctl(PR_SET_NO_NEW_PRIVS)".into(), e))
}

/// Writes /proc/self/oom_score_adj: how the OOM killer ranks this process
/// (-1000 never, 1000 first). Going below the current score needs
/// CAP_SYS_RESOURCE.
pub fn set_oom_score_adj(score: i32) -> Result<()> {
    let file = Path::new("/proc/self/oom_score_adj");
    narrate!("write({file:?}, {:?})", score.to_string());
    std::fs::write(file, score.to_string()).map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EACCES) | Some(Errno::EPERM) => Error::new(format!(
            "an oomScoreAdj of {score}, below the current score, needs CAP_SYS_RESOURCE, which this process \
             lacks: ask for the current score or more"
        )),
        Some(Errno::EINVAL) => Error::new(format!("an oomScoreAdj of {score} is outside -1000..=1000")),
        _ => io_failed(format!("write({file:?})"), e),
    })
}

/// Asks AppArmor to confine this process with `profile` from its next
/// execve on, as runc does: "exec PROFILE" written to its attr file (the
/// one of AppArmor's own since Linux 5.8, the shared one before).
pub fn apparmor_on_exec(profile: &str) -> Result<()> {
    let own = Path::new("/proc/self/attr/apparmor/exec");
    let file = if own.exists() { own } else { Path::new("/proc/self/attr/exec") };
    narrate!("write({file:?}, {:?})", format!("exec {profile}"));
    std::fs::write(file, format!("exec {profile}")).map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOENT) | Some(Errno::EINVAL) => Error::new(format!(
            "AppArmor has no profile {profile:?} loaded: load it (apparmor_parser -r FILE), or name another"
        )),
        _ => io_failed(format!("write({file:?})"), e),
    })
}

/// seccomp(SECCOMP_SET_MODE_FILTER): from now on the kernel runs this
/// classic BPF program on each system call of this thread and does what it
/// returns. The filter stays for good, across execve and into children.
pub fn seccomp_set_filter(instructions: &[nix::libc::sock_filter], flags: u32) -> Result<()> {
    use nix::libc;
    let flag_names: Vec<&str> = [
        (libc::SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC"),
        (libc::SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"),
        (libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
    ]
    .into_iter()
    .filter(|(bit, _)| libc::c_ulong::from(flags) & bit != 0)
    .map(|(_, name)| name)
    .collect();
    let shown = if flag_names.is_empty() { "0".to_string() } else { flag_names.join("|") };
    narrate!("seccomp(SECCOMP_SET_MODE_FILTER, {shown}, {} instructions)", instructions.len());
    let len = u16::try_from(instructions.len()).map_err(|_| {
        Error::new(format!(
            "a seccomp filter of {} instructions is too long: the kernel takes at most 4096",
            instructions.len()
        ))
    })?;
    // The kernel only reads the program, and copies it before returning.
    let program = libc::sock_fprog { len, filter: instructions.as_ptr().cast_mut() };
    // SAFETY: `program` points at `len` instructions that outlive the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &program as *const libc::sock_fprog,
        )
    };
    match result {
        0 => Ok(()),
        // With SECCOMP_FILTER_FLAG_TSYNC, a thread that cannot take the
        // filter along is named by its id instead of an error.
        thread if thread > 0 => Err(Error::new(format!(
            "seccomp(SECCOMP_SET_MODE_FILTER) failed: thread {thread} has a filter of its own and cannot \
             take this one too: install it before the process starts threads"
        ))),
        _ => match Errno::last() {
            Errno::EACCES => Err(Error::new(
                "seccomp(SECCOMP_SET_MODE_FILTER) failed: without no_new_privs a filter needs \
                 CAP_SYS_ADMIN, which this process lacks; set process.noNewPrivileges, or install the \
                 filter while still root",
            )),
            errno => Err(failed("seccomp(SECCOMP_SET_MODE_FILTER)".into(), errno)),
        },
    }
}

/// One eBPF instruction as the kernel reads it (struct bpf_insn, 8 bytes):
/// what to do, the registers it uses, a jump's offset, a constant.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    pub code: u8,
    /// The destination register in the low four bits, the source in the
    /// high four: C's bit fields `dst_reg:4, src_reg:4` on a little-endian
    /// machine, as x86_64 and arm64 are.
    pub registers: u8,
    /// For a jump, how many instructions it skips.
    pub offset: i16,
    pub immediate: i32,
}

impl BpfInstruction {
    pub const fn new(code: u8, destination: u8, source: u8, offset: i16, immediate: i32) -> Self {
        BpfInstruction { code, registers: destination | source << 4, offset, immediate }
    }
}

/// bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program: the
/// kernel's verifier checks it (it must end, and read nothing but its
/// context), and hands it back as a descriptor, attached to nothing yet.
pub fn bpf_load_cgroup_device_program(instructions: &[BpfInstruction]) -> Result<OwnedFd> {
    use nix::libc;
    use std::os::fd::FromRawFd;
    narrate!("bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {} instructions)", instructions.len());
    const BPF_PROG_LOAD: libc::c_int = 5;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    // The start of union bpf_attr as BPF_PROG_LOAD reads it; the kernel
    // takes a shorter union than its own and reads the rest as zeros.
    #[repr(C)]
    struct ProgramLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
    }
    let count = u32::try_from(instructions.len()).map_err(|_| {
        Error::new(format!("an eBPF program of {} instructions is too long to load", instructions.len()))
    })?;
    // The kernel wants a license. Only programs that call the helpers it
    // keeps for GPL code need "GPL"; this one calls none. runc's says "Apache".
    let license = c"Apache";
    let load = ProgramLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: count,
        insns: instructions.as_ptr() as u64,
        license: license.as_ptr() as u64,
    };
    // SAFETY: `load` points at `count` instructions and a C string, all of
    // which outlive the call; the kernel copies them before it returns.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &load as *const ProgramLoad, size_of::<ProgramLoad>())
    };
    if fd < 0 {
        return Err(match Errno::last() {
            Errno::EPERM => Error::new(
                "bpf(BPF_PROG_LOAD) failed: loading a device program needs CAP_BPF and CAP_SYS_ADMIN, and \
                 on kernels before 5.11 room under the locked-memory limit: run as root, with ulimit -l unlimited",
            ),
            errno => failed("bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE)".into(), errno),
        });
    }
    // SAFETY: the kernel just made this descriptor for us (close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE): from now on, whenever a process
/// in the cgroup v2 group at `cgroup_dir` (or in a group below it) opens or
/// makes a device file, the kernel runs `program`, and refuses with EPERM
/// when it returns 0. The group keeps the program: it stays attached when
/// our descriptor closes, and goes with the group.
pub fn bpf_attach_cgroup_device(program: &OwnedFd, cgroup_dir: &Path) -> Result<()> {
    use nix::libc;
    // BPF_F_ALLOW_MULTI, as runc: programs attached below this group (by a
    // runtime or systemd inside the container) run too, and all must allow.
    narrate!("bpf(BPF_PROG_ATTACH, {cgroup_dir:?}, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)");
    const BPF_PROG_ATTACH: libc::c_int = 8;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    let call = || format!("bpf(BPF_PROG_ATTACH, {cgroup_dir:?}, BPF_CGROUP_DEVICE)");
    // The group is named by a descriptor of its directory, opened to read
    // (an O_PATH one will not do).
    let group =
        nix::fcntl::open(cgroup_dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| failed(format!("open({cgroup_dir:?})"), e))?;
    // union bpf_attr as BPF_PROG_ATTACH reads it.
    #[repr(C)]
    struct ProgramAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let attach = ProgramAttach {
        target_fd: group.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: the kernel only reads `attach`, during the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgramAttach,
            size_of::<ProgramAttach>(),
        )
    };
    match result {
        0 => Ok(()),
        _ => match Errno::last() {
            Errno::EBADF => Err(Error::new(format!(
                "{} failed: {cgroup_dir:?} is not a group of a cgroup v2 tree, the only kind a device program \
                 attaches to",
                call()
            ))),
            errno => Err(failed(call(), errno)),
        },
    }
}

/// The capabilities by number, as <linux/capability.h> numbers them.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability this kernel knows.
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The names of the capabilities in a set, for narration.
fn capability_names(set: u64) -> String {
    let names: Vec<&str> = (0..64)
        .filter(|cap| set & (1 << cap) != 0)
        .filter_map(|cap| CAPABILITIES.get(cap).copied())
        .collect();
    format!("[{}]", names.join(", "))
}

/// prctl(PR_CAPBSET_DROP) for each capability not in `keep`: the bounding
/// set caps what this process and its children can ever have again.
pub fn drop_bounding_set(keep: u64) -> Result<()> {
    narrate!("prctl(PR_CAPBSET_DROP) for each capability but {}", capability_names(keep));
    for cap in (0..=last_capability()).filter(|cap| keep & (1 << cap) == 0) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, cap as nix::libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(failed(
                format!("prctl(PR_CAPBSET_DROP, {})", CAPABILITIES[cap as usize]),
                Errno::last(),
            ));
        }
    }
    Ok(())
}

/// prctl(PR_SET_KEEPCAPS): whether capabilities survive a change of uid.
pub fn keep_capabilities(keep: bool) -> Result<()> {
    narrate!("prctl(PR_SET_KEEPCAPS, {})", u8::from(keep));
    // SAFETY: prctl with integer arguments only.
    if unsafe { nix::libc::prctl(nix::libc::PR_SET_KEEPCAPS, nix::libc::c_ulong::from(keep), 0, 0, 0) } < 0 {
        return Err(failed("prctl(PR_SET_KEEPCAPS)".into(), Errno::last()));
    }
    Ok(())
}

/// capset(2): this process's effective, permitted and inheritable sets.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    narrate!(
        "capset(effective {}, permitted {}, inheritable {})",
        capability_names(effective),
        capability_names(permitted),
        capability_names(inheritable)
    );
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let half = |set: u64, high: bool| if high { (set >> 32) as u32 } else { set as u32 };
    let data = [false, true].map(|high| Data {
        effective: half(effective, high),
        permitted: half(permitted, high),
        inheritable: half(inheritable, high),
    });
    // SAFETY: the header and two data words are what version 3 reads.
    if unsafe { nix::libc::syscall(nix::libc::SYS_capset, &header, data.as_ptr()) } < 0 {
        return Err(failed("capset".into(), Errno::last()));
    }
    Ok(())
}

/// prctl(PR_CAP_AMBIENT_RAISE) for each capability in `set`: kept across
/// execve even by a program without file capabilities.
pub fn raise_ambient(set: u64) -> Result<()> {
    if set == 0 {
        return Ok(());
    }
    narrate!("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE) for each of {}", capability_names(set));
    for cap in (0..64u32).filter(|cap| set & (1 << cap) != 0) {
        // SAFETY: prctl with integer arguments only.
        let raised = unsafe {
            nix::libc::prctl(
                nix::libc::PR_CAP_AMBIENT,
                nix::libc::PR_CAP_AMBIENT_RAISE as nix::libc::c_ulong,
                cap as nix::libc::c_ulong,
                0,
                0,
            )
        };
        if raised < 0 {
            return Err(failed(format!("prctl(PR_CAP_AMBIENT_RAISE, {cap})"), Errno::last()));
        }
    }
    Ok(())
}

/// connect(2) to the Unix socket at `path`.
pub fn connect_unix(path: &Path) -> Result<OwnedFd> {
    narrate!("connect({path:?})");
    std::os::unix::net::UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|e| io_failed(format!("connect({path:?})"), e))
}

/// A new pseudo-terminal from /dev/ptmx: its master end, and the path of
/// the other end, which a process takes as its terminal.
pub fn open_pty() -> Result<(OwnedFd, PathBuf)> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    use std::os::fd::{FromRawFd, IntoRawFd};
    narrate!("open(\"/dev/ptmx\", O_RDWR|O_NOCTTY|O_CLOEXEC), grantpt, unlockpt, ptsname");
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| failed("open(\"/dev/ptmx\")".into(), e))?;
    grantpt(&master).map_err(|e| failed("grantpt".into(), e))?;
    unlockpt(&master).map_err(|e| failed("unlockpt".into(), e))?;
    let name = ptsname_r(&master).map_err(|e| failed("ptsname".into(), e))?;
    // SAFETY: the descriptor is the master's, handed over whole.
    Ok((unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) }, PathBuf::from(name)))
}

/// sendmsg(2) of `fd` over the connected Unix socket `socket`, as an
/// SCM_RIGHTS message whose bytes are `name`: the receiver gets its own
/// descriptor for the same open file.
pub fn send_fd(socket: &OwnedFd, fd: &OwnedFd, name: &str, what: &str) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    narrate!("sendmsg(the console socket, {name:?}, SCM_RIGHTS [{what}])");
    let bytes = [std::io::IoSlice::new(name.as_bytes())];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(socket.as_raw_fd(), &bytes, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .map(drop)
        .map_err(|e| failed("sendmsg(SCM_RIGHTS)".into(), e))
}

/// Makes the terminal at `path` this process's controlling terminal and its
/// stdin, stdout and stderr: a new session, TIOCSCTTY, dup2.
pub fn take_terminal(path: &Path) -> Result<()> {
    narrate!("setsid(), open({path:?}), ioctl(TIOCSCTTY), dup2 onto 0, 1 and 2");
    unistd::setsid().map_err(|e| failed("setsid".into(), e))?;
    let terminal = nix::fcntl::open(path, OFlag::O_RDWR, Mode::empty())
        .map_err(|e| failed(format!("open({path:?})"), e))?;
    // SAFETY: TIOCSCTTY takes an int argument and touches no memory of ours.
    if unsafe { nix::libc::ioctl(terminal.as_raw_fd(), nix::libc::TIOCSCTTY, 0) } < 0 {
        return Err(failed("ioctl(TIOCSCTTY)".into(), Errno::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we mean to replace.
        if unsafe { nix::libc::dup2(terminal.as_raw_fd(), target) } < 0 {
            return Err(failed(format!("dup2(terminal, {target})"), Errno::last()));
        }
    }
    Ok(())
}

/// kill(2) of `signal` to each of `pids`, told as one line; a process
/// that has ended meanwhile (ESRCH) is no error.
pub fn kill_each(pids: &[Pid], signal: Signal, whose: &str) -> Result<()> {
    narrate!("kill(pid, {signal:?}) for each process {whose}");
    for pid in pids {
        match signal::kill(*pid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => return Err(failed(format!("kill({pid}, {signal:?})"), errno)),
        }
    }
    Ok(())
}

/// kill(2).
pub fn kill(pid: Pid, signal: Signal) -> Result<()> {
    // 0 and below name process groups, -1 every process: never what a
    // record of ours means.
    if pid.as_raw() <= 0 {
        return Err(Error::new(format!("refusing kill({pid}): that is not one process")));
    }
    narrate!("kill({pid}, {signal:?})");
    signal::kill(pid, signal).map_err(|e| failed(format!("kill({pid}, {signal:?})"), e))
}

/// chroot(2): from now on this process resolves "/" to `path`. Nothing
/// else changes: not the working directory, not open files, not mounts.
pub fn chroot(path: &Path) -> Result<()> {
    narrate!("chroot({path:?})");
    unistd::chroot(path).map_err(|e| failed(format!("chroot({path:?})"), e))
}

/// chdir(2).
pub fn chdir(path: &Path) -> Result<()> {
    narrate!("chdir({path:?})");
    unistd::chdir(path).map_err(|e| failed(format!("chdir({path:?})"), e))
}

/// The names of the flags set in a bitflags value, joined by "|", as C
/// writes them (`MS_REC|MS_PRIVATE`); "0" when none is set.
fn flag_names<F: bitflags::Flags>(flags: F) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// mount(2). `None` for what a mount does not use, told as `none`.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let shown = |p: Option<&Path>| p.map_or("none".to_string(), |p| format!("{p:?}"));
    let data_shown = data.map(|d| format!(", {d:?}")).unwrap_or_default();
    let call = format!(
        "mount({}, {target:?}, {}, {}{data_shown})",
        shown(source),
        fstype.map_or("none".to_string(), |t| format!("{t:?}")),
        flag_names(flags)
    );
    narrate!("{call}");
    nix::mount::mount(source, target, fstype, flags, data).map_err(|e| failed(call, e))
}

/// pivot_root(2): makes `new_root` the root mount of this mount namespace
/// and puts the old root at `put_old` (which may be `new_root` itself).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> Result<()> {
    narrate!("pivot_root({new_root:?}, {put_old:?})");
    unistd::pivot_root(new_root, put_old)
        .map_err(|e| failed(format!("pivot_root({new_root:?}, {put_old:?})"), e))
}

/// sethostname(2): the host name of this UTS namespace.
pub fn sethostname(name: &str) -> Result<()> {
    narrate!("sethostname({name:?})");
    unistd::sethostname(name).map_err(|e| failed(format!("sethostname({name:?})"), e))
}

/// setns(2) into the namespace that `/proc/<pid>/ns/<kind>` names.
pub fn setns(file: &Path, kind: CloneFlags) -> Result<()> {
    let call = format!("setns({file:?}, {})", flag_names(kind));
    let namespace = std::fs::File::open(file).map_err(|e| io_failed(format!("open({file:?})"), e))?;
    narrate!("{call}");
    nix::sched::setns(namespace, kind).map_err(|e| failed(call, e))
}

/// Becomes root of the current user namespace: gid, supplementary groups
/// (none) and uid 0, in the order that keeps the right to make each change.
pub fn become_root() -> Result<()> {
    narrate!("setresgid(0, 0, 0)");
    let root_gid = unistd::Gid::from_raw(0);
    unistd::setresgid(root_gid, root_gid, root_gid).map_err(|e| failed("setresgid(0, 0, 0)".into(), e))?;
    narrate!("setgroups([])");
    unistd::setgroups(&[]).map_err(|e| failed("setgroups([])".into(), e))?;
    narrate!("setresuid(0, 0, 0)");
    let root_uid = unistd::Uid::from_raw(0);
    unistd::setresuid(root_uid, root_uid, root_uid).map_err(|e| failed("setresuid(0, 0, 0)".into(), e))
}

/// Sets a network interface up with the oldest interface there is: the
/// SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on any socket. (Level 6 speaks netlink.)
pub fn set_link_up(name: &str) -> Result<()> {
    use nix::libc;
    let call = format!("ioctl(SIOCSIFFLAGS, {name:?}, IFF_UP)");
    narrate!("{call}");
    let socket = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| failed(call.clone(), e))?;
    // SAFETY: ifreq is plain data; the name fits (checked) and ends in NUL.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= request.ifr_name.len() {
        return Err(Error::new(format!("the interface name {name:?} is too long")));
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: both ioctls read and write only `request`.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(failed(call, Errno::last()));
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(failed(call, Errno::last()));
        }
    }
    Ok(())
}

/// clone(2) with `namespaces`: like fork, but the child starts in new
/// namespaces of those kinds. In the child, narration is indented one step.
pub fn clone(namespaces: CloneFlags, child: impl FnOnce() -> i32) -> Result<Pid> {
    let call = format!("clone({}, SIGCHLD)", flag_names(namespaces));
    single_threaded(&call)?;
    // No stack given: as after fork, the child goes on where we are, on a
    // copy of our stack (with its guard page) in a copy of our memory. A
    // stack of our own making would have no guard, and an overflow in the
    // child would corrupt memory without a word.
    let flags = (namespaces.bits() | nix::libc::SIGCHLD) as nix::libc::c_ulong;
    // SAFETY: single-threaded, as just checked; the child leaves through
    // _exit, never returning into the parent's code.
    let pid = unsafe { nix::libc::syscall(nix::libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        -1 => Err(failed(call, Errno::last())),
        0 => {
            narrate::enter_child();
            let code = child();
            // SAFETY: ends the child without the parent's destructors.
            unsafe { nix::libc::_exit(code) }
        }
        pid => {
            let pid = Pid::from_raw(pid as i32);
            narrate!("{call} = child pid {pid}");
            Ok(pid)
        }
    }
}

/// fork and clone copy only the calling thread: a lock another thread held
/// would stay held in the child forever. The examples never have another
/// thread when they fork; this makes sure.
fn single_threaded(call: &str) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status.lines().find_map(|line| line.strip_prefix("Threads:")).map(str::trim) {
        Some("1") | None => Ok(()),
        Some(threads) => Err(Error::new(format!(
            "{call} from a process with {threads} threads: a child would inherit locks it can never take; \
             fork before starting threads"
        ))),
    }
}

/// clone(2) from inside an existing user namespace, the one `user_namespace`
/// names, so that the child's new namespaces belong to it. This process
/// cannot join it itself: in there it would be an unmapped id, locked out
/// of the host's files it still has to write. So a forked helper joins it
/// (setns), clones the child with CLONE_PARENT (the child is then ours, not
/// the helper's, as if we had cloned it), tells us its pid, and ends.
pub fn clone_in_user_namespace(
    user_namespace: &Path,
    namespaces: CloneFlags,
    child: impl FnOnce() -> i32,
) -> Result<Pid> {
    let (told, tell) = pipe_cloexec()?;
    match fork()? {
        ForkResult::Child => {
            drop(told);
            let cloned = setns(user_namespace, CloneFlags::CLONE_NEWUSER)
                .and_then(|()| clone(namespaces | CloneFlags::CLONE_PARENT, child));
            let message = match cloned {
                Ok(pid) => pid.to_string(),
                Err(error) => error.to_string(),
            };
            let _ = unistd::write(&tell, message.as_bytes());
            // SAFETY: _exit ends the helper without running the parent's
            // destructors a second time.
            unsafe { nix::libc::_exit(0) }
        }
        ForkResult::Parent { child: helper } => {
            drop(tell);
            // One read: the helper writes its message at once, and the
            // child holds the pipe open (until it execs), so no end of
            // file comes.
            let mut message = [0u8; 512];
            let length = unistd::read(&told, &mut message).unwrap_or(0);
            let _ = nix::sys::wait::waitpid(helper, None);
            let message = String::from_utf8_lossy(&message[..length]).into_owned();
            message.parse::<i32>().map(Pid::from_raw).map_err(|_| {
                Error::new(if message.is_empty() {
                    "the helper that joins the user namespace died".into()
                } else {
                    message
                })
            })
        }
    }
}

/// Whether this kernel has namespaces of `kind` (then /proc/self/ns names one).
pub fn has_namespace(kind: &str) -> bool {
    Path::new("/proc/self/ns").join(kind).exists()
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

/// fork(2). In the child, narration is indented one step.
///
/// Only call this while the process has one thread, as every podlab example
/// does: a forked child gets a copy of the calling thread alone.
pub fn fork() -> Result<ForkResult> {
    narrate!("fork()");
    single_threaded("fork()")?;
    // SAFETY: single-threaded, as just checked, so the child's copy of
    // memory holds no lock that another thread owned.
    let forked = unsafe { unistd::fork() }.map_err(|e| failed("fork()".into(), e))?;
    if let ForkResult::Child = forked {
        narrate::enter_child();
    }
    Ok(forked)
}

/// Marks every descriptor from `first` up close-on-exec, so that the
/// program gets those below it (stdin, stdout, stderr, and any passed on
/// on purpose) and nothing else its runtime's caller happened to leave open
/// (close_range(2), Linux 5.11; before that, each one in /proc/self/fd).
pub fn close_on_exec_from(first: u32) -> Result<()> {
    narrate!("close_range({first}, ~0, CLOSE_RANGE_CLOEXEC)");
    // SAFETY: close_range only changes flags of descriptors; no memory is touched.
    let done = unsafe {
        nix::libc::syscall(nix::libc::SYS_close_range, first, u32::MAX, nix::libc::CLOSE_RANGE_CLOEXEC)
    };
    if done == 0 {
        return Ok(());
    }
    let open =
        std::fs::read_dir("/proc/self/fd").map_err(|e| io_failed("reading /proc/self/fd".into(), e))?;
    let numbers: Vec<i32> = open.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in numbers.into_iter().filter(|fd| i64::from(*fd) >= i64::from(first)) {
        // SAFETY: F_SETFD on a number that is, or just was, an open descriptor of ours.
        unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// execve(2): replaces this process's program. Returns only if it failed.
pub fn execve(path: &Path, argv: &[String], env: &[String]) -> Error {
    narrate!("execve({path:?}, {argv:?})");
    let call = || format!("execve({path:?})");
    let to_c = |items: &[String]| -> Result<Vec<CString>> {
        items
            .iter()
            .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::new(format!("{s:?} contains a NUL byte"))))
            .collect()
    };
    let (program, argv, env) = match (c_path(path), to_c(argv), to_c(env)) {
        (Ok(p), Ok(a), Ok(e)) => (p, a, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
    };
    match unistd::execve(&program, &argv, &env) {
        Err(errno) => failed(call(), errno),
        Ok(never) => match never {},
    }
}

/// Gives the program about to be started the signals a new process
/// expects: every disposition back to the default and none blocked. A
/// signal a process ignores stays ignored across execve, and Rust ignores
/// SIGPIPE before main (so that a write to a closed pipe returns an error
/// instead of killing it); a program run by us would inherit that, and
/// `yes | head -1` would never end.
pub fn reset_signals() -> Result<()> {
    narrate!("sigaction(every signal, SIG_DFL); sigprocmask(SIG_SETMASK, none blocked)");
    let default: nix::libc::sigaction =
        SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()).into();
    for number in 1..=nix::libc::SIGRTMAX() {
        if number == nix::libc::SIGKILL || number == nix::libc::SIGSTOP {
            continue;
        }
        // SAFETY: the default disposition runs no code of ours. Numbers that
        // name no signal, or that the C library keeps for itself (32 and 33
        // under glibc), refuse with EINVAL and are left as they are.
        let result = unsafe { nix::libc::sigaction(number, &default, std::ptr::null_mut()) };
        if result != 0 && Errno::last() != Errno::EINVAL {
            return Err(failed(format!("sigaction({number}, SIG_DFL)"), Errno::last()));
        }
    }
    signal::sigprocmask(signal::SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| failed("sigprocmask(SIG_SETMASK)".into(), e))
}

/// Whether descriptor `fd` is open in this process. Only looks.
pub fn is_open(fd: i32) -> bool {
    nix::fcntl::fcntl(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, nix::fcntl::FcntlArg::F_GETFD)
        .is_ok()
}

/// Waits for `child` to end and reaps it, telling how it ended.
pub fn waitpid(child: Pid) -> Result<WaitStatus> {
    loop {
        match nix::sys::wait::waitpid(child, Some(WaitPidFlag::empty())) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(failed("waitpid(child)".into(), errno)),
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                let how = match status {
                    WaitStatus::Exited(_, code) => format!("exited {code}"),
                    WaitStatus::Signaled(_, signal, _) => format!("killed by {signal:?}"),
                    _ => unreachable!("matched above"),
                };
                tell_signals_passed_on();
                narrate!("waitpid(child) = {how}");
                return Ok(status);
            }
            Ok(_) => continue,
        }
    }
}

/// Runs a program to its end and returns what it wrote to stdout: fork(2),
/// execve(2) and a pipe, done by the standard library.
pub fn run_for_output(program: &Path, args: &[&str]) -> Result<String> {
    let name = program.file_name().unwrap_or(program.as_os_str()).to_string_lossy();
    let argv: Vec<&str> = std::iter::once(name.as_ref()).chain(args.iter().copied()).collect();
    narrate!("fork() + execve({program:?}, {argv:?}), reading its stdout");
    let call = || format!("running {program:?}");
    let output = std::process::Command::new(program).args(args).output().map_err(|e| io_failed(call(), e))?;
    if !output.status.success() {
        return Err(Error::new(format!("{} ended with {}", call(), output.status)));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Error::new(format!("{} printed bytes that are not UTF-8", call())))
}

/// Runs `program` with exactly `argv` and `env`, `input` on its stdin, and
/// waits for it for at most `timeout` (then kills it): a runtime's hook.
pub fn run_with_input(
    program: &Path,
    argv: &[String],
    env: &[String],
    input: &str,
    timeout: Option<std::time::Duration>,
    what: &str,
) -> Result<std::process::ExitStatus> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    narrate!("fork() + execve({program:?}, {argv:?}) with {what} on its stdin");
    let call = || format!("running {program:?}");
    let mut command = std::process::Command::new(program);
    if let Some((first, rest)) = argv.split_first() {
        command.arg0(first).args(rest);
    }
    command.env_clear().envs(env.iter().filter_map(|pair| pair.split_once('=')));
    let mut child = command.stdin(std::process::Stdio::piped()).spawn().map_err(|e| io_failed(call(), e))?;
    // The input goes in as the program takes it, without waiting on it: a
    // program that does not read its stdin (no error) would otherwise hold
    // us in write(2) once the pipe is full (64 KiB), past any timeout.
    let mut stdin = child.stdin.take();
    if let Some(pipe) = &stdin {
        let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    }
    let mut written = 0;
    let started = std::time::Instant::now();
    loop {
        if let Some(pipe) = stdin.as_mut() {
            match pipe.write(&input.as_bytes()[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // It closed its stdin (EPIPE), which it may.
                Err(_) => written = input.len(),
            }
            if written == input.len() {
                // The end of its input: a program reading to the end goes on.
                stdin = None;
            }
        }
        if let Some(status) = child.try_wait().map_err(|e| io_failed(call(), e))? {
            return Ok(status);
        }
        if timeout.is_some_and(|limit| started.elapsed() > limit) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!(
                "{} did not end within its timeout of {:?}",
                call(),
                timeout.unwrap()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
static FORWARDER: AtomicI32 = AtomicI32::new(0);
static FORWARDED_ALREADY: AtomicUsize = AtomicUsize::new(0);
/// The first signal passed on to the child, for waitpid to tell; 0 if none.
static PASSED_ON: AtomicI32 = AtomicI32::new(0);

/// Tells the signals the handler passed on to the child, if any.
fn tell_signals_passed_on() {
    let signal = PASSED_ON.swap(0, Ordering::Relaxed);
    let Ok(signal) = Signal::try_from(signal) else { return };
    narrate!("kill(child, {signal:?}): passed on the signal this process got");
    if FORWARDED_ALREADY.load(Ordering::Relaxed) > 1 {
        narrate!("kill(child, SIGKILL): a second signal came, and a PID 1 may ignore the first");
    }
}

extern "C" fn forward_signal(signal: nix::libc::c_int) {
    use nix::libc;
    // The calls below may set errno, which the code we interrupted may be
    // about to read: it is put back as it was.
    let errno = Errno::last_raw();
    // SAFETY: getpid, kill, signal and raise are async-signal-safe.
    unsafe {
        if libc::getpid() != FORWARDER.load(Ordering::Relaxed) {
            // A child that has not exec'd yet: die of the signal as it
            // would have without us.
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        } else if FORWARD_TO.load(Ordering::Relaxed) > 0 {
            // The first signal is passed on as it is; a second one kills.
            let first = FORWARDED_ALREADY.fetch_add(1, Ordering::Relaxed) == 0;
            libc::kill(FORWARD_TO.load(Ordering::Relaxed), if first { signal } else { libc::SIGKILL });
            // Told once the child has ended: a handler may not narrate.
            if first {
                PASSED_ON.store(signal, Ordering::Relaxed);
            }
        }
    }
    Errno::set_raw(errno);
}

/// The signals that end a waiting parent (Ctrl-C, Ctrl-\, kill, a closed
/// terminal). A parent that dies of one leaves its clean-up undone.
const FORWARDED: [Signal; 4] = [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGHUP];

/// Makes this process pass those signals on to the child it is about to
/// fork instead of dying of them, so it lives to clean up after the child.
/// A second signal is passed on as SIGKILL: a process that is PID 1 of a
/// PID namespace ignores every signal it has no handler for, Ctrl-C too.
/// The child inherits the handler until it execs; until then it dies of
/// them as usual.
pub fn forward_signals_to_child() -> Result<()> {
    narrate!("sigaction(SIGINT, SIGQUIT, SIGTERM, SIGHUP: pass on to the child)");
    FORWARDER.store(unistd::getpid().as_raw(), Ordering::Relaxed);
    let action = SigAction::new(SigHandler::Handler(forward_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in FORWARDED {
        // SAFETY: the handler only loads an atomic and calls kill(2).
        unsafe { signal::sigaction(sig, &action) }.map_err(|e| failed(format!("sigaction({sig:?})"), e))?;
    }
    Ok(())
}

/// Names the child that forwarded signals go to; 0 stops forwarding, as it
/// must once the child is reaped and its pid may be reused.
pub fn set_signal_target(child: Option<Pid>) {
    FORWARDED_ALREADY.store(0, Ordering::Relaxed);
    FORWARD_TO.store(child.map_or(0, Pid::as_raw), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_and_clone_refuse_a_process_with_threads() {
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        let refused = single_threaded("fork()");
        drop(stop);
        let _ = other.join();
        assert!(refused.unwrap_err().to_string().contains("a child would inherit locks"));
    }

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

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b\011c\134d"), "/tmp/a b\tc\\d");
        assert_eq!(unescape_mountinfo(r"/plain/path"), "/plain/path");
        // A backslash not followed by three octal digits is itself.
        assert_eq!(unescape_mountinfo(r"/odd\9"), r"/odd\9");
    }
}
