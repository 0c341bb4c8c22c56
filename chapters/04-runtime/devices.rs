//! linux.resources.devices: which devices a container may use.
//!
//! Namespaces leave devices alone: a process with CAP_MKNOD can make a node
//! for any device (`mknod disk b 8 0`, the host's first disk) and open it,
//! whatever its mount namespace shows. What stops it is a check the kernel
//! makes for the process's cgroup at each open(2) and mknod(2) of a device
//! file: against a list of rules in the devices controller's files under
//! v1, by running an eBPF program attached to the group under v2 (which
//! has no devices controller).
//!
//! The rules are runc 1.1's: the config's, in order, then runc's own
//! defaults, each rule overriding what came before it, on a list that
//! starts out denying everything (libcontainer/specconv/spec_linux.go and
//! the rule emulator of libcontainer/cgroups/devices). So a config without
//! rules gets the defaults alone, and no config can take them away.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::cgroups::{Cgroup, Version, DEVICES};
use crate::error::{Error, Result};
use crate::kernel::{self, BpfInstruction};

/// The devices a container may use and how, ready to be applied: a
/// default answer, and the exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRules {
    /// What a device that no exception names gets: usually "deny", as
    /// runc's spec starts with "deny all".
    default_allow: bool,
    /// Devices that get the other answer, and for which accesses, in the
    /// order runc writes them (major, minor, type; "any" first).
    exceptions: BTreeMap<Devices, Access>,
}

/// A device file's type, ordered as runc orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Block,
    Char,
}

/// The devices a rule is about: major and minor numbers, None for any.
/// The order of the fields is the order runc sorts rules in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Devices {
    major: Option<u32>,
    minor: Option<u32>,
    kind: Kind,
}

/// What may be done with a device: a set of the kernel's BPF_DEVCG_ACC_*
/// bits, written "r", "w" and "m" in the cgroup's files and in configs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Access(u8);

impl Access {
    const MKNOD: Access = Access(1);
    const READ: Access = Access(2);
    const WRITE: Access = Access(4);
    const ALL: Access = Access(7);

    /// `rwm`, or any of its letters, in any order; None for another letter.
    fn parse(letters: &str) -> Option<Access> {
        letters.chars().try_fold(Access::default(), |access, letter| match letter {
            'r' => Some(Access(access.0 | Access::READ.0)),
            'w' => Some(Access(access.0 | Access::WRITE.0)),
            'm' => Some(Access(access.0 | Access::MKNOD.0)),
            _ => None,
        })
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [(Access::READ, 'r'), (Access::WRITE, 'w'), (Access::MKNOD, 'm')] {
            if self.0 & bit.0 != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Devices {
    /// As the cgroup's files write them: `c 1:3`, `b *:*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let kind = match self.kind {
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        write!(f, "{kind} {}:{}", number(self.major), number(self.minor))
    }
}

/// One rule of a list, as a config gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Type "a" (or none): every device, every access. It starts the list
    /// over, allowing or denying everything; its numbers and access are
    /// ignored, by the kernel's v1 files as by runc.
    Everything { allow: bool },
    /// Type "b" or "c": some devices of that type.
    Devices { allow: bool, devices: Devices, access: Access },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = |allow: bool| if allow { "allow" } else { "deny" };
        match self {
            Rule::Everything { allow } => write!(f, "{} a *:* rwm", verb(*allow)),
            Rule::Devices { allow, devices, access } => write!(f, "{} {devices} {access}", verb(*allow)),
        }
    }
}

const ANY: Option<u32> = None;

const fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: Access) -> Rule {
    Rule::Devices { allow: true, devices: Devices { major, minor, kind }, access }
}

