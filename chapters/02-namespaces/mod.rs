//! Level 2: namespaces.
//!
//! Level 1's process saw the host's processes, hostname, network and
//! mounts, and could walk out of its jail. Here the first process of the
//! container is cloned into new namespaces, each of which gives it its own
//! copy of one of those things; in its own mount namespace it swaps the
//! whole mount tree's root for the rootfs with pivot_root, leaving nothing
//! above "/" to climb to. A second process can then join those namespaces,
//! which is what `nsenter`, `docker exec` and `kubectl exec` do.

// The lab swaps the reference `isolate` for the student's file (`--features lab-02`).
#[cfg_attr(not(feature = "lab-02"), path = "isolate.rs")]
#[cfg_attr(feature = "lab-02", path = "../../labs/02-namespaces/isolate.rs")]
mod isolate;

use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use isolate::{join, map_ids, pivot_into};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::child::{run_in_child, run_in_new_namespaces, Exit};
use crate::chroot::{self, Witness};
use crate::error::{Error, Result};
use crate::kernel;
use crate::scenario::{Alongside, Level, Scenario};

/// A kind of namespace: what people call it, its file in /proc/PID/ns, and
/// its flag for clone(2), unshare(2) and setns(2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    pub file: &'static str,
    pub flag: CloneFlags,
}

/// Every kind this level uses, in the order they are joined: user first,
/// mount last (see [`join`]).
pub const KINDS: [Kind; 6] = [
    Kind { name: "user", file: "user", flag: CloneFlags::CLONE_NEWUSER },
    Kind { name: "IPC", file: "ipc", flag: CloneFlags::CLONE_NEWIPC },
    Kind { name: "UTS", file: "uts", flag: CloneFlags::CLONE_NEWUTS },
    Kind { name: "network", file: "net", flag: CloneFlags::CLONE_NEWNET },
    Kind { name: "PID", file: "pid", flag: CloneFlags::CLONE_NEWPID },
    Kind { name: "mount", file: "mnt", flag: CloneFlags::CLONE_NEWNS },
];

/// The set a container gets from runc's default config: all but user.
pub const CONTAINER: CloneFlags = CloneFlags::CLONE_NEWUTS
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWNET);

pub const DEFAULT_HOSTNAME: &str = "podlab";

/// The longest host name Linux takes (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;

/// One line of a uid_map or gid_map: `count` ids from `inside` stand for
/// as many from `outside`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdMap {
    /// The id outside that `inside` stands for, if the map covers it.
    pub fn outside_of(&self, inside: u32) -> Option<u32> {
        let offset = inside.checked_sub(self.inside).filter(|offset| *offset < self.count)?;
        self.outside.checked_add(offset)
    }
}

/// A user namespace's maps: the lines of its uid_map, and of its gid_map.
/// Each may have several lines, and they may differ (a config can map
/// users and groups differently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMaps {
    pub uids: Vec<IdMap>,
    pub gids: Vec<IdMap>,
}

impl IdMaps {
    /// The same one line for users and groups, as this level's --uid-map.
    pub fn same(map: IdMap) -> IdMaps {
        IdMaps { uids: vec![map], gids: vec![map] }
    }

    /// Who root inside is outside, user and group, if the maps cover it.
    pub fn root_outside(&self) -> Option<(u32, u32)> {
        let outside = |maps: &[IdMap]| maps.iter().find_map(|map| map.outside_of(0));
        Some((outside(&self.uids)?, outside(&self.gids)?))
    }
}

/// Root inside is 100000 outside, the first id /etc/subuid usually gives.
impl Default for IdMap {
    fn default() -> Self {
        IdMap { inside: 0, outside: 100000, count: 65536 }
    }
}

impl FromStr for IdMap {
    type Err = String;

    /// `INSIDE:OUTSIDE:COUNT`, as in 0:100000:65536.
    fn from_str(text: &str) -> std::result::Result<IdMap, String> {
        let numbers: Vec<u32> =
            text.split(':').map(str::parse).collect::<std::result::Result<_, _>>().map_err(|_| {
                format!("{text:?} is not INSIDE:OUTSIDE:COUNT (three numbers, as in 0:100000:65536)")
            })?;
        match numbers[..] {
            [inside, outside, count] if count > 0 => Ok(IdMap { inside, outside, count }),
            [_, _, 0] => Err(format!("{text:?} maps no ids: COUNT must be at least 1")),
            _ => Err(format!("{text:?} is not INSIDE:OUTSIDE:COUNT (three numbers, as in 0:100000:65536)")),
        }
    }
}

/// One mount to make in the rootfs before the pivot: what mount(2) takes,
/// with the target given as a path inside the rootfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: Option<PathBuf>,
    pub target: PathBuf,
    pub fstype: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
}

