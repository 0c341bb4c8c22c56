//! From a bundle's config.json to a plan: everything the runtime will do,
//! checked before anything is made, so that a bad config gets one sentence
//! and leaves nothing behind.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{PosixRlimitType, Spec};

use crate::cgroups::{CpuShare, Limits, Version};
use crate::error::{Error, Result};
use crate::namespaces::{IdMap, IdMaps, Mount};

use super::mount_options;

/// Symbolic links to make: (the link, inside the container; what it points at).
pub type Links = Vec<(PathBuf, PathBuf)>;

/// What a container will be, read off its config.json.
#[derive(Debug)]
pub struct Plan {
    /// What runs, and as whom.
    pub process: ProcessPlan,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    /// linux.rootfsPropagation, if given: what the copies of the host's
    /// mounts become before the rootfs is set up (runc's default, a slave
    /// of each, when not).
    pub rootfs_propagation: Option<MsFlags>,
    pub namespaces: CloneFlags,
    /// Existing namespaces to join (network, IPC, UTS, PID, cgroup), by the
    /// file that names each: how a pod's containers share its sandbox's.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// An existing user namespace to make the container's namespaces in.
    pub user_namespace: Option<PathBuf>,
    pub hostname: Option<String>,
    pub ids: Option<IdMaps>,
    pub mounts: Vec<Mount>,
    /// Symbolic links to make among the mounts, before the pivot.
    pub links: Links,
    /// Paths hidden from the container (/proc/kcore, ...).
    pub masked_paths: Vec<PathBuf>,
    /// Paths the container may read but not change (/proc/sys, ...).
    pub readonly_paths: Vec<PathBuf>,
    /// The hooks the runtime runs, in its own namespaces.
    pub hooks: Hooks,
    /// linux.cgroupsPath, if given: where in the cgroup tree(s) its group goes.
    pub cgroups_path: Option<String>,
    /// linux.resources: memory, pids and cpu, through level 3.
    pub limits: Limits,
    /// linux.resources.devices, with runc's defaults: which devices the
    /// container may make, read and write.
    pub devices: super::devices::DeviceRules,
    /// linux.devices: device files the container must have, made in its
    /// rootfs beside the default ones.
    pub device_nodes: Vec<DeviceNode>,
    /// The rest of linux.resources, as writes to the group's files.
    pub more_resources: Vec<super::resources::Write>,
    /// linux.resources.cpu.shares: the container's weight when CPUs are
    /// contended (what Kubernetes makes of a CPU request).
    pub cpu_shares: Option<u64>,
    /// How many descriptors from 3 on go on into the program (runc's
    /// --preserve-fds, given on the command line); none but stdio by default.
    pub preserved_fds: u32,
    /// linux.sysctl: kernel parameters of the container's own namespaces,
    /// as (file under /proc/sys, value).
    pub sysctl: Vec<(PathBuf, String)>,
    /// linux.personality: the execution domain (PER_LINUX, PER_LINUX32), by
    /// its number and name.
    pub personality: Option<(u64, &'static str)>,
    /// The config's annotations, which its state repeats.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The config.json this plan was read from, as it was: `create` keeps
    /// it, and later verbs read their part of it from there.
    pub config_text: String,
}

/// A device file linux.devices asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// Where, inside the container.
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: nix::sys::stat::SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// linux.devices, checked: absolute paths, below /dev or not, never "..",
/// numbers for devices; runc's defaults for what is left out (mode 0o666,
/// owned by root).
fn device_nodes(devices: Option<&Vec<oci_spec::runtime::LinuxDevice>>) -> Result<Vec<DeviceNode>> {
    use nix::sys::stat::SFlag;
    use oci_spec::runtime::LinuxDeviceType;
    let mut nodes = Vec::new();
    for device in devices.into_iter().flatten() {
        let path = device.path().clone();
        let escapes = path.components().any(|part| part == std::path::Component::ParentDir);
        if !path.is_absolute() || escapes || path.parent().is_none() {
            return Err(Error::new(format!(
                "the device path {} in linux.devices is not an absolute path without \"..\"",
                path.display()
            )));
        }
        let kind = match device.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::new(format!(
                    "the device {} in linux.devices has type \"a\", which only device rules take: give c, b, u or p",
                    path.display()
                )))
            }
        };
        nodes.push(DeviceNode {
            path,
            kind,
            major: device.major() as u64,
            minor: device.minor() as u64,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid().unwrap_or(0),
            gid: device.gid().unwrap_or(0),
        });
    }
    Ok(nodes)
}

