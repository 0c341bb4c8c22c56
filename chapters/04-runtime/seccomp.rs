//! Seccomp: a filter that the kernel runs on every system call of the
//! container's process, to allow the call, fail it with an errno, or kill.
//!
//! The runtime specification's `linux.seccomp` is a profile: a default
//! action, and actions for named system calls, some only when their
//! arguments compare so. runc hands the profile to libseccomp; here we
//! compile it ourselves into the classic BPF program that seccomp(2) takes.
//! The program reads one `struct seccomp_data` per call and returns an
//! action:
//!
//! ```text
//! offset  0  nr     the call's number, in the caller's ABI
//!         4  arch   AUDIT_ARCH_*, which ABI that is
//!         8  the instruction pointer
//!        16  args   six 64-bit arguments, each as two words, the low one first
//! ```
//!
//! What we write: one section for each ABI the profile lets in (the
//! machine's own always; on x86_64, x32 and x86 if listed; on aarch64, arm
//! if listed), each a block for each system call named:
//!
//! ```text
//! section x86_64   arch is AUDIT_ARCH_X86_64 and nr < 0x4000_0000, else on to the next section;
//!                  nr above the largest the profile names: return ENOSYS, if runc would
//!   block mkdir    nr is 83, else on to the next block;
//!                  each rule for mkdir in turn: its comparisons, then return its action
//!   block ...
//!   return the default action
//! section x86      ...
//! return SECCOMP_RET_KILL_PROCESS: the call came in an ABI the profile does not list
//! ```
//!
//! The numbers come from the `syscalls` crate's tables, one per
//! architecture, generated from the kernel's own; x32, which it has no
//! table for, is x86_64's numbers with a bit set, but for a few (below).
//! Tested on x86_64; built for aarch64 too.

use nix::libc::{self, sock_filter};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};

use crate::error::{Error, Result};
use crate::kernel;

/// A profile compiled for seccomp(2), ready to install.
pub struct Filter {
    instructions: Vec<sock_filter>,
    /// SECCOMP_FILTER_FLAG_* bits.
    flags: u32,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} instructions, flags {:#x})", self.instructions.len(), self.flags)
    }
}

impl Filter {
    /// Installs the filter on this thread. Every later call must pass it,
    /// execve included; without no_new_privs, installing needs
    /// CAP_SYS_ADMIN, so it comes before dropping that or after setting
    /// no_new_privs.
    pub fn install(&self) -> Result<()> {
        kernel::seccomp_set_filter(&self.instructions, self.flags)
    }
}

// Offsets in struct seccomp_data (<linux/seccomp.h>).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;
/// System calls have six arguments, numbered 0 to 5.
const ARG_COUNT: usize = 6;

// seccomp_data.arch for the ABIs each kind of machine runs (<linux/audit.h>).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// Set in `nr` for x32's calls, which share x86_64's `arch`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// x32 makes x86_64's calls with X32_SYSCALL_BIT set in the number, except
/// these, which take structures of 32-bit pointers and have numbers of
/// their own, from 512 in this order (arch/x86/entry/syscalls/syscall_64.tbl)...
#[cfg(target_arch = "x86_64")]
const X32_OWN_NUMBERS: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];
/// ...and these, which x32 does not have at all.
#[cfg(target_arch = "x86_64")]
const NOT_IN_X32: [&str; 11] = [
    "_sysctl",
    "create_module",
    "epoll_ctl_old",
    "epoll_wait_old",
    "get_kernel_syms",
    "get_thread_area",
    "nfsservctl",
    "query_module",
    "set_thread_area",
    "uselib",
    "vserver",
];

// The few classic BPF instructions a filter needs (<linux/bpf_common.h>).
const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const AND: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const JUMP: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;

/// What a call in an ABI the profile does not list gets. The same number
/// is a different call in another ABI (39 is getpid for x86_64 but mkdir
/// for i386), so neither the default action nor any rule can judge it: a
/// filter that let it through would be bypassed by a program switching to
/// `int 0x80`. libseccomp kills the thread (its SCMP_FLTATR_ACT_BADARCH is
/// SCMP_ACT_KILL, which runc keeps); we kill the whole process, so that no
/// thread of it goes on without the one killed.
const UNLISTED_ABI: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// What a call newer than the profile gets, where runc's stub gives it
/// ENOSYS (see [`section`]).
const NEWER_THAN_THE_PROFILE: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// One of the ABIs the kernel takes system calls in; a program chooses by
/// how it calls (on x86_64: `syscall`, `int 0x80`, `syscall` with the x32
/// bit in the number; on aarch64: `svc` from 64-bit or 32-bit code).
struct Abi {
    audit_arch: u32,
    /// For the two ABIs that share AUDIT_ARCH_X86_64: whether their
    /// numbers carry the x32 bit.
    x32_bit: Option<bool>,
    /// The number of a call by its name, in this ABI.
    number_of: fn(&str) -> Option<u32>,
    /// Whether the ABI's arguments are 64 bits. A 32-bit ABI's calls use
    /// only the low word, while the high one holds whatever the register
    /// held: compared too, it would let `int 0x80` from a 64-bit program
    /// dodge a rule. So only the low word is compared, as libseccomp does.
    wide_args: bool,
}

/// A call's number in one of the `syscalls` crate's tables.
macro_rules! number_in {
    ($table:path) => {
        |name: &str| name.parse::<$table>().ok().map(|call| call.id() as u32)
    };
}

#[cfg(target_arch = "x86_64")]
static NATIVE: Abi = Abi {
    audit_arch: AUDIT_ARCH_X86_64,
    x32_bit: Some(false),
    number_of: number_in!(syscalls::x86_64::Sysno),
    wide_args: true,
};
#[cfg(target_arch = "x86_64")]
static X32: Abi =
    Abi { audit_arch: AUDIT_ARCH_X86_64, x32_bit: Some(true), number_of: x32_number, wide_args: false };