/// What runc 1.1 allows every container, after the config's rules
/// (AllowedDevices in libcontainer/specconv/spec_linux.go).
const RUNC_DEFAULTS: [Rule; 11] = [
    // Making a node of any device: using it is what the other rules decide.
    allow(Kind::Char, ANY, ANY, Access::MKNOD),
    allow(Kind::Block, ANY, ANY, Access::MKNOD),
    // /dev/null, random, full, tty, zero, urandom: the ones every container has.
    allow(Kind::Char, Some(1), Some(3), Access::ALL),
    allow(Kind::Char, Some(1), Some(8), Access::ALL),
    allow(Kind::Char, Some(1), Some(7), Access::ALL),
    allow(Kind::Char, Some(5), Some(0), Access::ALL),
    allow(Kind::Char, Some(1), Some(5), Access::ALL),
    allow(Kind::Char, Some(1), Some(9), Access::ALL),
    // The pseudo-terminals in /dev/pts, and /dev/ptmx, which makes them.
    allow(Kind::Char, Some(136), ANY, Access::ALL),
    allow(Kind::Char, Some(5), Some(2), Access::ALL),
    // /dev/net/tun, which runc 1.2 no longer allows.
    allow(Kind::Char, Some(10), Some(200), Access::ALL),
];

/// The rules of linux.resources.devices, followed by runc's defaults.
pub fn rules(config: &[LinuxDeviceCgroup]) -> Result<DeviceRules> {
    let mut rules = DeviceRules::deny_all();
    for (index, entry) in config.iter().enumerate() {
        let origin = format!("linux.resources.devices[{index}]");
        let rule = parse(entry).map_err(|why| Error::new(format!("{origin}: {why}")))?;
        rules.add(rule, &origin)?;
    }
    for rule in RUNC_DEFAULTS {
        rules.add(rule, "runc's default rule")?;
    }
    Ok(rules)
}

/// One entry of the config, or why it is not a rule.
fn parse(entry: &LinuxDeviceCgroup) -> std::result::Result<Rule, String> {
    let allow = entry.allow();
    let letters = entry.access().as_deref().unwrap_or_default();
    if letters.is_empty() {
        return Err("its access is empty: give some of r, w and m (read, write, mknod)".to_string());
    }
    let access = Access::parse(letters).ok_or_else(|| {
        format!("its access {letters:?} has a letter other than r, w and m (read, write, mknod)")
    })?;
    let kind = match entry.typ() {
        None | Some(LinuxDeviceType::A) => return Ok(Rule::Everything { allow }),
        Some(LinuxDeviceType::B) => Kind::Block,
        Some(LinuxDeviceType::C) => Kind::Char,
        Some(other) => {
            return Err(format!(
                "the devices cgroup knows no type {:?}: give a (all), b (block) or c (char)",
                other.as_str()
            ))
        }
    };
    // runc's own "any" is -1, and some configs say so.
    let number = |n: Option<i64>, which: &str| match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            format!(
                "its {which} number {n} is no device number: give 0 to {}, or leave it out for any",
                u32::MAX
            )
        }),
    };
    let devices =
        Devices { major: number(entry.major(), "major")?, minor: number(entry.minor(), "minor")?, kind };
    Ok(Rule::Devices { allow, devices, access })
}

impl DeviceRules {
    /// Where runc starts: everything denied, no exception.
    fn deny_all() -> DeviceRules {
        DeviceRules { default_allow: false, exceptions: BTreeMap::new() }
    }

    /// Applies one more rule, as the kernel's v1 files do with a rule
    /// written to them (and runc's emulator of them): it overrides what
    /// came before it.
    fn add(&mut self, rule: Rule, origin: &str) -> Result<()> {
        let (allow, devices, access) = match rule {
            Rule::Everything { allow } => {
                *self = DeviceRules { default_allow: allow, exceptions: BTreeMap::new() };
                return Ok(());
            }
            Rule::Devices { allow, devices, access } => (allow, devices, access),
        };
        if allow != self.default_allow {
            self.exceptions.entry(devices).or_default().0 |= access.0;
            return Ok(());
        }
        // A rule that agrees with the default takes back the access an
        // exception gave. The kernel looks only for an exception that names
        // the same devices: one with a wildcard that covers them would keep
        // it, in silence. runc refuses such a rule, and so do we.
        let wider = [
            Devices { major: ANY, ..devices },
            Devices { minor: ANY, ..devices },
            Devices { major: ANY, minor: ANY, ..devices },
        ];
        for wildcard in wider.into_iter().filter(|w| *w != devices) {
            if let Some(given) = self.exceptions.get(&wildcard).filter(|given| given.0 & access.0 != 0) {
                let earlier = Rule::Devices { allow: !allow, devices: wildcard, access: *given };
                return Err(Error::new(format!(
                    "{origin} ({rule}) would punch a hole in the earlier rule {earlier}, which the devices \
                     cgroup cannot do: change that rule, or list the devices it covers one by one"
                )));
            }
        }
        if let Some(exception) = self.exceptions.get_mut(&devices) {
            exception.0 &= !access.0;
            if exception.0 == 0 {
                self.exceptions.remove(&devices);
            }
        }
        Ok(())
    }