impl Mount {
    /// Its target inside `root`, made if missing, as this mount needs it: a
    /// bind of a file goes onto a file (an empty one is made: a CRI binds
    /// /etc/hosts and /etc/resolv.conf into images that may lack them);
    /// any other new mount onto a directory; a change to a mount made just
    /// before (a remount, a propagation) onto what is there.
    pub fn target_in(&self, root: &kernel::Root) -> Result<kernel::Inside> {
        let changes_a_mount =
            self.flags.contains(MsFlags::MS_REMOUNT) || (self.source.is_none() && self.fstype.is_none());
        let binds_a_file =
            self.flags.contains(MsFlags::MS_BIND) && self.source.as_ref().is_some_and(|s| !s.is_dir());
        if changes_a_mount {
            root.find(&self.target)?.ok_or_else(|| {
                Error::new(format!(
                    "{} is not in the rootfs, so its mount cannot be changed",
                    self.target.display()
                ))
            })
        } else if binds_a_file {
            root.make_file(&self.target)
        } else {
            root.make_dirs(&self.target)
        }
    }

    /// The proc file system at /proc, as containers mount it.
    pub fn proc() -> Mount {
        Mount {
            source: Some(PathBuf::from("proc")),
            target: PathBuf::from("/proc"),
            fstype: Some("proc".to_string()),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            data: None,
        }
    }
}

/// What the container's first process does once it is set up.
pub enum Then {
    /// Replace itself with this command, as a container does.
    Run(Vec<String>),
    /// Try level 1's escape, to see whether it still works.
    Escape,
}

/// Refuses namespaces this kernel does not have, and sets it cannot make
/// work, before anything is made.
pub fn check_kernel(namespaces: CloneFlags) -> Result<()> {
    let has = |flag| namespaces.contains(flag);
    if has(CloneFlags::CLONE_NEWUSER) && has(CloneFlags::CLONE_NEWNS) && !has(CloneFlags::CLONE_NEWPID) {
        return Err(Error::new(
            "root of a user namespace may mount a /proc only for a PID namespace of its own: add --pid",
        ));
    }
    for kind in KINDS.iter().filter(|k| namespaces.contains(k.flag)) {
        if !kernel::has_namespace(kind.file) {
            return Err(Error::new(format!(
                "this kernel has no {} namespaces (/proc/self/ns/{} is missing): leave that one out, \
                 or use a kernel built with them, as Debian's and Ubuntu's are",
                kind.name, kind.file
            )));
        }
    }
    Ok(())
}

/// Refuses a host name Linux would not take, before anything is made.
pub fn check_hostname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > HOST_NAME_MAX {
        return Err(Error::new(format!(
            "the host name {name:?} has {} bytes: Linux takes 1 to {HOST_NAME_MAX}",
            name.len()
        )));
    }
    Ok(())
}

// ANCHOR: run
/// Runs `then` as the first process of new namespaces of the kinds in
/// `namespaces`, with `rootfs` as its root.
pub fn run(rootfs: &Path, namespaces: CloneFlags, hostname: &str, ids: &IdMaps, then: &Then) -> Result<Exit> {
    check_kernel(namespaces)?;
    check_hostname(hostname)?;
    let program = match then {
        Then::Run(command) => Some(chroot::resolve(rootfs, &command[0])?),
        Then::Escape => None,
    };
    let witness = Witness::take(rootfs)?;
    let env = chroot::environment();
    // A user namespace's maps are written from outside, while the child waits.
    let mut write_maps = |child: Pid| map_ids(child, ids);
    let prepare = namespaces.contains(CloneFlags::CLONE_NEWUSER).then_some(&mut write_maps as _);
    run_in_new_namespaces(namespaces, prepare, || {
        set_up_inside(rootfs, namespaces, hostname)?;
        match (then, &program) {
            (Then::Run(command), Some(program)) => Err(chroot::exec(program, command, &env)),
            _ => witness.try_escape(),
        }
    })
}
// ANCHOR_END: run

// ANCHOR: set_up_inside
/// What the container's first process does, inside its new namespaces,
/// before it runs the command.
fn set_up_inside(rootfs: &Path, namespaces: CloneFlags, hostname: &str) -> Result<()> {
    if namespaces.contains(CloneFlags::CLONE_NEWUSER) {
        // Until now we were an unmapped id in here; become root of the
        // namespace, which is `ids.outside` out there.
        kernel::become_root()?;
    }
    if namespaces.contains(CloneFlags::CLONE_NEWUTS) {
        kernel::sethostname(hostname)?;
    }
    if namespaces.contains(CloneFlags::CLONE_NEWNET) {
        // A new network namespace has one interface, lo, and it is down.
        kernel::set_link_up("lo")?;
    }
    if namespaces.contains(CloneFlags::CLONE_NEWNS) {
        pivot_into(rootfs, &[Mount::proc()], MsFlags::MS_REC | MsFlags::MS_PRIVATE, |_| Ok(()))
    } else {
        // Without a mount namespace of our own, level 1's chroot is all we have.
        chroot::enter(rootfs)
    }
}
// ANCHOR_END: set_up_inside