#[cfg(target_arch = "x86_64")]
static X86: Abi = Abi {
    audit_arch: AUDIT_ARCH_I386,
    x32_bit: None,
    number_of: number_in!(syscalls::x86::Sysno),
    wide_args: false,
};
#[cfg(target_arch = "aarch64")]
static NATIVE: Abi = Abi {
    audit_arch: AUDIT_ARCH_AARCH64,
    x32_bit: None,
    number_of: number_in!(syscalls::aarch64::Sysno),
    wide_args: true,
};
#[cfg(target_arch = "aarch64")]
static ARM: Abi = Abi {
    audit_arch: AUDIT_ARCH_ARM,
    x32_bit: None,
    number_of: number_in!(syscalls::arm::Sysno),
    wide_args: false,
};

/// A call's number in x32.
#[cfg(target_arch = "x86_64")]
fn x32_number(name: &str) -> Option<u32> {
    if NOT_IN_X32.contains(&name) {
        return None;
    }
    match X32_OWN_NUMBERS.iter().position(|own| *own == name) {
        Some(index) => Some(X32_SYSCALL_BIT | (512 + index as u32)),
        None => number_in!(syscalls::x86_64::Sysno)(name).map(|number| X32_SYSCALL_BIT | number),
    }
}

impl Abi {
    fn number(&self, name: &str) -> Option<u32> {
        (self.number_of)(name)
    }
}

/// A rule of the profile, checked, its action as seccomp wants it returned.
struct Rule<'a> {
    names: &'a [String],
    action: u32,
    args: &'a [LinuxSeccompArg],
}

// ANCHOR: compile
/// Compiles a profile into a filter. For each call, the first rule that
/// names it and whose arguments all compare as it says decides; a call
/// that no rule decides gets the default action, and a rule whose action
/// is the default's decides nothing (runc leaves it out). As with runc, a rule's
/// comparisons must all hold, unless it compares one argument twice: then
/// any one of them is enough (see [`rules`]). Also as with runc, when the
/// default action refuses, a call numbered above every call the profile
/// names fails with ENOSYS instead (see [`section`]). Names our tables lack
/// (other architectures' calls, or calls newer than the tables) are
/// skipped, as runc skips those its libseccomp does not know: real
/// profiles name the calls of several architectures at once.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter> {
    let default = action(seccomp.default_action(), seccomp.default_errno_ret(), "defaultAction")?;
    let abis = abis(seccomp.architectures().as_deref().unwrap_or_default())?;
    let rules = rules(seccomp.syscalls().as_deref().unwrap_or_default())?;
    let enosys = newer_calls_get_enosys(seccomp.default_action());
    // Written from the end backwards: last, what no section took.
    let mut program = Backwards::ending_with(UNLISTED_ABI);
    for &(abi, listed) in abis.iter().rev() {
        section(&mut program, abi, &rules, default, enosys && listed);
    }
    let instructions = program.into_instructions();
    if instructions.len() > libc::BPF_MAXINSNS as usize {
        return Err(Error::new(format!(
            "seccomp: the profile compiles to {} instructions, more than the kernel's {}: list fewer \
             system calls or architectures",
            instructions.len(),
            libc::BPF_MAXINSNS
        )));
    }
    Ok(Filter { instructions, flags: flags(seccomp.flags().as_deref().unwrap_or_default()) })
}
// ANCHOR_END: compile

/// The value a filter returns for `action`: the action in the high 16
/// bits, the errno (for ERRNO, or a tracer's message for TRACE) in the low.
fn action(action: LinuxSeccompAction, errno_ret: Option<u32>, whose: &str) -> Result<u32> {
    use LinuxSeccompAction::*;
    let takes_errno = matches!(action, ScmpActErrno | ScmpActTrace);
    let data = match errno_ret {
        Some(errno) if !takes_errno => {
            return Err(Error::new(format!(
                "seccomp: {whose} gives an errno ({errno}) to {action}, which returns none: leave the \
                 errno out, or use SCMP_ACT_ERRNO"
            )))
        }
        Some(errno) if errno > libc::SECCOMP_RET_DATA => {
            return Err(Error::new(format!(
                "seccomp: {whose} gives the errno {errno}, which does not fit the 16 bits seccomp \
                 returns: use an errno number, such as 1 for EPERM"
            )))
        }
        Some(errno) => errno,
        // The specification's default.
        None if takes_errno => libc::EPERM as u32,
        None => 0,
    };
    let base = match action {
        // Plain KILL is libseccomp's old name for killing the thread.
        ScmpActKill | ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        ScmpActTrap => libc::SECCOMP_RET_TRAP,
        ScmpActErrno => libc::SECCOMP_RET_ERRNO,
        ScmpActTrace => libc::SECCOMP_RET_TRACE,
        ScmpActLog => libc::SECCOMP_RET_LOG,
        ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        ScmpActNotify => {
            return Err(Error::new(format!(
                "seccomp: {whose} is SCMP_ACT_NOTIFY, which hands calls to a seccomp agent, and this \
                 runtime has none to listen: use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW"
            )))
        }
    };
    Ok(base | data)
}

/// Whether calls newer than the profile get ENOSYS (see [`section`]): as
/// runc decides, unless the default action lets calls run, or hands them
/// to a tracer, which can answer ENOSYS itself.
fn newer_calls_get_enosys(default: LinuxSeccompAction) -> bool {
    use LinuxSeccompAction::*;
    !matches!(default, ScmpActAllow | ScmpActLog | ScmpActTrace)
}

/// The ABIs to let in, in the order the program tests them: the machine's
/// own always, as libseccomp always adds the native architecture, then the
/// others it runs (x32 and x86 on x86_64, arm on aarch64) if listed. Each
/// comes with whether `architectures` lists it, as runc's ENOSYS stub
/// covers only those (see [`section`]).
#[cfg(target_arch = "x86_64")]
fn abis(architectures: &[Arch]) -> Result<Vec<(&'static Abi, bool)>> {
    let (mut native, mut x32, mut x86) = (false, false, false);
    for arch in architectures {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => native = true,
            Arch::ScmpArchX32 => x32 = true,
            Arch::ScmpArchX86 => x86 = true,
            other => {
                return Err(not_this_machines(other, "SCMP_ARCH_X86_64, SCMP_ARCH_X86 and SCMP_ARCH_X32"))
            }
        }
    }
    let listed = [x32.then_some((&X32, true)), x86.then_some((&X86, true))];
    Ok([Some((&NATIVE, native))].into_iter().chain(listed).flatten().collect())
}