    // ANCHOR: apply
    /// Holds the processes of `cgroup`, a group just made by
    /// [`Cgroup::create_for_a_container`], to these rules.
    pub fn apply(&self, cgroup: &Cgroup) -> Result<()> {
        let dir = cgroup.directory(DEVICES).ok_or_else(|| {
            Error::new(format!(
                "the cgroup {} has no directory in the devices controller's tree: make it with \
                 Cgroup::create_for_a_container",
                cgroup.name
            ))
        })?;
        match cgroup.version {
            Version::V1 => self.write_to(dir),
            Version::V2 => kernel::bpf_attach_cgroup_device(
                &kernel::bpf_load_cgroup_device_program(&self.program())?,
                dir,
            ),
        }
    }
    // ANCHOR_END: apply

    /// Under v1: a new group allows everything, as its parent does. "a" in
    /// one file sets the default, then each exception goes in the other,
    /// in runc's order: to devices.allow when the default is to deny.
    fn write_to(&self, dir: &Path) -> Result<()> {
        let (default_file, exceptions_file) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        kernel::write_file(&dir.join(default_file), "a *:* rwm")?;
        for (devices, access) in &self.exceptions {
            kernel::write_file(&dir.join(exceptions_file), &format!("{devices} {access}"))?;
        }
        Ok(())
    }

    /// Under v2: the eBPF program that answers as the rules do, made as
    /// runc makes it (libcontainer/cgroups/ebpf/devicefilter). It reads its
    /// context, struct bpf_cgroup_dev_ctx, into registers 2 to 5; then
    /// comes a block for each exception, whose tests each jump to the next
    /// block when they fail, and which returns the exception's answer when
    /// none does; after the last block, the default answer.
    fn program(&self) -> Vec<BpfInstruction> {
        let mut program = vec![
            // r2 = the device's type: BPF_DEVCG_DEV_BLOCK (1) or _CHAR (2),
            // the low half of the context's first word.
            BpfInstruction::new(BPF_LDX | BPF_MEM | BPF_W, R2, R1, 0, 0),
            BpfInstruction::new(BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, 0xffff),
            // r3 = the access asked for, its high half: BPF_DEVCG_ACC_*.
            BpfInstruction::new(BPF_LDX | BPF_MEM | BPF_W, R3, R1, 0, 0),
            BpfInstruction::new(BPF_ALU | BPF_RSH | BPF_K, R3, 0, 0, 16),
            // r4 = the major number, r5 = the minor.
            BpfInstruction::new(BPF_LDX | BPF_MEM | BPF_W, R4, R1, 4, 0),
            BpfInstruction::new(BPF_LDX | BPF_MEM | BPF_W, R5, R1, 8, 0),
        ];
        // The numbers are compared as 32 bits (BPF_JMP32), as the context
        // holds them; runc compares 64, which fails for numbers of 2^31 up.
        let skip_unless_equal = |register: u8, value: i32| {
            BpfInstruction::new(BPF_JMP32 | BPF_JNE | BPF_K, register, 0, 0, value)
        };
        for (devices, access) in &self.exceptions {
            let kind = match devices.kind {
                Kind::Block => BPF_DEVCG_DEV_BLOCK,
                Kind::Char => BPF_DEVCG_DEV_CHAR,
            };
            let mut tests = vec![skip_unless_equal(R2, kind)];
            if *access != Access::ALL {
                // The access asked for must be within the exception's:
                // r1 = r3 & access, skip if r1 != r3 (the context's pointer
                // in r1 is not needed any more).
                tests.push(BpfInstruction::new(BPF_ALU | BPF_MOV | BPF_X, R1, R3, 0, 0));
                tests.push(BpfInstruction::new(BPF_ALU | BPF_AND | BPF_K, R1, 0, 0, i32::from(access.0)));
                tests.push(BpfInstruction::new(BPF_JMP32 | BPF_JNE | BPF_X, R1, R3, 0, 0));
            }
            // u32 to i32 keeps the bits, which is what a 32-bit compare sees.
            tests.extend(devices.major.map(|major| skip_unless_equal(R4, major as i32)));
            tests.extend(devices.minor.map(|minor| skip_unless_equal(R5, minor as i32)));
            // A jump lands its offset + 1 instructions on: past the rest of
            // the tests and the two instructions that return.
            let block_length = tests.len() + 2;
            for (at, test) in tests.iter_mut().enumerate() {
                if test.code & BPF_CLASS == BPF_JMP32 {
                    test.offset = (block_length - at - 1) as i16;
                }
            }
            program.extend(tests);
            program.extend(returning(!self.default_allow));
        }
        program.extend(returning(self.default_allow));
        program
    }
}

