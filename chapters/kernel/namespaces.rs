//! Namespaces: clone(2) into new ones, setns(2) into old ones, and what only a new
//! namespace lets us change (a host name, an interface).

use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{self, ForkResult, Pid};

use super::{failed, flag_names, io_failed};
use super::{fork, pipe_cloexec};
use crate::error::{Error, Result};
use crate::narrate;

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
pub(super) fn single_threaded(call: &str) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status.lines().find_map(|line| line.strip_prefix("Threads:")).map(str::trim) {
        Some("1") | None => Ok(()),
        Some(threads) => Err(Error::new(format!(
            "{call} from a process with {threads} threads: a child would inherit locks it can never take; \
             fork before starting threads"
        ))),
    }
}

/// clone(2) of a child born in existing namespaces (`joins`: a pod's
/// sandbox's network, IPC, UTS, its user namespace) and new ones of the
/// kinds in `namespaces`, made inside those. This process never moves: a
/// forked helper joins them (setns: the user namespace first, which grants
/// the right to join the rest; the mount namespace last), clones the child with CLONE_PARENT (the
/// child is then ours, not the helper's, as if we had cloned it), tells us
/// its pid, and ends. So what we still do (run createRuntime hooks, write
/// cgroup files) happens where we are, as the specification wants.
pub fn clone_joining(
    joins: &[(CloneFlags, &Path)],
    namespaces: CloneFlags,
    child: impl FnOnce() -> i32,
) -> Result<Pid> {
    if joins.is_empty() {
        return clone(namespaces, child);
    }
    let (told, tell) = pipe_cloexec()?;
    match fork()? {
        ForkResult::Child => {
            drop(told);
            // The user namespace first, as it grants the right to join the
            // rest; the mount namespace last, as after it /proc is another's.
            let of = |wanted: CloneFlags| joins.iter().filter(move |(kind, _)| *kind == wanted);
            let first_and_last = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
            let others = joins.iter().filter(|(kind, _)| !first_and_last.contains(*kind));
            let cloned = of(CloneFlags::CLONE_NEWUSER)
                .chain(others)
                .chain(of(CloneFlags::CLONE_NEWNS))
                .try_for_each(|(kind, path)| setns(path, *kind))
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
                    "the helper that joins the namespaces died".into()
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
}
