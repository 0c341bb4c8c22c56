//! Terminals and the console socket: a pseudo-terminal, and its master end handed over
//! a Unix socket.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{self};

use super::{failed, io_failed};
use crate::error::Result;
use crate::narrate;

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

/// ioctl(TIOCSWINSZ): the size of the terminal whose end `fd` is, in
/// characters, as a program asks it with TIOCGWINSZ.
pub fn set_window_size(fd: &OwnedFd, rows: u16, columns: u16) -> Result<()> {
    narrate!("ioctl(TIOCSWINSZ, {rows} rows, {columns} columns)");
    let size = nix::libc::winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize, which `size` is, during the call.
    if unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) } < 0 {
        return Err(failed("ioctl(TIOCSWINSZ)".into(), Errno::last()));
    }
    Ok(())
}