/// The process a container runs (or `exec` runs in it), read off a
/// config's `process`.
#[derive(Debug)]
pub struct ProcessPlan {
    /// process.terminal: a pseudo-terminal for stdin, stdout and stderr,
    /// whose master end goes to the console socket.
    pub terminal: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// process.user.umask: the mask new files' modes pass through (runc's
    /// default, 0o022, when the config gives none).
    pub umask: u32,
    pub no_new_privileges: bool,
    pub rlimits: Vec<(PosixRlimitType, u64, u64)>,
    /// linux.seccomp, compiled: the system calls the program may make. The
    /// container's, for its first process and every one exec starts.
    pub seccomp: Option<super::seccomp::Filter>,
    /// process.apparmorProfile: the AppArmor profile the program runs under.
    pub apparmor_profile: Option<String>,
    /// process.oomScoreAdj: how much likelier (or, below 0, less likely)
    /// the OOM killer is to pick this process.
    pub oom_score_adj: Option<i32>,
    /// process.capabilities as bit sets, if the config has them.
    pub capabilities: Option<CapabilitySets>,
    /// process.consoleSize: the terminal's rows and columns, with a terminal.
    pub console_size: Option<(u16, u16)>,
    /// process.ioPriority: the I/O scheduling class (1 real time, 2 best
    /// effort, 3 idle) and the level in it (0 to 7).
    pub io_priority: Option<(u32, u32)>,
    /// What the config asks for that will not be done, told before create.
    pub warnings: Vec<String>,
}

/// The hooks of the lifecycle: most run in the runtime's namespaces, two
/// in the container's.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// prestart (deprecated, still run) and createRuntime: during create,
    /// once the namespaces exist, before the first process sets itself up.
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, its mounts made, before pivot_root:
    /// the path is the host's.
    pub create_container: Vec<Hook>,
    /// In the container, once start has come, just before the program: the
    /// path is the container's.
    pub start_container: Vec<Hook>,
    /// After start.
    pub poststart: Vec<Hook>,
    /// At delete, once the container has stopped.
    pub poststop: Vec<Hook>,
}

#[derive(Clone, Debug)]
pub struct Hook {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<std::time::Duration>,
}

fn hooks(spec: &Spec) -> Result<Hooks> {
    let Some(hooks) = spec.hooks() else { return Ok(Hooks::default()) };
    let convert = |list: &Option<Vec<oci_spec::runtime::Hook>>| -> Result<Vec<Hook>> {
        list.iter()
            .flatten()
            .map(|hook| {
                if !hook.path().is_absolute() {
                    return Err(Error::new(format!(
                        "the hook path {} is not absolute",
                        hook.path().display()
                    )));
                }
                let timeout = match hook.timeout() {
                    Some(seconds) if seconds <= 0 => {
                        return Err(Error::new(format!(
                            "the hook {} has a timeout of {seconds}: give at least 1 second",
                            hook.path().display()
                        )))
                    }
                    seconds => seconds.map(|s| std::time::Duration::from_secs(s as u64)),
                };
                Ok(Hook {
                    path: hook.path().clone(),
                    args: hook.args().clone().unwrap_or_else(|| vec![hook.path().display().to_string()]),
                    env: hook.env().clone().unwrap_or_default(),
                    timeout,
                })
            })
            .collect()
    };
    #[allow(deprecated)]
    let mut create_runtime = convert(hooks.prestart())?;
    create_runtime.extend(convert(hooks.create_runtime())?);
    Ok(Hooks {
        create_runtime,
        create_container: convert(hooks.create_container())?,
        start_container: convert(hooks.start_container())?,
        poststart: convert(hooks.poststart())?,
        poststop: convert(hooks.poststop())?,
    })
}

/// The five capability sets of a process, one bit per capability number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// A set as bits; a capability this kernel does not know is left out, as
/// runc leaves it out.
fn capability_bits(set: Option<&oci_spec::runtime::Capabilities>) -> Result<u64> {
    let last = crate::kernel::last_capability();
    let mut bits = 0u64;
    for capability in set.into_iter().flatten() {
        let name = serde_json::to_value(capability)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let number = crate::kernel::capability_number(&name)
            .ok_or_else(|| Error::new(format!("{name} is not a capability podlab knows")))?;
        if number <= last {
            bits |= 1 << number;
        }
    }
    Ok(bits)
}

/// Refuses a root.path that is, or passes through, a symbolic link, as
/// runc does: a link can lead anywhere, out of the bundle too, and may
/// lead elsewhere by the time the container is made. Only the part the
/// config names is looked at, from the bundle (or "/") down.
fn refuse_links_on_the_way(bundle: &Path, root: &Path) -> Result<()> {
    let mut at = if root.is_absolute() { PathBuf::from("/") } else { bundle.to_path_buf() };
    for part in root.components() {
        match part {
            std::path::Component::Normal(name) => at.push(name),
            std::path::Component::ParentDir => {
                at.pop();
                continue;
            }
            _ => continue,
        }
        if std::fs::symlink_metadata(&at).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(Error::new(format!(
                "the root path {} is a symbolic link (to {}): give the directory itself in root.path, as runc \
                 requires",
                at.display(),
                std::fs::read_link(&at).map_or("?".into(), |to| to.display().to_string())
            )));
        }
    }
    Ok(())
}