#[cfg(target_arch = "aarch64")]
fn abis(architectures: &[Arch]) -> Result<Vec<(&'static Abi, bool)>> {
    let (mut native, mut arm) = (false, false);
    for arch in architectures {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchAarch64 => native = true,
            Arch::ScmpArchArm => arm = true,
            other => return Err(not_this_machines(other, "SCMP_ARCH_AARCH64 and SCMP_ARCH_ARM")),
        }
    }
    Ok([Some((&NATIVE, native)), arm.then_some((&ARM, true))].into_iter().flatten().collect())
}

fn not_this_machines(arch: &Arch, these: &str) -> Error {
    Error::new(format!(
        "seccomp: the architecture {arch} is not one this machine's kernel runs ({}): list only {these}",
        std::env::consts::ARCH
    ))
}

/// The profile's `syscalls`, checked.
fn rules(syscalls: &[LinuxSyscall]) -> Result<Vec<Rule<'_>>> {
    let mut rules = Vec::new();
    for (index, syscall) in syscalls.iter().enumerate() {
        let names = syscall.names();
        let Some(first) = names.first() else {
            return Err(Error::new(format!(
                "seccomp: syscalls[{index}] names no system call: give its names at least one"
            )));
        };
        let whose = format!("syscalls[{index}] ({first:?}{})", if names.len() > 1 { ", ..." } else { "" });
        let args = syscall.args().as_deref().unwrap_or_default();
        if let Some(arg) = args.iter().find(|arg| arg.index() >= ARG_COUNT) {
            return Err(Error::new(format!(
                "seccomp: {whose} compares argument {}, but system calls have {ARG_COUNT}, numbered 0 \
                 to {}: fix its index",
                arg.index(),
                ARG_COUNT - 1
            )));
        }
        let action = action(syscall.action(), syscall.errno_ret(), &whose)?;
        // libseccomp takes at most one comparison of each argument in a
        // rule. So runc (libcontainer/seccomp/seccomp_linux.go), given a
        // rule that compares one argument twice, hands libseccomp each of
        // its comparisons as a rule of its own, with the same action: any
        // one that holds decides, even one of another argument. So do we.
        if compares_an_argument_twice(args) {
            rules.extend(args.chunks(1).map(|comparison| Rule { names, action, args: comparison }));
        } else {
            rules.push(Rule { names, action, args });
        }
    }
    Ok(rules)
}

fn compares_an_argument_twice(args: &[LinuxSeccompArg]) -> bool {
    args.iter().enumerate().any(|(i, arg)| args[..i].iter().any(|earlier| earlier.index() == arg.index()))
}

/// The SECCOMP_FILTER_FLAG_* bits for the profile's flags.
fn flags(flags: &[LinuxSeccompFilterFlag]) -> u32 {
    let bit = |flag: &LinuxSeccompFilterFlag| match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        // It only changes how a seccomp agent's wait ends, and the kernel
        // refuses it without one; with no SCMP_ACT_NOTIFY, libseccomp
        // leaves it out too.
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
    };
    flags.iter().map(bit).fold(0, |all, bit| all | bit as u32)
}

/// Writes one ABI's section: on to the next section unless the call is in
/// this ABI; then, if `newer_calls_get_enosys`, ENOSYS for a call numbered
/// above every call the rules name; then a block for each system call the
/// rules name, and the default action for the rest.
///
/// Why ENOSYS: a program that makes a call newer than the profile (glibc
/// tries clone3 before clone) takes ENOSYS to mean the kernel lacks it,
/// and falls back to the older call; EPERM, or a kill, would stop it. runc
/// (libcontainer/seccomp/patchbpf/enosys_linux.go) puts such a stub in
/// front of libseccomp's filter, for the architectures the profile lists,
/// when the default action is not ALLOW, LOG or TRACE. Its "newer" is
/// "numbered above the largest number the profile names in this ABI": a
/// call below it that the profile does not name, in a gap or older, gets
/// the default action as before.
fn section(program: &mut Backwards, abi: &Abi, rules: &[Rule], default: u32, newer_calls_get_enosys: bool) {
    let next_section = program.start();
    program.ret(default);
    let blocks = blocks(abi, rules);
    // A rule whose action is the default's decides nothing: runc leaves it
    // out, so that it cannot stand before another rule for the same call.
    for (number, rules) in blocks.iter().rev() {
        let deciding: Vec<&Rule> = rules.iter().copied().filter(|rule| rule.action != default).collect();
        if !deciding.is_empty() {
            block(program, *number, &deciding, abi.wide_args);
        }
    }
    // runc counts every rule's names, and leaves the stub out when the
    // largest is 0 (x86_64's read): it takes 0 for "none found".
    let largest_named = blocks.iter().map(|(number, _)| *number).max().filter(|&largest| largest > 0);
    if let Some(largest_named) = largest_named.filter(|_| newer_calls_get_enosys) {
        let first_block = program.start();
        program.ret(NEWER_THAN_THE_PROFILE);
        program.go_on_if(JGT, largest_named, true, first_block);
    }
    if let Some(x32_bit) = abi.x32_bit {
        program.go_on_if(JGE, X32_SYSCALL_BIT, x32_bit, next_section);
    }
    program.load(NR);
    program.go_on_if(JEQ, abi.audit_arch, true, next_section);
    program.load(ARCH);
}

/// The rules by the number each name has in `abi`, numbers in the order
/// the profile first names them, each number's rules in profile order.
fn blocks<'r>(abi: &Abi, rules: &'r [Rule<'r>]) -> Vec<(u32, Vec<&'r Rule<'r>>)> {
    let mut blocks: Vec<(u32, Vec<&Rule>)> = Vec::new();
    for rule in rules {
        for number in rule.names.iter().filter_map(|name| abi.number(name)) {
            match blocks.iter_mut().find(|(known, _)| *known == number) {
                Some((_, block)) => block.push(rule),
                None => blocks.push((number, vec![rule])),
            }
        }
    }
    blocks
}

