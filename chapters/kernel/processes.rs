//! Processes: fork, execve, waiting, killing, the ids and limits a process runs with, and
//! passing signals on to a child.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{self, ForkResult, Pid};

use super::single_threaded;
use super::{c_path, failed, io_failed};
use crate::error::{Error, Result};
use crate::narrate;

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

/// personality(2): the execution domain the program runs in (PER_LINUX32
/// makes `uname -m` say i686 on an x86_64 machine).
pub fn set_personality(persona: u64, name: &str) -> Result<()> {
    narrate!("personality({name})");
    // SAFETY: personality takes one integer and touches no memory of ours.
    if unsafe { nix::libc::personality(persona as nix::libc::c_ulong) } < 0 {
        return Err(failed(format!("personality({name})"), Errno::last()));
    }
    Ok(())
}

/// ioprio_set(2) of this process: its class (1 real time, 2 best effort,
/// 3 idle) and its level within it (0, the highest, to 7).
pub fn set_io_priority(class: u32, level: u32, name: &str) -> Result<()> {
    narrate!("ioprio_set(IOPRIO_WHO_PROCESS, 0, {name}, {level})");
    const IOPRIO_WHO_PROCESS: nix::libc::c_int = 1;
    let value = (class << 13) | level;
    // SAFETY: ioprio_set takes integers and touches no memory of ours.
    if unsafe { nix::libc::syscall(nix::libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } < 0 {
        return Err(match Errno::last() {
            Errno::EPERM => Error::new(format!(
                "ioprio_set({name}) failed: the real-time class needs CAP_SYS_ADMIN, which this process lacks"
            )),
            errno => failed(format!("ioprio_set({name}, {level})"), errno),
        });
    }
    Ok(())
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

/// A process held by a pidfd: the process itself, not its number, which
/// the kernel gives to another process once this one has ended and been
/// reaped. Signals sent through it reach this process or none.
pub struct Process {
    fd: OwnedFd,
    pid: Pid,
}

impl Process {
    /// Process `pid`, if it is still the one that started at `start_time`
    /// (see [`start_time`]); `None` if it has ended. The start time is read
    /// after the pidfd is open: a match then proves the pidfd is of the
    /// process a record means, not of a newcomer with its number.
    pub fn open(pid: Pid, start_time: u64) -> Result<Option<Process>> {
        // 0 and below name process groups, -1 every process: never what a
        // record of ours means.
        if pid.as_raw() <= 0 {
            return Err(Error::new(format!("refusing to signal {pid}: that is not one process")));
        }
        let fd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(_) if self::start_time(pid).is_none() => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok((self::start_time(pid) == Some(start_time)).then_some(Process { fd, pid }))
    }

    /// pidfd_send_signal(2).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        narrate!("pidfd_send_signal(pidfd of {}, {signal:?})", self.pid);
        // SAFETY: no siginfo is passed; the kernel reads nothing of ours.
        let sent = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as nix::libc::c_int,
                std::ptr::null::<nix::libc::siginfo_t>(),
                0,
            )
        };
        if sent < 0 {
            return Err(failed(format!("pidfd_send_signal({}, {signal:?})", self.pid), Errno::last()));
        }
        Ok(())
    }

    /// Waits, at most `limit`, for the process to end; whether it did.
    pub fn wait_for_end(&self, limit: std::time::Duration) -> bool {
        ended_within(&self.fd, limit)
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// /proc/PID/stat), if it is alive and not a zombie: with the pid, what
/// tells one process from a later one given the same number. Only looks.
pub fn start_time(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name, field 2, is in parentheses and may hold anything: read after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    (fields.first() != Some(&"Z")).then_some(())?;
    fields.get(19)?.parse().ok()
}

/// pidfd_open(2): a descriptor of process `pid` itself, not of a number
/// that may be given to another process once it ends (Linux 5.3). It
/// becomes readable when the process ends.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd> {
    narrate!("pidfd_open({pid})");
    pidfd_open_untold(pid)
}

/// pidfd_open(2) for a call that tells it as part of its own line.
fn pidfd_open_untold(pid: Pid) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(match Errno::last() {
            Errno::ENOSYS => {
                Error::new("pidfd_open(2) is missing: this kernel is older than Linux 5.3; use a newer one")
            }
            errno => failed(format!("pidfd_open({pid})"), errno),
        });
    }
    // SAFETY: the kernel just made this descriptor for us (close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the process a pidfd names ends within `limit` (poll(2) on the