/// Reads and checks `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Plan> {
    let file = bundle.join("config.json");
    if !file.exists() {
        return Err(Error::new(format!(
            "there is no config.json in {}: make one with `spec`",
            bundle.display()
        )));
    }
    let text = read_text(&file, "runtime config")?;
    let spec: Spec = parse_json(&text, &file, "runtime config")?;
    Ok(Plan { config_text: text, ..plan(&spec, bundle)? })
}

/// The hooks of a container's config as `create` kept it (the spec: what
/// is done to config.json after create must not change the container).
pub fn kept_hooks(file: &Path) -> Result<Hooks> {
    hooks(&read_json(file, "runtime config")?)
}

/// The process of a container's config as `create` kept it, with its
/// seccomp filter: what `exec` starts from.
pub fn kept_process(file: &Path) -> Result<ProcessPlan> {
    let spec: Spec = read_json(file, "runtime config")?;
    let process =
        spec.process().as_ref().ok_or_else(|| Error::new("config.json has no process: say what to run"))?;
    let mut process = process_plan(process)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    process.seccomp = seccomp.map(super::seccomp::compile).transpose()?;
    Ok(process)
}

/// A JSON file of the specification's ("-": standard input), parsed;
/// serde's sentence says what is wrong and where ("missing field `cwd` at
/// line 4 column 3").
fn read_json<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> Result<T> {
    parse_json(&read_text(file, what)?, file, what)
}

fn read_text(file: &Path, what: &str) -> Result<String> {
    if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(|e| Error::new(format!("cannot read the {what} {}: {e}", file.display())))
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, file: &Path, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::new(format!("{} is not a valid {what}: {e}", file.display())))
}

