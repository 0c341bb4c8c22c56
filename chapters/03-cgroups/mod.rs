//! Level 3: cgroups.
//!
//! Namespaces decide what a process sees; control groups decide what it may
//! use. A cgroup is a directory in a special file system: write a limit into
//! one of its files, write a process id into `cgroup.procs`, and the kernel
//! holds that process and its children to the limit, and counts what they
//! use. Version 1 has one tree per controller; version 2 one tree for all.

// The lab swaps the reference `limits` for the student's file (`--features lab-03`).
#[cfg_attr(not(feature = "lab-03"), path = "limits.rs")]
#[cfg_attr(feature = "lab-03", path = "../../labs/03-cgroups/limits.rs")]
mod limits;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use limits::{read_usage, write_limits};
use nix::unistd::Pid;

use crate::child::{run_in_child, Exit};
use crate::chroot;
use crate::error::{Error, Result};
use crate::kernel;
use crate::scenario::{Level, Scenario};

/// Where the cgroup file systems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The controllers this level uses. Under v1, each has a tree of its own
/// (cpuacct counts CPU time, cpu limits it).
const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];
/// Under v1, the freezer has a tree of its own too; a runtime's groups are
/// made in it (to pause a container), this level's are not. Under v2 every
/// group can be frozen.
const FREEZER: &str = "freezer";
/// Under v1, so has the devices controller, which holds a container to its
/// list of devices; a runtime's groups are made in its tree too. Under v2
/// there is no such controller: an eBPF program attached to the group
/// does its work.
pub const DEVICES: &str = "devices";
/// The trees a runtime's groups are made in under v1, besides this level's.
const FOR_A_CONTAINER: [&str; 2] = [FREEZER, DEVICES];
/// Controllers a runtime's groups are made in where the machine has them,
/// for the rest of a config's resources (v1 names; v2 calls blkio "io" and
/// has no net_cls or net_prio).
const WHERE_PRESENT: [&str; 5] = ["cpuset", "blkio", "hugetlb", "net_cls", "net_prio"];

/// The name of a v1 controller under v2, if v2 has it.
fn v2_name(controller: &str) -> Option<&'static str> {
    match controller {
        "cpu" => Some("cpu"),
        "memory" => Some("memory"),
        "pids" => Some("pids"),
        "cpuset" => Some("cpuset"),
        "blkio" => Some("io"),
        "hugetlb" => Some("hugetlb"),
        _ => None,
    }
}

/// Whether this machine's cgroups have `controller` (a v1 name).
pub fn has_controller(version: Version, controller: &str) -> bool {
    let root = Path::new(CGROUP_ROOT);
    match version {
        Version::V1 => root.join(controller).join("cgroup.procs").exists(),
        Version::V2 => v2_name(controller).is_some_and(|name| {
            let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            available.split_whitespace().any(|a| a == name)
        }),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// One tree per controller, /sys/fs/cgroup/<controller>/...
    V1,
    /// One tree for all, /sys/fs/cgroup/...
    V2,
}

impl Version {
    /// What this machine has, read off the file system at /sys/fs/cgroup:
    /// cgroup2 itself (v2), or a tmpfs holding v1's trees (v1, or "hybrid"
    /// with a v2 tree beside them that holds no controller we use).
    pub fn of_this_machine() -> Result<Version> {
        use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
        let missing = || {
            Error::new(format!(
                "there is no cgroup file system at {CGROUP_ROOT}: mount one (mount -t cgroup2 none {CGROUP_ROOT})"
            ))
        };
        let fs = statfs(CGROUP_ROOT).map_err(|_| missing())?;
        if fs.filesystem_type() == CGROUP2_SUPER_MAGIC {
            Ok(Version::V2)
        } else if fs.filesystem_type() == TMPFS_MAGIC && Path::new(CGROUP_ROOT).join("memory").exists() {
            Ok(Version::V1)
        } else {
            Err(missing())
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// The limits a container may get; None for no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub cpu: Option<CpuShare>,
}

/// A share of one CPU: `quota_us` of every `period_us` microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuShare {
    pub quota_us: u64,
    pub period_us: u64,
}

/// The CFS period the kernel uses by default, 100 ms.
const PERIOD_US: u64 = 100_000;

/// `64M`, `512K`, `1G` or a number of bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || Error::new(format!("--memory {text:?} is not a size: write it as 64M, 512K or 1G"));
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return Err(bad()),
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = number.checked_mul(1 << shift).filter(|b| *b > 0).ok_or_else(bad)?;
    Ok(bytes)
}

/// A share of a CPU as a fraction: `0.5` is half of one CPU, `2` two CPUs.
pub fn parse_cpu(text: &str) -> Result<CpuShare> {
    let cpus: f64 = text.parse().map_err(|_| {
        Error::new(format!("--cpu {text:?} is not a number of CPUs: write it as 0.5 (half a CPU) or 2"))
    })?;
    // The kernel takes quotas from 1 ms on.
    let quota_us = (cpus * PERIOD_US as f64).round();
    if !quota_us.is_finite() || quota_us < 1000.0 {
        return Err(Error::new(format!("--cpu {text:?} is too small: give at least 0.01 of a CPU")));
    }
    Ok(CpuShare { quota_us: quota_us as u64, period_us: PERIOD_US })
}

/// `--pids`: at least 1.
pub fn parse_pids(text: &str) -> Result<u64> {
    text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        Error::new(format!("--pids {text:?} is not a number of processes: give a whole number from 1 up"))
    })
}