/// r0 = 1 (allow) or 0 (deny), and return it.
fn returning(allow: bool) -> [BpfInstruction; 2] {
    [
        BpfInstruction::new(BPF_ALU | BPF_MOV | BPF_K, R0, 0, 0, i32::from(allow)),
        BpfInstruction::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

// The parts of an eBPF opcode this program uses (linux/bpf_common.h and
// linux/bpf.h): a class (the low three bits), an operation, and a size or
// the source of the operand, the immediate (BPF_K) or a register (BPF_X).
const BPF_CLASS: u8 = 0x07;
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
// Registers: r0 holds the answer, r1 points at the context.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
// Device types in struct bpf_cgroup_dev_ctx.
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;

    use nix::errno::Errno;
    use nix::fcntl::OFlag;
    use nix::sys::stat::{makedev, Mode, SFlag};
    use nix::sys::wait::WaitStatus;
    use nix::unistd::ForkResult;

    use crate::cgroups::unique_name;

    fn config(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).expect("a test's rules are valid JSON")
    }

    fn refusal(json: &str) -> String {
        rules(&config(json)).expect_err("the rules are refused").to_string()
    }

    /// The rules of `json` alone, without runc's defaults.
    fn without_defaults(json: &str) -> DeviceRules {
        let mut rules = DeviceRules::deny_all();
        for entry in config(json) {
            rules.add(parse(&entry).expect("a test's rule parses"), "test").expect("a test's rule applies");
        }
        rules
    }

    /// The exceptions, as the v1 files get them.
    fn exceptions(rules: &DeviceRules) -> Vec<String> {
        rules.exceptions.iter().map(|(devices, access)| format!("{devices} {access}")).collect()
    }

    /// What runc 1.1.5's containers get with its spec's rule, deny all,
    /// read from devices.list of one of its groups.
    const RUNCS_LIST: [&str; 11] = [
        "b *:* m",
        "c *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
        "c 136:* rwm",
    ];

    #[test]
    fn runcs_defaults_come_after_a_list_that_starts_by_denying_all() {
        let spec_default = rules(&config(r#"[{"allow": false, "access": "rwm"}]"#)).expect("builds");
        assert!(!spec_default.default_allow);
        assert_eq!(exceptions(&spec_default), RUNCS_LIST);
        // No rules at all: the same.
        assert_eq!(rules(&[]).expect("builds"), spec_default);
        // A device of the config's goes in runc's order.
        let disk = rules(&config(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}]"#,
        ))
        .expect("builds");
        let mut expected = RUNCS_LIST.to_vec();
        expected.insert(9, "b 8:0 r");
        assert_eq!(exceptions(&disk), expected);
        // runc's "any" is -1; letters come in any order.
        let any_major = rules(&config(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": -1, "minor": 3, "access": "mwr"}]"#,
        ))
        .expect("builds");
        let mut expected = RUNCS_LIST.to_vec();
        expected.insert(2, "c *:3 rwm");
        assert_eq!(exceptions(&any_major), expected);
    }

    #[test]
    fn later_rules_win_and_no_config_takes_the_defaults_away() {
        // A deny takes back an earlier allow.
        let taken_back = rules(&config(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw"},
                {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "w"}]"#,
        ))
        .expect("builds");
        assert!(exceptions(&taken_back).contains(&"b 8:0 r".to_string()));
        // Denying a default does nothing: the defaults come last.
        let null_denied = rules(&config(
            r#"[{"allow": false, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
        ))
        .expect("builds");
        assert_eq!(exceptions(&null_denied), RUNCS_LIST);
        // Type "a" starts the list over, whatever else it says.
        let allow_all = rules(&config(
            r#"[{"allow": false, "type": "b", "major": 8, "minor": 0, "access": "r"},
                {"allow": true, "type": "a", "major": 3, "minor": 3, "access": "r"}]"#,
        ))
        .expect("builds");
        assert!(allow_all.default_allow);
        assert_eq!(exceptions(&allow_all), Vec::<String>::new());
        // On a list that allows all, a deny is an exception, and the
        // defaults take back what it denies of theirs (mknod of block
        // devices, all of /dev/zero).
        let all_but = rules(&config(
            r#"[{"allow": true, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": false, "type": "b", "access": "rwm"}]"#,
        ))
        .expect("builds");
        assert!(all_but.default_allow);
        assert_eq!(exceptions(&all_but), ["b *:* rw"]);
    }

    #[test]
    fn what_runc_refuses_is_refused() {
        let deny_all = r#"{"allow": false, "access": "rwm"}"#;
        let refused = |rule: &str| refusal(&format!("[{deny_all}, {rule}]"));
        assert_eq!(
            refusal(r#"[{"allow": false}]"#),
            "linux.resources.devices[0]: its access is empty: give some of r, w and m (read, write, mknod)"
        );
        assert!(refused(r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}"#)
            .starts_with(
                "linux.resources.devices[1]: its access \"rwx\" has a letter other than r, w and m"
            ));
        assert!(refused(r#"{"allow": true, "type": "p", "major": 1, "minor": 3, "access": "r"}"#)
            .contains("the devices cgroup knows no type \"p\""));
        assert!(refused(r#"{"allow": true, "type": "c", "major": -5, "access": "r"}"#)
            .contains("its major number -5 is no device number"));
        // A hole in an allowed wildcard, which v1 would ignore in silence.
        assert_eq!(
            refusal(&format!(
                r#"[{deny_all}, {{"allow": true, "type": "c", "major": 4, "access": "rw"}},
                    {{"allow": false, "type": "c", "major": 4, "minor": 1, "access": "w"}}]"#
            )),
            "linux.resources.devices[2] (deny c 4:1 w) would punch a hole in the earlier rule allow c 4:* rw, \
             which the devices cgroup cannot do: change that rule, or list the devices it covers one by one"
        );
        // So is a hole that runc's defaults would punch in a config's wildcard.
        assert!(refusal(
            r#"[{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "access": "rw"}]"#
        )
        .starts_with(
            "runc's default rule (allow c 1:3 rwm) would punch a hole in the earlier rule deny c *:* rw"
        ));
    }

    #[test]
    fn the_program_has_a_block_for_each_exception() {
        let program = rules(&[]).expect("builds").program();
        // Six to read the context; a block for each of the 11 exceptions:
        // its tests (type; access unless rwm; major and minor unless any)
        // and two to return; two more for the default.
        assert_eq!(program.len(), 6 + (6 + 6 + 5 * 5 + 5 + 5 + 5 + 4) + 2);
        // The block of b *:* m: if the type is not block, or the access is
        // not within mknod, on to the next block; else allow.
        let jump_if_not_equal = BPF_JMP32 | BPF_JNE;
        assert_eq!(
            program[6..12],
            [
                BpfInstruction::new(jump_if_not_equal | BPF_K, R2, 0, 5, BPF_DEVCG_DEV_BLOCK),
                BpfInstruction::new(BPF_ALU | BPF_MOV | BPF_X, R1, R3, 0, 0),
                BpfInstruction::new(BPF_ALU | BPF_AND | BPF_K, R1, 0, 0, 1),
                BpfInstruction::new(jump_if_not_equal | BPF_X, R1, R3, 2, 0),
                BpfInstruction::new(BPF_ALU | BPF_MOV | BPF_K, R0, 0, 0, 1),
                BpfInstruction::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
            ]
        );
        // The block of c 1:3 rwm, the third: no test of the access.
        assert_eq!(
            program[18..23],
            [
                BpfInstruction::new(jump_if_not_equal | BPF_K, R2, 0, 4, BPF_DEVCG_DEV_CHAR),
                BpfInstruction::new(jump_if_not_equal | BPF_K, R4, 0, 3, 1),
                BpfInstruction::new(jump_if_not_equal | BPF_K, R5, 0, 2, 3),
                BpfInstruction::new(BPF_ALU | BPF_MOV | BPF_K, R0, 0, 0, 1),
                BpfInstruction::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
            ]
        );
        // Nothing matched: deny.
        assert_eq!(program[program.len() - 2..], returning(false));
    }

    /// How an attempt went: done, or the errno it failed with.
    type Outcome = std::result::Result<(), Errno>;

    /// What a child tries in the group.
    #[derive(Debug)]
    enum Attempt {
        /// open(2) of a device file in the host's /dev.
        Open(&'static str, OFlag),
        /// mknod(2) of a block device file in a scratch directory.
        MakeBlockNode(u64, u64),
    }

    impl Attempt {
        fn make(&self, scratch: &Path) -> nix::Result<()> {
            match self {
                Attempt::Open(path, flags) => {
                    nix::fcntl::open(*path, *flags | OFlag::O_CLOEXEC, Mode::empty()).map(drop)
                }
                Attempt::MakeBlockNode(major, minor) => {
                    let node = scratch.join(format!("node-{}", std::process::id()));
                    nix::sys::stat::mknod(
                        &node,
                        SFlag::S_IFBLK,
                        Mode::from_bits_truncate(0o600),
                        makedev(*major, *minor),
                    )
                }
            }
        }
    }

    /// The child's exit code when it could not join the group.
    const NOT_JOINED: i32 = 255;

    /// Forks a child that joins a group with `join` and makes `attempt`, and
    /// tells how the attempt went; the test process stays out of the group.
    fn in_a_child(join: impl FnOnce() -> Result<()>, attempt: impl FnOnce() -> nix::Result<()>) -> Outcome {
        // SAFETY: the child makes system calls, allocates through glibc's
        // malloc (which fork leaves usable), and leaves with _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                crate::narrate::set_quiet(true);
                let code = match join() {
                    Ok(()) => attempt().map_or_else(|errno| errno as i32, |()| 0),
                    Err(_) => NOT_JOINED,
                };
                unsafe { nix::libc::_exit(code) }
            }
            ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) => Ok(()),
                WaitStatus::Exited(_, NOT_JOINED) => panic!("the child could not join the group"),
                WaitStatus::Exited(_, errno) => Err(Errno::from_raw(errno)),
                other => panic!("the child ended in an unexpected way: {other:?}"),
            },
        }
    }

    /// A directory of its own, removed when dropped.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A group of its own in a cgroup v2 tree, removed when dropped.
    struct V2Group(PathBuf);

    impl Drop for V2Group {
        fn drop(&mut self) {
            let _ = kernel::rmdir(&self.0);
        }
    }

    /// The cgroup v2 tree beside v1's on a "hybrid" machine: a device
    /// program works there as on a v2 machine, controllers or not.
    fn v2_tree_beside_v1() -> Option<PathBuf> {
        use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
        let tree = Path::new(crate::cgroups::CGROUP_ROOT).join("unified");
        statfs(&tree).ok().filter(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC).map(|_| tree)
    }

    /// Applies `rules` to a new group of this machine's, and, on a machine
    /// with v1's trees and a v2 tree beside them, attaches their program to
    /// a new group of that v2 tree too; in each, children make the
    /// attempts, and each must go as expected.
    fn check(test: &str, rules: &DeviceRules, expectations: &[(Attempt, Outcome)]) {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped {test}: it needs root, to make cgroups");
            return;
        }
        let scratch = Scratch(kernel::mkdtemp("podlab-devices-").expect("a scratch directory"));
        let version = Version::of_this_machine().expect("this machine has cgroups");
        let group = Cgroup::create_for_a_container(version, &unique_name()).expect("the group is made");
        rules.apply(&group).expect("the rules are applied");
        for (attempt, expected) in expectations {
            let outcome = in_a_child(|| group.join_self(), || attempt.make(&scratch.0));
            assert_eq!(outcome, *expected, "{attempt:?} in a group of cgroup {}", version.name());
        }
        drop(group);
        let Some(tree) = v2_tree_beside_v1().filter(|_| version == Version::V1) else {
            eprintln!(
                "{test}: no cgroup v2 tree beside v1's here; the device program ran only on a v2 machine"
            );
            return;
        };
        let v2_group = V2Group(tree.join(unique_name()));
        kernel::mkdir(&v2_group.0, 0o755).expect("the v2 group is made");
        let program = kernel::bpf_load_cgroup_device_program(&rules.program()).expect("the program loads");
        kernel::bpf_attach_cgroup_device(&program, &v2_group.0).expect("the program attaches");
        let join = || kernel::write_file(&v2_group.0.join("cgroup.procs"), "0");
        for (attempt, expected) in expectations {
            let outcome = in_a_child(join, || attempt.make(&scratch.0));
            assert_eq!(outcome, *expected, "{attempt:?} in a group of cgroup v2 beside v1");
        }
    }

    #[test]
    fn a_group_uses_only_the_devices_it_is_allowed() {
        let null_and_reading_zero = without_defaults(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]"#,
        );
        check(
            "a_group_uses_only_the_devices_it_is_allowed",
            &null_and_reading_zero,
            &[
                (Attempt::Open("/dev/null", OFlag::O_RDWR), Ok(())),
                (Attempt::Open("/dev/zero", OFlag::O_RDONLY), Ok(())),
                (Attempt::Open("/dev/zero", OFlag::O_WRONLY), Err(Errno::EPERM)),
                (Attempt::Open("/dev/full", OFlag::O_RDONLY), Err(Errno::EPERM)),
                (Attempt::MakeBlockNode(8, 0), Err(Errno::EPERM)),
            ],
        );
    }

    #[test]
    fn with_runcs_defaults_a_disk_node_can_be_made_and_other_devices_not_opened() {
        check(
            "with_runcs_defaults_a_disk_node_can_be_made_and_other_devices_not_opened",
            &rules(&[]).expect("builds"),
            &[
                (Attempt::Open("/dev/null", OFlag::O_RDWR), Ok(())),
                (Attempt::Open("/dev/zero", OFlag::O_RDONLY), Ok(())),
                (Attempt::Open("/dev/kmsg", OFlag::O_RDONLY), Err(Errno::EPERM)),
                (Attempt::MakeBlockNode(8, 0), Ok(())),
            ],
        );
    }

    #[test]
    fn a_list_that_allows_all_denies_its_exceptions() {
        let all_but_zero = without_defaults(
            r#"[{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]"#,
        );
        check(
            "a_list_that_allows_all_denies_its_exceptions",
            &all_but_zero,
            &[
                (Attempt::Open("/dev/null", OFlag::O_RDWR), Ok(())),
                (Attempt::Open("/dev/zero", OFlag::O_RDONLY), Err(Errno::EPERM)),
                (Attempt::Open("/dev/kmsg", OFlag::O_RDONLY), Ok(())),
            ],
        );
    }
}