/// Turns a parsed config into a plan, refusing what it cannot do.
pub fn plan(spec: &Spec, bundle: &Path) -> Result<Plan> {
    let process =
        spec.process().as_ref().ok_or_else(|| Error::new("config.json has no process: say what to run"))?;
    let mut process = process_plan(process)?;
    let linux = spec.linux().as_ref();
    process.seccomp = linux.and_then(|l| l.seccomp().as_ref()).map(super::seccomp::compile).transpose()?;
    let root = spec.root().as_ref().ok_or_else(|| Error::new("config.json has no root: name the rootfs"))?;
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    if !rootfs.is_dir() {
        return Err(Error::new(format!(
            "the root path {} is not a directory: fix root.path in config.json, or put the rootfs there",
            rootfs.display()
        )));
    }
    refuse_links_on_the_way(bundle, root.path())?;

    if linux.and_then(|l| l.mount_label().as_ref()).is_some_and(|label| !label.is_empty()) {
        return Err(Error::new(
            "linux.mountLabel is set, and podlab does not apply SELinux labels: leave it out",
        ));
    }
    let mut namespaces = CloneFlags::empty();
    let mut join = Vec::new();
    let mut user_namespace = None;
    let mut listed = Vec::new();
    for namespace in linux.and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
        if listed.contains(&namespace.typ()) {
            return Err(Error::new(format!(
                "linux.namespaces lists the {} namespace twice: keep one",
                namespace.typ()
            )));
        }
        listed.push(namespace.typ());
        // clone(2) cannot make a time namespace: its flag is where clone
        // takes the exit signal (only unshare(2) and clone3(2) can).
        if namespace.typ() == oci_spec::runtime::LinuxNamespaceType::Time {
            return Err(Error::new("a time namespace is not supported: leave it out of linux.namespaces"));
        }
        let kind = CloneFlags::from_bits_truncate(namespace.typ() as i32);
        match namespace.path() {
            None => namespaces |= kind,
            Some(path) if !path.exists() => {
                return Err(Error::new(format!(
                    "the {} namespace to join, {}, does not exist",
                    namespace.typ(),
                    path.display()
                )));
            }
            Some(path) if kind == CloneFlags::CLONE_NEWUSER => user_namespace = Some(path.clone()),
            Some(path) => join.push((kind, path.clone())),
        }
    }
    let has = |kind| namespaces.contains(kind);
    // A namespace of the container's own, new or joined by path. A mount
    // namespace joined is set up as a new one would be, as runc does: its
    // root becomes the rootfs for every process in it.
    let owns = |kind| has(kind) || join.iter().any(|(joined, _)| *joined == kind);
    let ids =
        id_map(linux.and_then(|l| l.uid_mappings().as_ref()), linux.and_then(|l| l.gid_mappings().as_ref()))?;
    // Mappings for a user namespace joined too, as runc wants them: they
    // say who the container's root is out here.
    if (has(CloneFlags::CLONE_NEWUSER) || user_namespace.is_some()) != ids.is_some() {
        return Err(Error::new(
            "a user namespace needs uid and gid mappings, and mappings need a user namespace",
        ));
    }
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    if hostname.is_some() && !owns(CloneFlags::CLONE_NEWUTS) {
        return Err(Error::new("config.json sets a hostname but asks for no uts namespace of its own: add one, or leave the hostname out"));
    }
    if let Some(name) = &hostname {
        crate::namespaces::check_hostname(name)?;
    }
    crate::namespaces::check_kernel(namespaces)?;

    let mut mounts = Vec::new();
    for mount in spec.mounts().iter().flatten() {
        if !owns(CloneFlags::CLONE_NEWNS) {
            return Err(Error::new("config.json lists mounts but asks for no mount namespace: add one"));
        }
        mounts.extend(translate_mount(mount, bundle)?);
    }

    let rootfs_propagation =
        match linux.and_then(|l| l.rootfs_propagation().as_deref()).filter(|p| !p.is_empty()) {
            None => None,
            Some(word) => match mount_options(&[word.to_string()]) {
                (_, propagation, None) if !propagation.is_empty() => Some(propagation),
                _ => {
                    return Err(Error::new(format!(
                    "linux.rootfsPropagation {word:?} is not one of private, slave, shared, unbindable (or \
                     their recursive rprivate, rslave, rshared, runbindable)"
                )))
                }
            },
        };
    let personality = match linux.and_then(|l| l.personality().as_ref()) {
        None => None,
        Some(personality) if personality.flags().as_ref().is_some_and(|flags| !flags.is_empty()) => {
            return Err(Error::new(
                "linux.personality.flags are set, and podlab applies the domain only: leave them out",
            ))
        }
        Some(personality) => Some(match personality.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => (0x0000, "PER_LINUX"),
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => (0x0008, "PER_LINUX32"),
        }),
    };
    if let Some(linux) = linux {
        // Newer parts of the specification that podlab does not carry out:
        // refused, rather than the container run without them.
        let unapplied = [
            ("linux.intelRdt", linux.intel_rdt().is_some()),
            ("linux.memoryPolicy", linux.memory_policy().is_some()),
            ("linux.netDevices", linux.net_devices().as_ref().is_some_and(|d| !d.is_empty())),
            ("linux.timeOffsets", linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())),
        ];
        if let Some((name, _)) = unapplied.iter().find(|(_, set)| *set) {
            return Err(Error::new(format!("{name} is set, and podlab does not apply it: leave it out")));
        }
    }
    let device_nodes = device_nodes(linux.and_then(|l| l.devices().as_ref()))?;
    if !device_nodes.is_empty() && !owns(CloneFlags::CLONE_NEWNS) {
        return Err(Error::new("config.json lists linux.devices but asks for no mount namespace: add one"));
    }

    // The first process reaches its FIFO through /proc/self/fd once its
    // root is the container's (as runc's does, which fails without it too).
    let proc_mounted =
        mounts.iter().any(|m| m.target == Path::new("/proc") && m.fstype.as_deref() == Some("proc"));
    if !proc_mounted {
        return Err(Error::new(
            "config.json mounts no proc on /proc, which the container's first process needs: add \
             {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"} to its mounts",
        ));
    }
    let paths = |list: Option<&Vec<String>>| -> Result<Vec<PathBuf>> {
        let paths: Vec<PathBuf> = list.into_iter().flatten().map(PathBuf::from).collect();
        match paths.iter().find(|p| !p.is_absolute()) {
            Some(relative) => Err(Error::new(format!(
                "{} in maskedPaths or readonlyPaths is not absolute",
                relative.display()
            ))),
            None => Ok(paths),
        }
    };
    let masked_paths = paths(linux.and_then(|l| l.masked_paths().as_ref()))?;
    let readonly_paths = paths(linux.and_then(|l| l.readonly_paths().as_ref()))?;
    let protects_paths = !masked_paths.is_empty() || !readonly_paths.is_empty();
    if protects_paths && !owns(CloneFlags::CLONE_NEWNS) {
        return Err(Error::new(
            "config.json masks or protects paths but asks for no mount namespace: add one",
        ));
    }
    let cgroups_path =
        linux.and_then(|l| l.cgroups_path().as_ref()).map(|p| p.to_string_lossy().into_owned());
    if let Some(path) = cgroups_path.as_deref().filter(|p| p.contains(':')) {
        return Err(Error::new(format!(
            "linux.cgroupsPath {path:?} is in systemd's slice:prefix:name form: give a path, such as /podlab/c1"
        )));
    }
    let limits = limits(linux.and_then(|l| l.resources().as_ref()))?;
    let more_resources =
        super::resources::writes(linux.and_then(|l| l.resources().as_ref()), Version::of_this_machine()?)?;
    if let Some(unapplied) = unapplied_resources(linux.and_then(|l| l.resources().as_ref())) {
        process.warnings.push(unapplied);
    }
    let sysctl = sysctl(linux.and_then(|l| l.sysctl().as_ref()), namespaces, &join)?;
    Ok(Plan {
        process,
        join,
        user_namespace,
        hooks: hooks(spec)?,
        cgroups_path,
        limits,
        cpu_shares: cpu_shares(linux.and_then(|l| l.resources().as_ref())),
        devices: super::devices::rules(
            linux
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.devices().as_deref())
                .unwrap_or_default(),
        )?,
        device_nodes,
        more_resources,
        masked_paths,
        readonly_paths,
        rootfs,
        rootfs_propagation,
        readonly_root: root.readonly().unwrap_or(false),
        namespaces,
        hostname,
        ids,
        mounts,
        links: Vec::new(),
        preserved_fds: 0,
        sysctl,
        annotations: spec.annotations().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
        personality,
        config_text: String::new(),
    })
}