/// What the kernel counted for a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory_peak: Option<u64>,
    pub oom_kills: Option<u64>,
    pub forks_refused: Option<u64>,
    pub cpu_nanoseconds: Option<u64>,
    pub cpu_throttled: Option<u64>,
}

/// A control group of ours: a directory in each controller's tree (v1) or
/// one directory (v2). Removed when dropped, after any process still in it
/// is killed, on success and failure alike.
pub struct Cgroup {
    pub version: Version,
    /// Its path in the tree(s), confined to them: no "..", no leading "/".
    pub name: String,
    dirs: Vec<(&'static str, PathBuf)>,
    /// The groups above it that were made for it (a name may be a path),
    /// by their names, top first: removed after it, if nothing else is in them.
    pub parents_made: Vec<String>,
    /// Removed when dropped, unless kept for a container that lives on.
    owned: bool,
}

impl Cgroup {
    /// Makes the group `name`, which must not exist yet.
    /// A name may be a path, as runtimes are given (`default/c1`): parents
    /// that are missing are made, and removed with the group if they are
    /// empty by then. Whatever the name, the group stays inside the tree(s):
    /// see [`confine`].
    pub fn create(version: Version, name: &str) -> Result<Cgroup> {
        Self::create_in(version, name, &CONTROLLERS)
    }

    /// Makes the group `name` as [`create`](Cgroup::create) does, and under
    /// v1 in the freezer's and the devices controller's trees too: a group
    /// that can be paused and held to a list of devices.
    pub fn create_for_a_container(version: Version, name: &str) -> Result<Cgroup> {
        Self::create_in(version, name, &Self::for_a_container())
    }