/// Writes one system call's block: on to the next block unless `nr` is
/// `number`; then its rules in turn, the first whose comparisons all hold
/// returning its action. If none does, on to the next block, with `nr`
/// loaded again over the arguments the comparisons loaded.
fn block(program: &mut Backwards, number: u32, rules: &[&Rule], wide_args: bool) {
    let next_block = program.start();
    if rules.iter().any(|rule| !rule.args.is_empty()) {
        program.load(NR);
    }
    for rule in rules.iter().rev() {
        let next_rule = program.start();
        program.ret(rule.action);
        for arg in rule.args.iter().rev() {
            let holds = program.start();
            compare(program, arg, wide_args, holds, next_rule);
        }
    }
    program.go_on_if(JEQ, number, true, next_block);
}

/// Writes the test of one argument: to `holds` if it compares as `arg`
/// says, else to `fails`. A 64-bit argument is two words: the high one
/// decides when it differs from the value's high word, the low one when
/// not. (BPF compares unsigned, as libseccomp does.)
fn compare(program: &mut Backwards, arg: &LinuxSeccompArg, wide: bool, holds: Place, fails: Place) {
    use LinuxSeccompOperator::*;
    let (high, low) = (|value: u64| (value >> 32) as u32, |value: u64| value as u32);
    // MASKED_EQ: the argument AND `value` must equal `valueTwo`.
    let (value, mask) = match arg.op() {
        ScmpCmpMaskedEq => (arg.value_two().unwrap_or(0), Some(arg.value())),
        _ => (arg.value(), None),
    };
    let offset = ARGS + 8 * arg.index() as u32;

    // The low word: one test, and whether its being true means the argument holds.
    let (test, true_holds) = match arg.op() {
        ScmpCmpEq | ScmpCmpMaskedEq => (JEQ, true),
        ScmpCmpNe => (JEQ, false),
        ScmpCmpGt => (JGT, true),
        ScmpCmpGe => (JGE, true),
        ScmpCmpLt => (JGE, false),
        ScmpCmpLe => (JGT, false),
    };
    let (if_true, if_false) = if true_holds { (holds, fails) } else { (fails, holds) };
    program.branch(test, low(value), if_true, if_false);
    if let Some(mask) = mask {
        program.and(low(mask));
    }
    program.load(offset);
    if !wide {
        return;
    }

    // The high word, tested first: where it leads when above the value's
    // and when below; when equal, to the low word.
    let low_word = program.start();
    let (above, below) = match arg.op() {
        ScmpCmpEq | ScmpCmpMaskedEq => (fails, fails),
        ScmpCmpNe => (holds, holds),
        ScmpCmpGt | ScmpCmpGe => (holds, fails),
        ScmpCmpLt | ScmpCmpLe => (fails, holds),
    };
    program.branch(JEQ, high(value), low_word, below);
    if above != below {
        let equal_or_below = program.start();
        program.branch(JGT, high(value), above, equal_or_below);
    }
    if let Some(mask) = mask {
        program.and(high(mask));
    }
    program.load(offset + 4);
}

/// A classic BPF program, written from its end backwards.
///
/// Classic BPF jumps only forward, by a count of instructions to skip: 8
/// bits for a conditional jump, 32 for JA. Written backwards, the target
/// of every jump is in place before the jump, so the count is known.
struct Backwards {
    /// The instructions so far, the last one first.
    reversed: Vec<sock_filter>,
}

/// An instruction's place in a program being written: its index counted
/// from the end, which writing more in front does not change.
type Place = usize;

impl Backwards {
    fn ending_with(action: u32) -> Backwards {
        let mut program = Backwards { reversed: Vec::new() };
        program.ret(action);
        program
    }

    /// The place of the first instruction written so far: where jumping
    /// to "what follows" lands.
    fn start(&self) -> Place {
        self.reversed.len() - 1
    }

    /// How many instructions a jump written now skips to land on `target`.
    fn distance(&self, target: Place) -> usize {
        self.reversed.len() - 1 - target
    }

    fn push(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        self.reversed.push(sock_filter { code, jt, jf, k });
    }

    /// Loads the word at `offset` in seccomp_data into the accumulator.
    fn load(&mut self, offset: u32) {
        self.push(LOAD_WORD, offset, 0, 0);
    }

    fn and(&mut self, mask: u32) {
        self.push(AND, mask, 0, 0);
    }

    fn ret(&mut self, action: u32) {
        self.push(RETURN, action, 0, 0);
    }

    /// To `if_true` if the accumulator `test`s true against `k`, else to
    /// `if_false`. Both are within one rule, whose comparisons (at most one
    /// for each of the six arguments, as [`rules`] splits the others off)
    /// take a few dozen instructions: near enough for 8 bits.
    fn branch(&mut self, test: u16, k: u32, if_true: Place, if_false: Place) {
        let near = |target| u8::try_from(self.distance(target)).expect("a jump within one rule is short");
        self.push(test, k, near(if_true), near(if_false));
    }

    /// On to the next instruction if the accumulator `test`s `expected`
    /// against `k`, else to `otherwise`, however far: through a JA after
    /// the test when 8 bits cannot reach.
    fn go_on_if(&mut self, test: u16, k: u32, expected: bool, otherwise: Place) {
        let (go_on, leave) = match u8::try_from(self.distance(otherwise)) {
            Ok(near) => (0, near),
            Err(_) => {
                self.push(JUMP, self.distance(otherwise) as u32, 0, 0);
                // The JA is the next instruction now; going on skips it.
                (1, 0)
            }
        };
        let (jt, jf) = if expected { (go_on, leave) } else { (leave, go_on) };
        self.push(test, k, jt, jf);
    }

    fn into_instructions(mut self) -> Vec<sock_filter> {
        self.reversed.reverse();
        self.reversed
    }
}