/// linux.sysctl, checked as runc checks it: only parameters that belong to
/// a namespace the container has of its own (or joins), since the others
/// are the host's and would change it for everyone.
fn sysctl(
    settings: Option<&std::collections::HashMap<String, String>>,
    namespaces: CloneFlags,
    join: &[(CloneFlags, PathBuf)],
) -> Result<Vec<(PathBuf, String)>> {
    let owns = |kind: CloneFlags| namespaces.contains(kind) || join.iter().any(|(joined, _)| *joined == kind);
    let mut files = Vec::new();
    for (key, value) in settings.into_iter().flatten() {
        let parts: Vec<&str> = key.split(['.', '/']).collect();
        if parts.iter().any(|part| part.is_empty() || *part == "..") {
            return Err(Error::new(format!(
                "sysctl {key:?} is not a parameter name such as net.ipv4.ip_forward"
            )));
        }
        const IPC: [&str; 8] = [
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
            "kernel.shmall",
            "kernel.shmmax",
            "kernel.shmmni",
            "kernel.shm_rmid_forced",
        ];
        let namespace = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            Some((CloneFlags::CLONE_NEWIPC, "ipc"))
        } else if key.starts_with("net.") {
            Some((CloneFlags::CLONE_NEWNET, "network"))
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            Some((CloneFlags::CLONE_NEWUTS, "uts"))
        } else {
            None
        };
        match namespace {
            Some((kind, _)) if owns(kind) => {}
            Some((_, name)) => {
                return Err(Error::new(format!(
                    "sysctl {key} belongs to the {name} namespace, and the container has none of its own: add one, or leave it out"
                )))
            }
            None => {
                return Err(Error::new(format!(
                    "sysctl {key} is not in a namespace of the container's: it would change the host; leave it out"
                )))
            }
        }
        files.push((Path::new("/proc/sys").join(parts.join("/")), value.clone()));
    }
    files.sort();
    Ok(files)
}

/// The process part of a config (or of `exec --process`'s file), checked.
pub fn process_plan(process: &oci_spec::runtime::Process) -> Result<ProcessPlan> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::new("the process's args are empty: say what to run"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::new(format!("the process's cwd {} is not absolute", process.cwd().display())));
    }
    let user = process.user();
    let mut rlimits = Vec::new();
    for rlimit in process.rlimits().iter().flatten() {
        if rlimit.soft() > rlimit.hard() {
            return Err(Error::new(format!("the soft {} is above its hard limit", rlimit.typ())));
        }
        rlimits.push((rlimit.typ(), rlimit.soft(), rlimit.hard()));
    }
    let mut warnings = Vec::new();
    let capabilities = match process.capabilities() {
        None => None,
        Some(caps) => {
            let mut sets = CapabilitySets {
                bounding: capability_bits(caps.bounding().as_ref())?,
                effective: capability_bits(caps.effective().as_ref())?,
                permitted: capability_bits(caps.permitted().as_ref())?,
                inheritable: capability_bits(caps.inheritable().as_ref())?,
                ambient: capability_bits(caps.ambient().as_ref())?,
            };
            // The kernel raises an ambient capability only if it is also
            // permitted and inheritable; runc warns about others and goes on.
            let allowed = sets.ambient & sets.permitted & sets.inheritable;
            if allowed != sets.ambient {
                warnings.push(
                    "ambient capabilities that are not also permitted and inheritable are left out"
                        .to_string(),
                );
                sets.ambient = allowed;
            }
            Some(sets)
        }
    };
    let console_size = process.console_size().as_ref().map(|size| {
        let clamp = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
        (clamp(size.height()), clamp(size.width()))
    });
    let io_priority = match process.io_priority() {
        None => None,
        Some(io) => {
            use oci_spec::runtime::IOPriorityClass;
            let class = match io.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            let level = u32::try_from(io.priority()).ok().filter(|level| *level <= 7).ok_or_else(|| {
                Error::new(format!(
                    "process.ioPriority.priority {} is not a level from 0 to 7",
                    io.priority()
                ))
            })?;
            Some((class, level))
        }
    };
    // Newer parts of the specification that podlab does not carry out:
    // refused, rather than the process run without them.
    if process.scheduler().is_some() {
        return Err(Error::new("process.scheduler is set, and podlab does not apply it: leave it out"));
    }
    if process.exec_cpu_affinity().is_some() {
        return Err(Error::new("process.execCPUAffinity is set, and podlab does not apply it: leave it out"));
    }
    Ok(ProcessPlan {
        warnings,
        capabilities,
        console_size,
        io_priority,
        terminal: process.terminal().unwrap_or(false),
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        rlimits,
        oom_score_adj: process.oom_score_adj(),
        apparmor_profile: apparmor_profile(process)?,
        seccomp: None,
    })
}