    fn create_in(version: Version, name: &str, controllers: &[&'static str]) -> Result<Cgroup> {
        let name = &confine(name)?;
        let mut cgroup = Cgroup {
            version,
            name: name.to_string(),
            dirs: Vec::new(),
            parents_made: Vec::new(),
            owned: true,
        };
        let root = Path::new(CGROUP_ROOT);
        let wanted = Self::directories(version, name, controllers);
        // The parents missing in every tree, to remove them after.
        cgroup.parents_made = Self::missing_parents(version, name, controllers);
        for (_, dir) in &wanted {
            if dir.exists() {
                return Err(Error::new(format!(
                    "a cgroup named {name:?} exists already ({}): choose another --cgroup, or rmdir it if it is a leftover",
                    dir.display()
                )));
            }
        }
        check_controllers(version, controllers)?;
        for (controller, dir) in wanted {
            // Two controllers in one tree (cpu and cpuacct, often): one directory.
            if cgroup.dirs.iter().any(|(_, made)| *made == dir) {
                cgroup.dirs.push((controller, dir));
                continue;
            }
            let parent = dir.parent().unwrap_or(root);
            kernel::mkdir_all(parent)?;
            if version == Version::V2 {
                // The children of each group on the way get these
                // controllers (a no-op where they have them).
                let enable: Vec<String> = ["cpu", "memory", "pids", "cpuset", "blkio", "hugetlb"]
                    .into_iter()
                    .filter(|c| controllers.contains(c))
                    .filter_map(v2_name)
                    .map(|name| format!("+{name}"))
                    .collect();
                for ancestor in parent
                    .ancestors()
                    .take_while(|a| a.starts_with(root))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    kernel::write_file(&ancestor.join("cgroup.subtree_control"), &enable.join(" "))?;
                }
            }
            kernel::mkdir(&dir, 0o755)?;
            if version == Version::V1 && controller == "cpuset" {
                inherit_cpus_and_memory_nodes(&dir)?;
            }
            // Recorded as soon as it exists, so that Drop removes it on any path.
            cgroup.dirs.push((controller, dir));
        }
        Ok(cgroup)
    }