/// The kinds of namespace in which process `pid` differs from us: the ones
/// `nsenter --all` would enter.
pub fn namespaces_of(pid: Pid) -> Result<Vec<Kind>> {
    let proc = Path::new("/proc").join(pid.to_string());
    if pid.as_raw() <= 0 || !proc.exists() {
        return Err(Error::new(format!(
            "there is no process {pid} to join: give the host's pid of a running container's \
             first process (02-namespaces tells it as `clone(...) = child pid N`)"
        )));
    }
    let namespace = |dir: &Path, kind: &Kind| std::fs::read_link(dir.join("ns").join(kind.file)).ok();
    let differs = |kind: &&Kind| namespace(&proc, kind) != namespace(Path::new("/proc/self"), kind);
    let kinds: Vec<Kind> = KINDS.iter().filter(differs).copied().collect();
    if kinds.is_empty() {
        return Err(Error::new(format!(
            "process {pid} shares every namespace with us: it is not in a container, so there is nothing to join"
        )));
    }
    Ok(kinds)
}

// ANCHOR: run_joined
/// Runs `command` in the namespaces of the running process `pid`: joins
/// them, then forks, because a new PID namespace applies to children only.
pub fn run_joined(pid: Pid, command: &[String]) -> Result<Exit> {
    let kinds = namespaces_of(pid)?;
    join(pid, &kinds)?;
    // Joining the mount namespace made its root ours: look the command up there.
    let program = chroot::resolve(Path::new("/"), &command[0])?;
    let env = chroot::environment();
    let user = kinds.iter().any(|kind| kind.flag == CloneFlags::CLONE_NEWUSER);
    run_in_child(|| {
        if user {
            kernel::become_root()?;
        }
        Err(chroot::exec(&program, command, &env))
    })
}
// ANCHOR_END: run_joined

/// Level 2 in the ladder, with the scenarios its tests and its lab check run.
pub const LEVEL: Level = Level {
    number: 2,
    name: "namespaces",
    example: "02-namespaces",
    feature: "lab-02",
    lab_files: &["labs/02-namespaces/isolate.rs"],
    workspace: None,
    variant: crate::scenario::same_everywhere,
    scenarios: &[
        Scenario {
            name: "uts",
            args: &["--uts", "--hostname", "box", "hostname"],
            shows: "a host name of its own; the host's is untouched",
            hint: "the UTS namespace only needs sethostname; check that the rootfs is entered",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "pid",
            args: &["--pid", "--mount", "ps"],
            shows: "the command is PID 1, and ps sees only the container",
            hint: "pivot_into() mounts proc on the rootfs's /proc before pivot_root",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "mount",
            args: &["--mount", "sh", "-c", "cut -d\" \" -f2 /proc/mounts"],
            shows: "after pivot_root, the mount table holds / and /proc, nothing of the host",
            hint: "pivot_into(): make / private and recursive, bind the rootfs onto itself, mount \
                   proc, chdir into it, pivot_root(\".\", \".\"), umount2(\".\", MNT_DETACH), chdir(\"/\")",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "escape",
            args: &["--mount", "--escape"],
            shows: "level 1's escape finds nothing above / after pivot_root",
            hint: "pivot_into() must detach the old root; otherwise the escape finds it",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "ipc",
            args: &["--ipc", "--mount", "sh", "-c", "wc -l < /proc/sysvipc/shm"],
            shows: "an IPC namespace starts empty: only the header of the shared memory table",
            hint: "pivot_into() mounts the proc that shows the new namespace's IPC objects",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "net",
            args: &["--net", "ip", "link"],
            shows: "a network namespace has only lo, which we set up",
            hint: "the network namespace needs no lab code; check that the rootfs is entered",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "user",
            args: &[
                "--user",
                "--pid",
                "--mount",
                "sh",
                "-c",
                "id; touch /tmp/made-inside; stat -c \"%u:%g %n\" /tmp/made-inside /bin/busybox",
            ],
            shows: "root inside, an ordinary id outside; the host's root is nobody (65534) in here",
            hint: "map_ids() writes \"0 100000 65536\\n\" to /proc/PID/uid_map, and to gid_map",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "all",
            args: &["--all", "--hostname", "box", "sh", "-c", "hostname; ps"],
            shows: "the set a container gets: UTS, PID, mount, IPC, network",
            hint: "all of pivot_into()",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "join",
            args: &["--join", "{pid}", "sh", "-c", "hostname; ps -o pid,comm | head -2"],
            shows: "a second process joins a running container's namespaces, as nsenter does",
            hint: "join(): setns into /proc/PID/ns/<kind> for each kind, in the order given",
            then: &[],
            files: &[],
            alongside: Some(Alongside {
                args: &["--all", "--hostname", "joined", "sleep", "30"],
                ready_when: "sleep",
            }),
        },
        Scenario {
            name: "no-such-process",
            args: &["--join", "999999999", "true"],
            shows: "joining a process that is not there: one sentence, exit 2",
            hint: "checked before join() is called",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "long-hostname",
            args: &[
                "--hostname",
                "a-host-name-longer-than-the-sixty-four-bytes-that-linux-takes-for-one",
                "true",
            ],
            shows: "a host name Linux would refuse is refused before anything is made",
            hint: "checked before the rootfs is made",
            then: &[],
            files: &[],
            alongside: None,
        },
    ],
};