/// process.apparmorProfile, if AppArmor can apply it here. runc fails on a
/// machine without AppArmor too, but only once the container is half made.
fn apparmor_profile(process: &oci_spec::runtime::Process) -> Result<Option<String>> {
    if process.selinux_label().as_ref().is_some_and(|label| !label.is_empty()) {
        return Err(Error::new(
            "process.selinuxLabel is set, and podlab does not apply SELinux labels: leave it out",
        ));
    }
    let Some(profile) = process.apparmor_profile().clone().filter(|p| !p.is_empty()) else { return Ok(None) };
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|text| text.trim() == "Y");
    if !enabled {
        return Err(Error::new(format!(
            "process.apparmorProfile is {profile:?}, but AppArmor is not enabled on this machine: leave it out"
        )));
    }
    Ok(Some(profile))
}

impl ProcessPlan {
    /// This process, under the seccomp filter of `container`'s process.
    pub fn with_seccomp_of(mut self, container: ProcessPlan) -> ProcessPlan {
        self.seccomp = container.seccomp;
        self
    }
}

/// A process.json, as `exec --process` takes it.
pub fn load_process(file: &Path) -> Result<ProcessPlan> {
    process_plan(&read_json(file, "process")?)
}

/// A linux.resources object on its own, as `update --resources` takes it
/// (containerd passes it on standard input, as "-").
pub fn load_resources(file: &Path) -> Result<(Limits, Option<u64>, Vec<super::resources::Write>)> {
    let resources = read_json(file, "resources")?;
    let more = super::resources::writes(Some(&resources), Version::of_this_machine()?)?;
    Ok((limits(Some(&resources))?, cpu_shares(Some(&resources)), more))
}

/// linux.resources.cpu.shares, if set (0 is "not set", as in runc).
fn cpu_shares(resources: Option<&oci_spec::runtime::LinuxResources>) -> Option<u64> {
    resources?.cpu().as_ref()?.shares().filter(|shares| *shares > 0)
}

/// The limits level 3 knows how to write, from linux.resources; a negative
/// or zero limit means none, as in runc.
fn limits(resources: Option<&oci_spec::runtime::LinuxResources>) -> Result<Limits> {
    let Some(resources) = resources else { return Ok(Limits::default()) };
    let positive = |n: i64| u64::try_from(n).ok().filter(|n| *n > 0);
    let memory = resources.memory().as_ref().and_then(|m| m.limit()).and_then(positive);
    let pids = resources.pids().as_ref().and_then(|p| positive(p.limit()));
    let cpu = match resources.cpu().as_ref().map(|c| (c.quota().and_then(positive), c.period())) {
        Some((Some(quota_us), period)) => {
            let period_us = period.unwrap_or(100_000);
            if quota_us < 1000 || !(1000..=1_000_000).contains(&period_us) {
                return Err(Error::new(
                    "linux.resources.cpu: the quota must be at least 1000 us, the period 1000 to 1000000 us",
                ));
            }
            Some(CpuShare { quota_us, period_us })
        }
        _ => None,
    };
    Ok(Limits { memory, pids, cpu })
}

/// The linux.resources a config sets that level 3 does not apply, said in
/// one warning: a limit left out must not pass in silence.
fn unapplied_resources(resources: Option<&oci_spec::runtime::LinuxResources>) -> Option<String> {
    const BY_LEVEL_3: [&str; 5] = ["memory.limit", "pids.limit", "cpu.quota", "cpu.period", "devices"];
    fn leaves(value: &serde_json::Value, path: String, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Object(members) => {
                for (name, member) in members {
                    let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    leaves(member, path, found);
                }
            }
            serde_json::Value::Array(items) if items.is_empty() => {}
            _ => found.push(path),
        }
    }
    let mut found = Vec::new();
    leaves(&serde_json::to_value(resources?).ok()?, String::new(), &mut found);
    let applied: Vec<&str> = BY_LEVEL_3.iter().chain(&super::resources::APPLIED).copied().collect();
    // A list or a map (hugepageLimits, unified) is named by its field.
    let is_applied = |path: &String| applied.iter().any(|a| path == a || path.starts_with(&format!("{a}.")));
    found.retain(|path| !is_applied(path));
    (!found.is_empty()).then(|| {
        format!("linux.resources: {} not applied (podlab applies {})", found.join(", "), applied.join(", "))
    })
}