    /// Where a group of this name is, in each tree (v1) or the one (v2).
    fn directories(
        version: Version,
        name: &str,
        controllers: &[&'static str],
    ) -> Vec<(&'static str, PathBuf)> {
        let root = Path::new(CGROUP_ROOT);
        match version {
            // A controller's path may be a symbolic link to a tree it shares
            // ("cpu" -> "cpu,cpuacct"): the tree's own path, so that the
            // same directory is known as the same.
            Version::V1 => controllers
                .iter()
                .map(|c| {
                    (*c, std::fs::canonicalize(root.join(c)).unwrap_or_else(|_| root.join(c)).join(name))
                })
                .collect(),
            Version::V2 => vec![("", root.join(name))],
        }
    }

    /// The groups above `name` that no tree has yet, top first: those that
    /// making it makes, and removing it removes if they are empty by then.
    pub fn missing_parents(version: Version, name: &str, controllers: &[&'static str]) -> Vec<String> {
        let parents: Vec<&Path> =
            Path::new(name).ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
        parents
            .into_iter()
            .rev()
            .map(|parent| parent.to_string_lossy().into_owned())
            .filter(|parent| {
                Self::directories(version, parent, controllers).iter().all(|(_, dir)| !dir.exists())
            })
            .collect()
    }

    /// The controllers whose trees a container's group is made in.
    pub fn for_a_container() -> Vec<&'static str> {
        let version = Version::of_this_machine().unwrap_or(Version::V2);
        let present = WHERE_PRESENT.into_iter().filter(|c| has_controller(version, c));
        [CONTROLLERS.as_slice(), &FOR_A_CONTAINER].concat().into_iter().chain(present).collect()
    }

    /// A group made before, by another run, to remove it (dropping it does,
    /// with `parents_made`, the groups above it made for it). A name that
    /// would leave the tree(s) stands for no group.
    pub fn existing(version: Version, name: &str, parents_made: &[String]) -> Cgroup {
        let name = confine(name).unwrap_or_default();
        let every_tree = Self::for_a_container();
        let dirs = if name.is_empty() {
            Vec::new()
        } else {
            Self::directories(version, &name, &every_tree)
                .into_iter()
                .filter(|(_, dir)| dir.exists())
                .collect()
        };
        let parents_made = parents_made.iter().filter_map(|p| confine(p).ok()).collect();
        Cgroup { version, name, dirs, parents_made, owned: true }
    }

    /// Leaves the group in place when this value goes: a created container
    /// lives on in it, and `delete` removes it later.
    pub fn keep(mut self) {
        self.owned = false;
    }

    /// Moves process `pid` into the group, from outside.
    pub fn add(&self, pid: Pid) -> Result<()> {
        for dir in self.unique_dirs() {
            kernel::write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The group's directory in a controller's tree (v1), or its one
    /// directory (v2); None under v1 if it was not made in that tree.
    pub fn directory(&self, controller: &str) -> Option<&Path> {
        let dir = match self.version {
            Version::V1 => self.dirs.iter().find(|(c, _)| *c == controller).map(|(_, d)| d),
            Version::V2 => self.dirs.first().map(|(_, d)| d),
        };
        dir.map(PathBuf::as_path)
    }

    /// The path of a controller's file in this group.
    pub fn file(&self, controller: &str, file: &str) -> PathBuf {
        self.directory(controller).expect("the group has a directory for each controller it uses").join(file)
    }

    /// A file that holds one number.
    pub fn number(&self, controller: &str, file: &str) -> Option<u64> {
        std::fs::read_to_string(self.file(controller, file)).ok()?.trim().parse().ok()
    }

    /// A file of "key number" lines: the number of `key`.
    pub fn keyed(&self, controller: &str, file: &str, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.file(controller, file)).ok()?;
        text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Moves the calling process into the group ("0" means "me"); its
    /// children will be born in it.
    pub fn join_self(&self) -> Result<()> {
        for dir in self.unique_dirs() {
            kernel::write_file(&dir.join("cgroup.procs"), "0")?;
        }
        Ok(())
    }

    /// Freezes every process in the group (`frozen`), or thaws them, and
    /// waits until the kernel says it is done: a process in the middle of a
    /// system call stops only once it leaves it.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let (file, value) = match (self.version, frozen) {
            (Version::V1, true) => (self.file(FREEZER, "freezer.state"), "FROZEN"),
            (Version::V1, false) => (self.file(FREEZER, "freezer.state"), "THAWED"),
            (Version::V2, true) => (self.file("", "cgroup.freeze"), "1"),
            (Version::V2, false) => (self.file("", "cgroup.freeze"), "0"),
        };
        kernel::write_file(&file, value)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.is_frozen() != frozen {
            if std::time::Instant::now() > deadline {
                return Err(Error::new(format!(
                    "the group {} did not {} within 10 s",
                    self.name,
                    if frozen { "freeze" } else { "thaw" }
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Whether the group is frozen, all of it: v1 says FROZEN (FREEZING
    /// while on the way), v2 "frozen 1" in cgroup.events.
    pub fn is_frozen(&self) -> bool {
        match self.version {
            Version::V1 => {
                self.dirs.iter().any(|(c, _)| *c == FREEZER)
                    && std::fs::read_to_string(self.file(FREEZER, "freezer.state"))
                        .is_ok_and(|state| state.trim() == "FROZEN")
            }
            Version::V2 => self.keyed("", "cgroup.events", "frozen") == Some(1),
        }
    }

    /// Its directories, each once, in the order they were made.
    fn unique_dirs(&self) -> Vec<&PathBuf> {
        let mut dirs: Vec<&PathBuf> = Vec::new();
        for (_, dir) in &self.dirs {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }

    /// The processes in the group.
    pub fn members(&self) -> Vec<Pid> {
        let mut pids: Vec<Pid> = self
            .dirs
            .iter()
            .filter_map(|(_, dir)| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines().filter_map(|l| l.parse().ok()).map(Pid::from_raw).collect::<Vec<_>>()
            })
            .collect();
        pids.sort();
        pids.dedup();
        pids
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // A group with processes in it cannot be removed: end them first,
        // thawed, since under v1 a frozen process does not even die.
        if self.is_frozen() {
            let _ = self.freeze(false);
        }
        kernel::kill_until_none_left(|| self.members(), "left in the group");
        let dirs: Vec<PathBuf> = self.unique_dirs().into_iter().cloned().collect();
        self.dirs.clear();
        for dir in dirs.into_iter().rev() {
            if let Err(error) = kernel::rmdir(&dir) {
                eprintln!("warning: could not clean up: {error}");
            }
        }
        // The parents made for it, deepest first, in every tree they are in;
        // one that holds another group now is that group's, and stays.
        let every_tree = Self::for_a_container();
        for parent in self.parents_made.iter().rev() {
            let mut dirs: Vec<PathBuf> = Self::directories(self.version, parent, &every_tree)
                .into_iter()
                .map(|(_, dir)| dir)
                .collect();
            dirs.dedup();
            for dir in dirs.iter().filter(|dir| dir.exists() && is_empty_group(dir)) {
                let _ = kernel::rmdir(dir);
            }
        }
    }
}

/// Refuses to go on when a controller this level needs is not there.
/// Whether a group's directory holds no group below it.
fn is_empty_group(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| entries.flatten().all(|e| !e.path().is_dir()))
}

// ANCHOR: confine
/// A group's name as a path inside the cgroup tree, whatever it holds:
/// cleaned as if it began at the tree's root, so that ".." stops there, as
/// runc does (`../../tmp/x` is the group `tmp/x`). An input such as
/// linux.cgroupsPath must never name a directory outside the tree: root
/// writes cgroup.procs into whatever directory the name leads to.
pub fn confine(name: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(Error::new(format!(
            "the cgroup path {name:?} names the root of the cgroup tree, not a group in it: give a path \
             such as podlab/c1"
        )));
    }
    Ok(parts.join("/"))
}
// ANCHOR_END: confine

fn check_controllers(version: Version, controllers: &[&'static str]) -> Result<()> {
    let root = Path::new(CGROUP_ROOT);
    let missing: Vec<&str> = match version {
        Version::V1 => {
            controllers.iter().copied().filter(|c| !root.join(c).join("cgroup.procs").exists()).collect()
        }
        Version::V2 => {
            let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            ["memory", "pids", "cpu"]
                .into_iter()
                .filter(|c| !available.split_whitespace().any(|a| a == *c))
                .collect()
        }
    };
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "this machine's cgroup {} has no {} controller: boot with them (Debian's and Ubuntu's kernels have them)",
            version.name(),
            missing.join(", ")
        )))
    }
}

/// A new v1 cpuset group starts with no CPUs and no memory nodes, and the
/// kernel refuses it a process (ENOSPC) until it has some: it is given its
/// parent's, top down through the groups just made above it (as runc does).
fn inherit_cpus_and_memory_nodes(dir: &Path) -> Result<()> {
    let root = std::fs::canonicalize(Path::new(CGROUP_ROOT).join("cpuset")).unwrap_or_default();
    let mut chain: Vec<&Path> = dir.ancestors().take_while(|a| *a != root && a.starts_with(&root)).collect();
    chain.reverse();
    for group in chain {
        let parent = group.parent().unwrap_or(&root);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = std::fs::read_to_string(group.join(file)).unwrap_or_default();
            if own.trim().is_empty() {
                kernel::write_file_from(&group.join(file), &parent.join(file))?;
            }
        }
    }
    Ok(())
}

/// A name no other run uses: podlab- and six letters or digits.
pub fn unique_name() -> String {
    let mut bytes = [0u8; 6];
    let _ =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let letters: String = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("podlab-{letters}")
}

// ANCHOR: run
/// Runs `command` in `rootfs` as a member of `cgroup`: the child joins the
/// group first, so that everything it starts is counted and limited too.
pub fn run(rootfs: &Path, cgroup: &Cgroup, command: &[String]) -> Result<Exit> {
    let program = chroot::resolve(rootfs, &command[0])?;
    let env = chroot::environment();
    run_in_child(|| {
        cgroup.join_self()?;
        chroot::enter(rootfs)?;
        Err(chroot::exec(&program, command, &env))
    })
}
// ANCHOR_END: run

/// What the kernel's counters say about each limit, in words that do not
/// change from run to run.
pub fn report(limits: &Limits, usage: &Usage) -> Vec<String> {
    let counted = |n: Option<u64>| n.map_or("not counted by this kernel".to_string(), |n| n.to_string());
    let mut lines = Vec::new();
    if let Some(limit) = limits.memory {
        let peak = match usage.memory_peak {
            // Within 10% of it; in u128, as a limit may be as large as u64 goes.
            Some(peak) if u128::from(peak) * 10 >= u128::from(limit) * 9 => "usage peaked at the limit",
            Some(_) => "usage stayed below the limit",
            None => "peak usage not counted by this kernel",
        };
        lines.push(format!(
            "memory: limit {} MiB; {peak}; OOM kills: {}",
            limit >> 20,
            counted(usage.oom_kills)
        ));
    }
    if let Some(limit) = limits.pids {
        lines.push(format!("pids: limit {limit}; forks refused: {}", counted(usage.forks_refused)));
    }
    if let Some(cpu) = limits.cpu {
        let throttled = match usage.cpu_throttled {
            Some(0) => "no",
            Some(_) => "yes",
            None => "not counted by this kernel",
        };
        lines.push(format!(
            "cpu: limit {:.2} CPU; throttled: {throttled}",
            cpu.quota_us as f64 / cpu.period_us as f64
        ));
    }
    lines
}

/// The counters as numbers, with the wall-clock time the command took.
pub fn figures(usage: &Usage, wall: Duration) -> Vec<String> {
    let show = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    vec![
        format!("memory peak (bytes): {}", show(usage.memory_peak)),
        format!("OOM kills: {}", show(usage.oom_kills)),
        format!("forks refused: {}", show(usage.forks_refused)),
        format!("CPU time (ns): {}", show(usage.cpu_nanoseconds)),
        format!("wall-clock time (ns): {}", wall.as_nanos()),
        format!("periods throttled: {}", show(usage.cpu_throttled)),
    ]
}

/// The variant of transcripts that show cgroups on this machine: "v1" or "v2".
pub fn cgroup_version() -> Option<&'static str> {
    Version::of_this_machine().ok().map(Version::name)
}

/// Level 3 in the ladder, with the scenarios its tests and its lab check
/// run. Their transcripts differ between cgroup v1 and v2: each has its own
/// snapshot, `<name>.v1` and `<name>.v2`.
pub const LEVEL: Level = Level {
    number: 3,
    name: "cgroups",
    example: "03-cgroups",
    feature: "lab-03",
    lab_files: &["labs/03-cgroups/limits.rs"],
    workspace: None,
    variant: cgroup_version,
    scenarios: &[
        Scenario {
            name: "memory",
            args: &["--memory", "16M", "awk", "BEGIN { s = \"x\"; while (1) s = s s }"],
            shows: "over its memory limit, the shell is killed by the OOM killer",
            hint: "write_limits(): memory.limit_in_bytes and memory.memsw.limit_in_bytes (v1), memory.max and \
                   memory.swap.max = 0 (v2); read_usage(): oom_kill in memory.oom_control (v1), memory.events (v2)",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "pids",
            args: &["--pids", "4", "sh", "-c", "for i in 1 2 3 4 5; do sleep 1 & done; wait"],
            shows: "at its pids limit, fork fails inside; the host is fine",
            hint: "write_limits(): pids.max; read_usage(): max in pids.events",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "cpu",
            args: &["--cpu", "0.2", "sh", "-c", "timeout 1 sh -c 'while :; do :; done'; echo stopped"],
            shows: "a busy loop is throttled to its share of a CPU",
            hint: "write_limits(): cpu.cfs_period_us, then cpu.cfs_quota_us (v1), cpu.max \"quota period\" (v2); \
                   read_usage(): nr_throttled in cpu.stat",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "path-with-dots",
            args: &["--pids", "10", "--cgroup", "../../../etc/escape/leaf", "true"],
            shows: "a group's path is cleaned as if it began at the tree's root: \"..\" cannot leave the tree",
            hint: "the path is confined before anything is made, by the code around your pieces",
            then: &[],
            files: &[],
            alongside: None,
        },
        Scenario {
            name: "bad-size",
            args: &["--memory", "12Q", "true"],
            shows: "a limit that does not parse: one sentence, exit 2, nothing made",
            hint: "checked before anything is made",
            then: &[],
            files: &[],
            alongside: None,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_path_stays_in_the_tree_whatever_it_holds() {
        assert_eq!(confine("podlab/c1").unwrap(), "podlab/c1");
        assert_eq!(confine("/podlab//./c1/").unwrap(), "podlab/c1");
        assert_eq!(confine("../../../../tmp/x/y/leaf").unwrap(), "tmp/x/y/leaf");
        assert_eq!(confine("a/../../b").unwrap(), "b");
        assert!(confine("..").unwrap_err().to_string().contains("names the root of the cgroup tree"));
        assert!(confine("/").is_err());
    }
}