/// pidfd, which becomes readable then). Only looks.
fn ended_within(process: &OwnedFd, limit: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(process.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            polled => return polled.is_ok_and(|ready| ready > 0),
        }
    }
}

/// prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills this process when the
/// thread that made it ends, so that a child half set up never outlives a
/// parent that was killed while it worked. `parent` (a pidfd) is who made
/// us: if it ended before the call, we say so.
pub fn die_with_parent(parent: &OwnedFd) -> Result<()> {
    narrate!("prctl(PR_SET_PDEATHSIG, SIGKILL): until it is set up, it dies with its parent");
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| failed("prctl(PR_SET_PDEATHSIG)".into(), e))?;
    if ended_within(parent, std::time::Duration::ZERO) {
        return Err(Error::new("the process that made this one is gone: giving up"));
    }
    Ok(())
}

/// prctl(PR_SET_PDEATHSIG, 0): from now on this process outlives its parent.
pub fn outlive_parent() -> Result<()> {
    narrate!("prctl(PR_SET_PDEATHSIG, 0): set up, it outlives its parent now");
    nix::sys::prctl::set_pdeathsig(None).map_err(|e| failed("prctl(PR_SET_PDEATHSIG, 0)".into(), e))
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
    // Told before it runs: what it prints comes after.
    narrate!("fork() + execve({program:?}, {argv:?}) with {what} on its stdin, waited for through a pidfd");
    let call = || format!("running {program:?}");
    let mut command = std::process::Command::new(program);
    if let Some((first, rest)) = argv.split_first() {
        command.arg0(first).args(rest);
    }
    command.env_clear().envs(env.iter().filter_map(|pair| pair.split_once('=')));
    let mut child = command.stdin(std::process::Stdio::piped()).spawn().map_err(|e| io_failed(call(), e))?;
    // Our child, not yet reaped: its pid is still its own.
    let process = pidfd_open_untold(Pid::from_raw(child.id() as i32))?;
    // The input goes in as the program takes it, without waiting on it: a
    // program that does not read its stdin (no error) would otherwise hold
    // us in write(2) once the pipe is full (64 KiB), past any timeout. We
    // sleep in poll(2) until the pipe has room, the program ends, or the
    // timeout comes.
    let mut stdin = child.stdin.take();
    if let Some(pipe) = &stdin {
        let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    }
    let mut written = 0;
    let deadline = timeout.map(|limit| std::time::Instant::now() + limit);
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let left = deadline.map(|end| end.saturating_duration_since(std::time::Instant::now()));
        let wait =
            left.map_or(PollTimeout::NONE, |left| PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX));
        let mut fds = vec![PollFd::new(process.as_fd(), PollFlags::POLLIN)];
        if let Some(pipe) = &stdin {
            fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
        }
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(failed(format!("poll({})", call()), e)),
        }
        let ended = fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        let room = fds.get(1).and_then(|fd| fd.revents()).is_some_and(|r| !r.is_empty());
        drop(fds);
        if let (true, Some(pipe)) = (room, stdin.as_mut()) {
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
        if ended {
            return child.wait().map_err(|e| io_failed(call(), e));
        }
        if deadline.is_some_and(|end| std::time::Instant::now() >= end) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!(
                "{} did not end within its timeout of {:?}",
                call(),
                timeout.unwrap_or_default()
            )));
        }
    }
}

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

static FORWARDER: AtomicI32 = AtomicI32::new(0);

static FORWARDED_ALREADY: AtomicUsize = AtomicUsize::new(0);

/// The first signal passed on to the child, for waitpid to tell; 0 if none.
static PASSED_ON: AtomicI32 = AtomicI32::new(0);

/// A signal that came between the fork and [`set_signal_target`], while
/// there was no child to pass it on to yet: passed on once there is.
static PENDING: AtomicI32 = AtomicI32::new(0);

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
        } else {
            // The child is forked but not named yet (it may even run its
            // program already): kept for it.
            PENDING.store(signal, Ordering::Relaxed);
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
    // One that came before the child was named goes to it now.
    let pending = PENDING.swap(0, Ordering::Relaxed);
    if let (Some(child), true) = (child, pending > 0) {
        FORWARDED_ALREADY.store(1, Ordering::Relaxed);
        PASSED_ON.store(pending, Ordering::Relaxed);
        // SAFETY: kill takes integers; the child is ours and not yet reaped.
        unsafe { nix::libc::kill(child.as_raw(), pending) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_has_a_start_time() {
        assert!(start_time(unistd::getpid()).is_some());
        assert_eq!(start_time(Pid::from_raw(-1)), None);
    }
}