/// uid_mappings and gid_mappings: each as many lines as the config gives
/// (the kernel takes up to 340), and each may differ from the other.
fn id_map(
    uids: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>,
    gids: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>,
) -> Result<Option<IdMaps>> {
    let to_maps = |list: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>, what: &str| -> Result<Vec<IdMap>> {
        let maps: Vec<IdMap> = list
            .into_iter()
            .flatten()
            .map(|m| IdMap { inside: m.container_id(), outside: m.host_id(), count: m.size() })
            .collect();
        if let Some(empty) = maps.iter().find(|map| map.count == 0) {
            return Err(Error::new(format!(
                "a line of {what} maps no ids (size 0, from {} inside): give a size of at least 1",
                empty.inside
            )));
        }
        if maps.len() > 340 {
            return Err(Error::new(format!("{what} has {} lines; the kernel takes at most 340", maps.len())));
        }
        Ok(maps)
    };
    let (uids, gids) = (to_maps(uids, "uidMappings")?, to_maps(gids, "gidMappings")?);
    match (uids.is_empty(), gids.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(IdMaps { uids, gids })),
        _ => {
            Err(Error::new("a user namespace needs both uid and gid mappings: give the one that is missing"))
        }
    }
}

/// The mount(2) calls one config mount takes: the mount itself, then a
/// read-only remount for a read-only bind, and a propagation change.
fn translate_mount(mount: &oci_spec::runtime::Mount, bundle: &Path) -> Result<Vec<Mount>> {
    let target = mount.destination().clone();
    if !target.is_absolute() {
        return Err(Error::new(format!(
            "the mount destination {} is not an absolute path",
            target.display()
        )));
    }
    let (mut flags, propagation, data) = mount_options(mount.options().as_deref().unwrap_or(&[]));
    let mut fstype = mount.typ().clone().filter(|t| !t.is_empty());
    let mut source = mount.source().clone();
    if fstype.as_deref() == Some("bind") {
        flags |= MsFlags::MS_BIND;
    }
    if flags.contains(MsFlags::MS_BIND) {
        fstype = None;
        let path = source
            .ok_or_else(|| Error::new(format!("the bind mount on {} has no source", target.display())))?;
        let path = if path.is_absolute() { path } else { bundle.join(path) };
        if !path.exists() {
            return Err(Error::new(format!("the source {} of a bind mount does not exist", path.display())));
        }
        source = Some(path);
    }
    if fstype.as_deref() == Some("cgroup") && Version::of_this_machine()? == Version::V2 {
        // The cgroup tree, as the container should see it: under v2 one
        // mount; under v1 a tree of them, made by cgroup_tree_v1 once the
        // container's group is known.
        fstype = Some("cgroup2".to_string());
    }
    let mut calls = vec![Mount { source, target: target.clone(), fstype, flags, data }];
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        // A bind mount takes "read-only" only from a remount.
        calls.push(Mount {
            source: None,
            target: target.clone(),
            fstype: None,
            flags: flags | MsFlags::MS_REMOUNT,
            data: None,
        });
    }
    if !propagation.is_empty() {
        calls.push(Mount { source: None, target, fstype: None, flags: propagation, data: None });
    }
    Ok(calls)
}

