//! Filters the kernel runs for us: seccomp's classic BPF on each system call, and the
//! eBPF program a cgroup v2 group runs on each use of a device.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::failed;
use crate::error::{Error, Result};
use crate::narrate;

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