// The tests make system calls by their x86_64 numbers, and x86's through
// `int 0x80`: x86_64 only.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    use std::os::fd::AsRawFd;

    use nix::errno::Errno;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    use nix::unistd::ForkResult;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("a test's profile is valid")
    }

    fn refusal(json: &str) -> String {
        compile(&profile(json)).expect_err("the profile is refused").to_string()
    }

    /// How a call went in a child under a filter.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Returned,
        Failed(Errno),
        Killed(Signal),
    }

    /// The child's exit code when it could not install the filter.
    const NOT_INSTALLED: i32 = 255;

    /// Forks a child that installs `filter` and makes `call`, and tells how
    /// the call went: the test process itself stays unfiltered.
    fn under(filter: &Filter, call: impl FnOnce() -> nix::Result<i64>) -> Outcome {
        // SAFETY: the child makes system calls, allocates through glibc's
        // malloc (which fork leaves usable), and leaves with _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                crate::narrate::set_quiet(true);
                // No core files from the kills; no need for CAP_SYS_ADMIN.
                let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
                let _ = nix::sys::prctl::set_no_new_privs();
                let code = match filter.install() {
                    Ok(()) => call().map_or_else(|errno| errno as i32, |_| 0),
                    Err(_) => NOT_INSTALLED,
                };
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) => Outcome::Returned,
                WaitStatus::Exited(_, NOT_INSTALLED) => panic!("the child could not install the filter"),
                WaitStatus::Exited(_, errno) => Outcome::Failed(Errno::from_raw(errno)),
                WaitStatus::Signaled(_, signal, _) => Outcome::Killed(signal),
                other => panic!("the child ended in an unexpected way: {other:?}"),
            },
        }
    }

    /// A raw x86_64 system call, its arguments passed as they are.
    fn syscall(number: libc::c_long, args: &[u64]) -> nix::Result<i64> {
        let arg = |i: usize| args.get(i).copied().unwrap_or(0);
        // SAFETY: the tests' calls read no memory of ours but "/".
        Errno::result(unsafe { libc::syscall(number, arg(0), arg(1), arg(2)) })
    }

    /// An i386 system call through `int 0x80`, as a 32-bit program makes
    /// it; `first` goes in rbx whole, as a 64-bit program may leave it.
    fn int_0x80(number: u32, first: u64) -> nix::Result<i64> {
        let result: i32;
        // SAFETY: the tests' i386 calls read no memory; rbx is LLVM's, so
        // it is swapped in and back around the call.
        unsafe {
            std::arch::asm!(
                "xchg {first}, rbx",
                "int 0x80",
                "xchg {first}, rbx",
                first = inout(reg) first => _,
                inlateout("eax") number as i32 => result,
            );
        }
        if result < 0 {
            Err(Errno::from_raw(-result))
        } else {
            Ok(i64::from(result))
        }
    }

    fn mkdir_root() -> nix::Result<i64> {
        syscall(libc::SYS_mkdir, &[c"/".as_ptr() as u64, 0o755])
    }

    fn getpid_with(arg: u64) -> nix::Result<i64> {
        syscall(libc::SYS_getpid, &[arg])
    }

    #[test]
    fn a_rule_with_the_default_action_decides_nothing() {
        // runc leaves it out: the ALLOW rule after it still lets getpid through.
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getpid", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
        assert_eq!(under(&filter, || getpid_with(0)), Outcome::Returned);
    }

    #[test]
    fn refuses_what_it_cannot_filter() {
        let notify = refusal(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
        assert!(notify.contains("defaultAction is SCMP_ACT_NOTIFY"), "{notify}");
        let notify = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(notify.contains(r#"syscalls[0] ("mkdir", ...) is SCMP_ACT_NOTIFY"#), "{notify}");
        let arch = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]}"#,
        );
        assert!(arch.contains("SCMP_ARCH_AARCH64 is not one this machine's kernel runs (x86_64)"), "{arch}");
        let index = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(index.contains("compares argument 6, but system calls have 6, numbered 0 to 5"), "{index}");
        let errno = refusal(r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#);
        assert!(errno.contains("gives an errno (1) to SCMP_ACT_ALLOW, which returns none"), "{errno}");
        let errno = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
        );
        assert!(errno.contains("the errno 70000, which does not fit"), "{errno}");
        let empty = refusal(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert!(empty.contains("syscalls[0] names no system call"), "{empty}");
        // Unknown actions and operators never reach us: reading config.json refuses them.
        assert!(serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#).is_err());
        let op = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                     "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#;
        assert!(serde_json::from_str::<LinuxSeccomp>(op).is_err());
    }

    #[test]
    fn refuses_programs_classic_bpf_cannot_hold() {
        // Every call of every ABI, each in a rule of its own with a comparison.
        let names = syscalls::x86_64::Sysno::iter().map(|call| call.name());
        let every_call: Vec<_> = names
            .chain(syscalls::x86::Sysno::iter().map(|call| call.name()))
            .map(|name| {
                let eq_1 = serde_json::json!({"index": 0, "value": 1, "op": "SCMP_CMP_EQ"});
                serde_json::json!({"names": [name], "action": "SCMP_ACT_ALLOW", "args": [eq_1]})
            })
            .collect();
        let too_long = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": every_call,
        });
        let too_long = compile(&serde_json::from_value(too_long).expect("valid")).expect_err("refused");
        assert!(too_long.to_string().contains("more than the kernel's 4096"), "{too_long}");
    }

    #[test]
    fn skips_names_this_kernel_does_not_have() {
        let with = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["arm_fadvise64_64", "mkdir",
                "s390_pci_mmio_read", "no_such_call"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        let without = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        let (with, without) = (compile(&with).expect("compiles"), compile(&without).expect("compiles"));
        assert_eq!(with.instructions.len(), without.instructions.len());
    }

    #[test]
    fn flags_are_passed_on() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        ))
        .expect("compiles");
        assert_eq!(filter.flags, 0b111);
        assert_eq!(under(&filter, || getpid_with(0)), Outcome::Returned);
    }

    #[test]
    fn a_denied_call_fails_and_the_others_run() {
        let allow_all = compile(&profile(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)).expect("compiles");
        assert_eq!(under(&allow_all, mkdir_root), Outcome::Failed(Errno::EEXIST));
        let deny_mkdir = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect("compiles");
        assert_eq!(under(&deny_mkdir, mkdir_root), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&deny_mkdir, || getpid_with(0)), Outcome::Returned);
    }

    #[test]
    fn each_action_does_what_it_says() {
        let cases = [
            (r#""action": "SCMP_ACT_ALLOW""#, Outcome::Returned),
            (r#""action": "SCMP_ACT_LOG""#, Outcome::Returned),
            (r#""action": "SCMP_ACT_ERRNO""#, Outcome::Failed(Errno::EPERM)),
            (r#""action": "SCMP_ACT_ERRNO", "errnoRet": 13"#, Outcome::Failed(Errno::EACCES)),
            // With no tracer attached, the call fails with ENOSYS.
            (r#""action": "SCMP_ACT_TRACE""#, Outcome::Failed(Errno::ENOSYS)),
            (r#""action": "SCMP_ACT_TRAP""#, Outcome::Killed(Signal::SIGSYS)),
            (r#""action": "SCMP_ACT_KILL""#, Outcome::Killed(Signal::SIGSYS)),
            (r#""action": "SCMP_ACT_KILL_THREAD""#, Outcome::Killed(Signal::SIGSYS)),
            (r#""action": "SCMP_ACT_KILL_PROCESS""#, Outcome::Killed(Signal::SIGSYS)),
        ];
        for (action, expected) in cases {
            let json = format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getpid"], {action}}}]}}"#
            );
            let filter = compile(&profile(&json)).expect("compiles");
            assert_eq!(under(&filter, || getpid_with(0)), expected, "{action}");
        }
    }

    #[test]
    fn a_default_deny_profile_runs_only_what_it_lists() {
        // exit_group ends the child: a profile that denies it cannot end well.
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "syscalls": [{"names": ["exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ))
        .expect("compiles");
        assert_eq!(under(&filter, || getpid_with(0)), Outcome::Returned);
        assert_eq!(under(&filter, || syscall(libc::SYS_getppid, &[])), Outcome::Failed(Errno::ENOSYS));
        let kill = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS",
                "syscalls": [{"names": ["exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ))
        .expect("compiles");
        assert_eq!(under(&kill, || getpid_with(0)), Outcome::Returned);
        assert_eq!(under(&kill, || syscall(libc::SYS_getppid, &[])), Outcome::Killed(Signal::SIGSYS));
    }

    /// getpid ignores its arguments, and the filter sees whatever we pass:
    /// a call that tests any comparison without side effects.
    fn getpid_allowed_if(op: &str, value: u64, value_two: u64) -> Filter {
        compile(&profile(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                  "args": [{{"index": 0, "value": {value}, "valueTwo": {value_two}, "op": "{op}"}}]}},
                {{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}}]}}"#
        )))
        .expect("compiles")
    }

    #[test]
    fn arguments_compare_as_64_bits() {
        const HIGH: u64 = 1 << 32;
        // (operator, value, valueTwo, argument, whether it holds)
        let cases = [
            ("SCMP_CMP_EQ", 7, 0, 7, true),
            ("SCMP_CMP_EQ", 7, 0, 8, false),
            ("SCMP_CMP_EQ", 7, 0, HIGH + 7, false),
            ("SCMP_CMP_EQ", HIGH + 7, 0, HIGH + 7, true),
            ("SCMP_CMP_NE", 7, 0, 7, false),
            ("SCMP_CMP_NE", 7, 0, 8, true),
            ("SCMP_CMP_NE", 7, 0, HIGH + 7, true),
            ("SCMP_CMP_GT", HIGH, 0, HIGH + 1, true),
            ("SCMP_CMP_GT", HIGH, 0, HIGH, false),
            ("SCMP_CMP_GT", HIGH, 0, u32::MAX as u64, false),
            ("SCMP_CMP_GT", HIGH + 5, 0, 2 * HIGH, true),
            ("SCMP_CMP_GE", HIGH + 5, 0, HIGH + 5, true),
            ("SCMP_CMP_GE", HIGH + 5, 0, HIGH + 4, false),
            ("SCMP_CMP_GE", HIGH + 5, 0, 2 * HIGH, true),
            ("SCMP_CMP_LT", HIGH + 5, 0, u32::MAX as u64, true),
            ("SCMP_CMP_LT", HIGH + 5, 0, HIGH + 4, true),
            ("SCMP_CMP_LT", HIGH + 5, 0, HIGH + 5, false),
            ("SCMP_CMP_LT", HIGH + 5, 0, 2 * HIGH, false),
            ("SCMP_CMP_LE", HIGH + 5, 0, HIGH + 5, true),
            ("SCMP_CMP_LE", HIGH + 5, 0, HIGH + 6, false),
            ("SCMP_CMP_LE", HIGH + 5, 0, 4, true),
            // Docker's rule for clone: none of the namespace flags set.
            ("SCMP_CMP_MASKED_EQ", 0x7e02_0000, 0, 0x0001_1200, true),
            ("SCMP_CMP_MASKED_EQ", 0x7e02_0000, 0, 0x1000_0000, false),
            ("SCMP_CMP_MASKED_EQ", HIGH + 0xff, HIGH + 0x11, HIGH + 0x1311, true),
            ("SCMP_CMP_MASKED_EQ", HIGH + 0xff, HIGH + 0x11, 0x1311, false),
        ];
        for (op, value, value_two, argument, holds) in cases {
            let expected = if holds { Outcome::Returned } else { Outcome::Failed(Errno::EPERM) };
            let filter = getpid_allowed_if(op, value, value_two);
            assert_eq!(
                under(&filter, || getpid_with(argument)),
                expected,
                "{op} {value:#x} on {argument:#x}"
            );
        }
    }

    #[test]
    fn all_of_a_rules_args_must_hold_and_the_first_rule_that_does_decides() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ))
        .expect("compiles");
        let getpid = |a: u64, b: u64| syscall(libc::SYS_getpid, &[a, b]);
        assert_eq!(under(&filter, || getpid(1, 2)), Outcome::Returned);
        assert_eq!(under(&filter, || getpid(1, 3)), Outcome::Failed(Errno::EACCES));
        assert_eq!(under(&filter, || getpid(0, 2)), Outcome::Failed(Errno::EPERM));
    }

    #[test]
    fn comparing_one_argument_twice_makes_each_comparison_enough() {
        let getpid = |a: u64, b: u64| syscall(libc::SYS_getpid, &[a, b]);
        let refuse_getpid_if = |args: serde_json::Value| {
            let profile = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": args}]});
            compile(&serde_json::from_value(profile).expect("valid")).expect("compiles")
        };
        let eq =
            |index: u32, value: u64| serde_json::json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});

        // Argument 0 is 1, or is 2 (ANDed, no value would be both).
        let one_or_two = refuse_getpid_if(serde_json::json!([eq(0, 1), eq(0, 2)]));
        assert_eq!(under(&one_or_two, || getpid(1, 0)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&one_or_two, || getpid(2, 0)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&one_or_two, || getpid(3, 0)), Outcome::Returned);

        // Then even argument 1's comparison is enough alone, as with runc
        // 1.1.5: (3, 5) is refused, though 3 is neither 1 nor 2.
        let any_of_three = refuse_getpid_if(serde_json::json!([eq(0, 1), eq(0, 2), eq(1, 5)]));
        assert_eq!(under(&any_of_three, || getpid(1, 0)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&any_of_three, || getpid(3, 5)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&any_of_three, || getpid(3, 0)), Outcome::Returned);

        // Without an argument compared twice, all must hold.
        let both = refuse_getpid_if(serde_json::json!([eq(0, 1), eq(1, 5)]));
        assert_eq!(under(&both, || getpid(1, 5)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&both, || getpid(1, 0)), Outcome::Returned);
        assert_eq!(under(&both, || getpid(3, 5)), Outcome::Returned);

        // However many comparisons of one argument: each is a short rule.
        let many = refuse_getpid_if((0..80).map(|value| eq(0, value)).collect());
        assert_eq!(under(&many, || getpid(79, 0)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&many, || getpid(80, 0)), Outcome::Returned);
    }

    #[test]
    fn a_call_its_rules_leave_undecided_gets_the_default() {
        // getpid(83) fails getpid's one rule, and 83 is mkdir's number:
        // the mkdir block must test getpid's number, not the argument last loaded.
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect("compiles");
        assert_eq!(under(&filter, || getpid_with(1)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&filter, || getpid_with(83)), Outcome::Returned);
        assert_eq!(under(&filter, mkdir_root), Outcome::Failed(Errno::EPERM));
    }

    #[test]
    fn calls_newer_than_the_profile_get_enosys() {
        // The largest number named is exit_group's: 231 in x86_64, 252 in i386.
        // An empty list is no list, for runc as for us.
        let allowing_exit_and_getpid = |default: &str, architectures: &[&str]| {
            let mut profile = serde_json::json!({"defaultAction": default, "syscalls": [
                {"names": ["exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]});
            if !architectures.is_empty() {
                profile["architectures"] = architectures.into();
            }
            compile(&serde_json::from_value(profile).expect("valid")).expect("compiles")
        };
        // getrandom (318; i386's 355) would return 0, getppid (110; i386's 64) a pid.
        let getrandom = || syscall(libc::SYS_getrandom, &[]);
        let getppid = || syscall(libc::SYS_getppid, &[]);
        let (i386_getrandom, i386_getppid) = (|| int_0x80(355, 0), || int_0x80(64, 0));

        let errno = allowing_exit_and_getpid("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        assert_eq!(under(&errno, getrandom), Outcome::Failed(Errno::ENOSYS));
        assert_eq!(under(&errno, getppid), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&errno, || getpid_with(0)), Outcome::Returned);
        assert_eq!(under(&errno, i386_getrandom), Outcome::Failed(Errno::ENOSYS));
        assert_eq!(under(&errno, i386_getppid), Outcome::Failed(Errno::EPERM));
        let kill = allowing_exit_and_getpid("SCMP_ACT_KILL_PROCESS", &["SCMP_ARCH_X86_64"]);
        assert_eq!(under(&kill, getrandom), Outcome::Failed(Errno::ENOSYS));
        assert_eq!(under(&kill, getppid), Outcome::Killed(Signal::SIGSYS));

        // x32's numbers carry the x32 bit, its largest named one too.
        let x32 = allowing_exit_and_getpid("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]);
        let x32_call = |number: u32| move || syscall((X32_SYSCALL_BIT | number).into(), &[]);
        assert_eq!(under(&x32, x32_call(318)), Outcome::Failed(Errno::ENOSYS));
        assert_eq!(under(&x32, x32_call(110)), Outcome::Failed(Errno::EPERM));

        // As with runc: no stub for the ABIs `architectures` does not list
        // (x86_64 here, and with no list at all), nor when the default
        // lets calls run.
        let x86_only = allowing_exit_and_getpid("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86"]);
        assert_eq!(under(&x86_only, getrandom), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&x86_only, i386_getrandom), Outcome::Failed(Errno::ENOSYS));
        let unlisted = allowing_exit_and_getpid("SCMP_ACT_ERRNO", &[]);
        assert_eq!(under(&unlisted, getrandom), Outcome::Failed(Errno::EPERM));
        let log = allowing_exit_and_getpid("SCMP_ACT_LOG", &["SCMP_ARCH_X86_64"]);
        assert_eq!(under(&log, getrandom), Outcome::Returned);
    }

    #[test]
    fn calls_of_an_unlisted_abi_are_killed() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}"#,
        ))
        .expect("compiles");
        assert_eq!(under(&filter, || getpid_with(0)), Outcome::Returned);
        // i386's getpid, and x32's.
        assert_eq!(under(&filter, || int_0x80(20, 0)), Outcome::Killed(Signal::SIGSYS));
        assert_eq!(
            under(&filter, || syscall((X32_SYSCALL_BIT | 39).into(), &[])),
            Outcome::Killed(Signal::SIGSYS)
        );
    }

    #[test]
    fn each_listed_abi_has_its_own_numbers() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect("compiles");
        // 39 is getpid on x86_64 but mkdir on i386 (which, let through,
        // would fail with EFAULT on its null path).
        assert_eq!(under(&filter, || syscall(39, &[])), Outcome::Returned);
        assert_eq!(under(&filter, || int_0x80(39, 0)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&filter, || int_0x80(20, 0)), Outcome::Returned);
        // x32's mkdir; its getpid passes the filter, to a kernel that may
        // or may not have x32 built in.
        assert_eq!(
            under(&filter, || syscall((X32_SYSCALL_BIT | 83).into(), &[])),
            Outcome::Failed(Errno::EPERM)
        );
        let x32_getpid = under(&filter, || syscall((X32_SYSCALL_BIT | 39).into(), &[]));
        assert!(matches!(x32_getpid, Outcome::Returned | Outcome::Failed(Errno::ENOSYS)), "{x32_getpid:?}");
    }

    #[test]
    fn a_32_bit_abi_compares_only_the_low_word() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]}]}"#,
        ))
        .expect("compiles");
        let high = 1 << 32;
        assert_eq!(under(&filter, || int_0x80(20, 7)), Outcome::Failed(Errno::EPERM));
        // The kernel hands i386's getpid only the low word, so the rule must hold here too.
        assert_eq!(under(&filter, || int_0x80(20, high + 7)), Outcome::Failed(Errno::EPERM));
        assert_eq!(under(&filter, || int_0x80(20, 8)), Outcome::Returned);
        // x86_64's getpid does see 64 bits.
        assert_eq!(under(&filter, || getpid_with(high + 7)), Outcome::Returned);
    }

    #[test]
    fn a_profile_as_large_as_dockers_compiles_and_runs() {
        // Docker's default shape: deny by default; allow a long list (here
        // every x86_64 call but a few, and calls of other architectures),
        // and a few calls only with certain arguments.
        let denied = ["mount", "umount2", "reboot", "personality", "clone", "socket", "kexec_load"];
        let mut names: Vec<&str> = syscalls::x86_64::Sysno::iter()
            .map(|call| call.name())
            .filter(|name| !denied.contains(name))
            .collect();
        names.extend(["arm_fadvise64_64", "s390_runtime_instr", "riscv_flush_icache"]);
        let arg_0 = |op: &str, value: u64| serde_json::json!([{"index": 0, "value": value, "op": op}]);
        let allow =
            |name: &str, args| serde_json::json!({"names": [name], "action": "SCMP_ACT_ALLOW", "args": args});
        let profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                allow("personality", arg_0("SCMP_CMP_EQ", 0)),
                allow("personality", arg_0("SCMP_CMP_EQ", 0xffff_ffff)),
                // clone with none of the namespace flags (valueTwo 0).
                allow("clone", arg_0("SCMP_CMP_MASKED_EQ", 0x7e02_0000)),
                // Any socket but AF_VSOCK's.
                allow("socket", arg_0("SCMP_CMP_NE", 40)),
            ],
        });
        let filter = compile(&serde_json::from_value(profile).expect("valid")).expect("compiles");
        // Far more than one conditional jump's 255 instructions.
        assert!(filter.instructions.len() > 1000, "{} instructions", filter.instructions.len());
        let call = |number, args: &[u64]| under(&filter, || syscall(number, args));

        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        let write = [write_end.as_raw_fd() as u64, c"x".as_ptr() as u64, 1];
        assert_eq!(call(libc::SYS_write, &write), Outcome::Returned);
        assert_eq!(nix::unistd::read(&read_end, &mut [0u8; 1]), Ok(1));
        assert_eq!(call(libc::SYS_getpid, &[]), Outcome::Returned);
        // Near the end of the list, after hundreds of blocks.
        assert_eq!(call(libc::SYS_close_range, &[1000, 1000, 0]), Outcome::Returned);
        assert_eq!(call(libc::SYS_personality, &[0xffff_ffff]), Outcome::Returned);
        assert_eq!(call(libc::SYS_personality, &[8]), Outcome::Failed(Errno::EPERM));
        assert_eq!(call(libc::SYS_socket, &[40, 1, 0]), Outcome::Failed(Errno::EPERM));
        // Let through, these would fail otherwise: reboot with EINVAL (no
        // magic number), mount with EFAULT (no paths).
        assert_eq!(call(libc::SYS_reboot, &[0, 0, 0]), Outcome::Failed(Errno::EPERM));
        assert_eq!(call(libc::SYS_mount, &[0, 0, 0]), Outcome::Failed(Errno::EPERM));
        // i386's getpid, in the last section.
        assert_eq!(under(&filter, || int_0x80(20, 0)), Outcome::Returned);
    }
}

// The tables, on any machine: names the kernel's tables give, and x32's
// exceptions.
#[cfg(test)]
mod tables {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x86_64_x32_and_x86_numbers() {
        assert_eq!(NATIVE.number("mkdir"), Some(83));
        assert_eq!(NATIVE.number("clone3"), Some(435));
        assert_eq!(X86.number("mkdir"), Some(39));
        // x32: x86_64's number with the bit, or one of its own, or none.
        assert_eq!(X32.number("mkdir"), Some(0x4000_0000 | 83));
        assert_eq!(X32.number("execve"), Some(0x4000_0208));
        assert_eq!(X32.number("pwritev2"), Some(0x4000_0223));
        assert_eq!(X32.number("uselib"), None);
        assert_eq!(NATIVE.number("no_such_call"), None);
    }

    #[test]
    #[cfg(target_arch = "aarch64")]
    fn aarch64_and_arm_numbers() {
        assert_eq!(NATIVE.number("mkdirat"), Some(34));
        assert_eq!(NATIVE.number("mkdir"), None);
        assert_eq!(ARM.number("mkdir"), Some(39));
    }
}