/// Under cgroup v1, a config's "cgroup" mount is a tree, as runc makes it:
/// a tmpfs, and in it one mount for each of the host's hierarchies (a
/// fresh one where the container has a cgroup namespace of its own, which
/// shows it its own part; else a bind mount of the directory it is in),
/// with the host's links between them ("cpu" -> "cpu,cpuacct"). `mounts`
/// comes back with each such mount so expanded.
pub fn cgroup_tree_v1(mounts: &[Mount], group: &str, own_namespace: bool) -> Result<(Vec<Mount>, Links)> {
    let root = Path::new(crate::cgroups::CGROUP_ROOT);
    let (mut expanded, mut links) = (Vec::new(), Vec::new());
    for mount in mounts {
        if mount.fstype.as_deref() != Some("cgroup") {
            expanded.push(mount.clone());
            continue;
        }
        let tmpfs_flags = mount.flags & !MsFlags::MS_RDONLY;
        expanded.push(Mount {
            source: Some(PathBuf::from("tmpfs")),
            target: mount.target.clone(),
            fstype: Some("tmpfs".to_string()),
            flags: tmpfs_flags,
            data: Some("mode=755".to_string()),
        });
        for hierarchy in v1_hierarchies()? {
            let target = mount.target.join(&hierarchy.name);
            if own_namespace {
                expanded.push(Mount {
                    source: Some(PathBuf::from("cgroup")),
                    target,
                    fstype: Some("cgroup".to_string()),
                    flags: mount.flags,
                    data: Some(hierarchy.options.join(",")),
                });
                continue;
            }
            let ours = hierarchy
                .options
                .iter()
                .any(|o| ["memory", "pids", "cpu", "cpuacct", "freezer", "devices"].contains(&o.as_str()));
            let inside = if ours { group.to_string() } else { hierarchy.our_path.clone() };
            let source = root.join(&hierarchy.name).join(inside.trim_start_matches('/'));
            let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
            expanded.push(Mount {
                source: Some(source),
                target: target.clone(),
                fstype: None,
                flags: bind,
                data: None,
            });
            if mount.flags.contains(MsFlags::MS_RDONLY) {
                let read_only = bind | MsFlags::MS_REMOUNT | (mount.flags & !MsFlags::MS_REC);
                expanded.push(Mount { source: None, target, fstype: None, flags: read_only, data: None });
            }
        }
        for entry in
            std::fs::read_dir(root).map_err(|e| Error::new(format!("cannot list {}: {e}", root.display())))?
        {
            let entry = entry.map_err(|e| Error::new(format!("cannot list {}: {e}", root.display())))?;
            if let Ok(points_at) = std::fs::read_link(entry.path()) {
                links.push((mount.target.join(entry.file_name()), points_at));
            }
        }
    }
    Ok((expanded, links))
}

/// One of the host's v1 hierarchies under /sys/fs/cgroup.
struct Hierarchy {
    /// Its directory there ("memory", "cpu,cpuacct", "systemd").
    name: String,
    /// Its controllers, as mount(2) takes them ("cpu", "cpuacct", "name=systemd").
    options: Vec<String>,
    /// Where this process is in it, as /proc/self/cgroup says.
    our_path: String,
}

/// The host's v1 hierarchies, from /proc/self/mountinfo, with where this
/// process is in each, from /proc/self/cgroup.
fn v1_hierarchies() -> Result<Vec<Hierarchy>> {
    let read = |file: &str| {
        std::fs::read_to_string(file).map_err(|e| Error::new(format!("cannot read {file}: {e}")))
    };
    let memberships = read("/proc/self/cgroup")?;
    let mut hierarchies = Vec::new();
    for line in read("/proc/self/mountinfo")?.lines() {
        // "36 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,... - cgroup cgroup rw,cpu,cpuacct"
        let Some((before, after)) = line.split_once(" - ") else { continue };
        let mut after = after.split_whitespace();
        let (Some("cgroup"), Some(_), Some(super_options)) = (after.next(), after.next(), after.next())
        else {
            continue;
        };
        let Some(name) =
            before.split_whitespace().nth(4).and_then(|point| point.strip_prefix("/sys/fs/cgroup/"))
        else {
            continue;
        };
        // The controllers, and a named hierarchy's name=...; not the
        // options that are not controllers.
        const NOT_CONTROLLERS: [&str; 4] = ["rw", "ro", "xattr", "clone_children"];
        let options: Vec<String> = super_options
            .split(',')
            .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
            .map(String::from)
            .collect();
        // "4:memory:/user.slice": the line whose controllers are this hierarchy's.
        let our_path = memberships
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                Some((fields.nth(1)?, fields.next()?))
            })
            .find(|(controllers, _)| {
                !controllers.is_empty() && controllers.split(',').all(|c| options.iter().any(|o| o == c))
            })
            .map_or_else(|| "/".to_string(), |(_, path)| path.to_string());
        hierarchies.push(Hierarchy { name: name.to_string(), options, our_path });
    }
    Ok(hierarchies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(options: &[&str]) -> Vec<String> {
        options.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let (flags, propagation, data) =
            mount_options(&strings(&["nosuid", "strictatime", "mode=755", "size=65536k", "rprivate"]));
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(data.as_deref(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn a_later_option_undoes_an_earlier_one() {
        let (flags, _, data) = mount_options(&strings(&["ro", "nodev", "rw"]));
        assert_eq!(flags, MsFlags::MS_NODEV);
        assert_eq!(data, None);
    }

    #[test]
    fn a_read_only_bind_takes_a_remount() {
        let mount = oci_spec::runtime::MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source("/etc")
            .options(strings(&["rbind", "ro"]))
            .build()
            .unwrap();
        let calls = translate_mount(&mount, Path::new("/")).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].fstype, None);
        assert!(calls[1].flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY));
    }
}
