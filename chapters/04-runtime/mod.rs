//! Level 4: an OCI runtime.
//!
//! The runtime specification says what a container is on disk (a bundle: a
//! rootfs and a config.json) and what a runtime does with it: create, start,
//! state, kill, delete. Levels 1 to 3 did the work; this level puts it
//! behind runc's command line, keeps each container's state under a root
//! directory so that separate invocations cooperate, and splits starting
//! in two: `create` sets everything up and leaves the container's first
//! process waiting; `start` lets it run the user's program.

mod config;
mod devices;
mod resources;
mod seccomp;
// The lab swaps the reference `handshake` for the student's file (`--features lab-04`).
#[cfg_attr(not(feature = "lab-04"), path = "handshake.rs")]
#[cfg_attr(feature = "lab-04", path = "../../labs/04-runtime/handshake.rs")]
mod handshake;

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use config::{load_process, load_resources, Plan, ProcessPlan};
use handshake::{mount_options, release, wait_for_start};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::SFlag;
use nix::unistd::Pid;
use oci_spec::runtime::PosixRlimitType;
pub use resources::Write as ResourceWrite;
use serde::{Deserialize, Serialize};

use crate::cgroups::{write_limits, Cgroup, Limits, Version};
use crate::child::{spawn_in_new_namespaces, Exit};
use crate::error::{Error, Result};
use crate::namespaces::map_ids;
use crate::scenario::{Level, Scenario, Workspace};
use crate::{chroot, kernel, namespaces};

/// Where containers' state lives unless --root says otherwise.
pub const DEFAULT_ROOT: &str = "/run/podlab-runtime";
/// The version of the runtime specification this level follows.
pub const OCI_VERSION: &str = "1.0.2";

/// The states of the specification's lifecycle that a container can be
/// seen in ("creating" lasts only while `create` runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Only while `create` runs; what its hooks are told.
    Creating,
    Created,
    Running,
    /// Running, but frozen by `pause` until `resume` (runc's addition).
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers of a container, in `<root>/<id>/state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    id: String,
    pid: i32,
    bundle: PathBuf,
    rootfs: PathBuf,
    created: String,
    /// When the process started, in clock ticks since boot: with the pid,
    /// it tells our process from a later one that got the same pid.
    start_time: u64,
    /// The container's cgroup, by its name (path) in the tree(s).
    #[serde(default)]
    cgroup: Option<String>,
    /// The groups above it that were made for it, to remove with it.
    #[serde(default)]
    cgroup_parents: Vec<String>,
    /// The `create` that is making it, while `pid` is still 0: with its
    /// start time, it tells a container being made from one whose maker
    /// died half-way (then it is stopped, and delete removes what was made).
    #[serde(default)]
    creator: i32,
    #[serde(default)]
    creator_start_time: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The state of a container as the specification defines it, with runc's
/// additions (rootfs, created, owner), as `state` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Writes a default config.json into `bundle`, as `runc spec` does: sh
/// from ./rootfs, read-only, in all but a user namespace; or `command`
/// instead of sh, if given.
pub fn write_default_spec(bundle: &Path, command: &[String]) -> Result<()> {
    let file = bundle.join("config.json");
    if file.exists() {
        return Err(Error::new(format!("{} exists already: remove it first", file.display())));
    }
    let json = serde_json::to_string_pretty(&default_spec(command)).expect("a spec is plain data");
    kernel::write_file(&file, &(json + "\n"))
}

/// runc's default config (what `runc spec` writes), running `command` if
/// one is given: a later level fills in the rest (level 5, from an image).
pub fn default_spec(command: &[String]) -> oci_spec::runtime::Spec {
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_hostname(Some("podlab".to_string()));
    if let (false, Some(process)) = (command.is_empty(), spec.process_mut()) {
        process.set_args(Some(command.to_vec()));
    }
    spec
}

/// What this runtime supports, as `features` prints it (the runtime
/// specification's features.md): what containerd asks before it makes a
/// config.
pub fn features() -> oci_spec::runtime::Features {
    use oci_spec::runtime::{Features, LinuxFeature, LinuxNamespaceType as Kind};
    let mut cgroup = oci_spec::runtime::Cgroup::default();
    cgroup.set_v1(Some(true)).set_v2(Some(true)).set_systemd(Some(false)).set_systemd_user(Some(false));
    use oci_spec::runtime::{Arch, LinuxSeccompAction as Action};
    let mut seccomp = oci_spec::runtime::Seccomp::default();
    seccomp
        .set_enabled(Some(true))
        .set_actions(Some(vec![
            Action::ScmpActKill,
            Action::ScmpActKillThread,
            Action::ScmpActKillProcess,
            Action::ScmpActTrap,
            Action::ScmpActErrno,
            Action::ScmpActTrace,
            Action::ScmpActLog,
            Action::ScmpActAllow,
        ]))
        .set_operators(Some(
            [
                "SCMP_CMP_NE",
                "SCMP_CMP_LT",
                "SCMP_CMP_LE",
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_MASKED_EQ",
            ]
            .map(String::from)
            .to_vec(),
        ))
        .set_archs(Some(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]));
    let mut linux = LinuxFeature::default();
    linux
        .set_seccomp(Some(seccomp))
        .set_namespaces(Some(vec![
            Kind::Cgroup,
            Kind::Ipc,
            Kind::Mount,
            Kind::Network,
            Kind::Pid,
            Kind::User,
            Kind::Uts,
        ]))
        .set_capabilities(Some(kernel::known_capabilities().into_iter().map(|(_, name)| name).collect()))
        .set_cgroup(Some(cgroup));
    let hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
    let mut features = Features::default();
    features
        .set_oci_version_min("1.0.0".to_string())
        .set_oci_version_max(OCI_VERSION.to_string())
        .set_hooks(Some(hooks.iter().map(|h| h.to_string()).collect()))
        .set_linux(Some(linux));
    features
}

/// A runtime keeping its containers under `root`.
pub struct Runtime {
    root: PathBuf,
    /// Descriptors from 3 on that the caller passes on to the program
    /// (runc's --preserve-fds), besides stdin, stdout and stderr.
    preserved_fds: u32,
}

impl Runtime {
    /// A relative `root` is taken from where we are now, once: the
    /// container's own processes work elsewhere.
    pub fn new(root: &Path) -> Result<Runtime> {
        let root =
            std::path::absolute(root).map_err(|e| Error::new(format!("--root {}: {e}", root.display())))?;
        Ok(Runtime { root, preserved_fds: 0 })
    }

    /// Passes descriptors 3 to 3 + `count` - 1 on to the programs this
    /// runtime starts, as systemd's socket activation and runc's
    /// --preserve-fds do.
    pub fn preserving_fds(mut self, count: u32) -> Runtime {
        self.preserved_fds = count;
        self
    }

    /// The descriptors --preserve-fds names must be open, as runc wants
    /// them: a count past them is a mistake, not a wish to keep them all.
    fn check_preserved_fds(&self) -> Result<()> {
        let named = (3..).take(self.preserved_fds as usize);
        match named.map(|fd: i32| (fd, kernel::is_open(fd))).find(|(_, open)| !open) {
            None => Ok(()),
            Some((fd, _)) => Err(Error::new(format!(
                "--preserve-fds {} names descriptors 3 to {}, but {fd} is not open: give the number of \
                 descriptors this runtime was started with after stderr",
                self.preserved_fds,
                3 + u64::from(self.preserved_fds) - 1
            ))),
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn fifo(&self, id: &str) -> PathBuf {
        self.dir(id).join("exec.fifo")
    }

    /// The copy of its config.json that create kept.
    fn kept_config(&self, id: &str) -> PathBuf {
        self.dir(id).join("config.json")
    }

    /// Hooks whose failure is told and not fatal (poststart, poststop),
    /// from the kept config: each runs, whatever the one before did.
    fn run_kept_hooks(
        &self,
        id: &str,
        which: impl Fn(&config::Hooks) -> &Vec<config::Hook>,
        state: &State,
        name: &str,
    ) {
        match config::kept_hooks(&self.kept_config(id)) {
            Ok(hooks) => {
                for hook in which(&hooks) {
                    if let Err(error) = run_hooks(std::slice::from_ref(hook), state, name) {
                        eprintln!("warning: {error}");
                    }
                }
            }
            Err(error) => eprintln!("warning: the {name} hooks were not run: {error}"),
        }
    }

    /// delete --force of a container whose record cannot be read: its
    /// group, where a container of this id has it by default, is emptied
    /// and removed (its processes with it), and its directory.
    fn delete_from_what_is_left(&self, id: &str, damaged: &Error) -> Result<()> {
        eprintln!("warning: {damaged}; removing what is left of it");
        drop(Cgroup::existing(Version::of_this_machine()?, &format!("podlab-{id}"), &[]));
        kernel::remove_dir_all(&self.dir(id))
    }

    /// Whether `id`'s directory is one that a create made and, killed,
    /// never recorded: it has no state a moment later, and so nothing in it
    /// or for it that delete must end or remove.
    fn made_before_its_record(&self, id: &str) -> Result<bool> {
        check_id(id)?;
        let record = self.dir(id).join("state.json");
        if !self.dir(id).is_dir() || record.exists() {
            return Ok(false);
        }
        // A create that is alive writes it a moment after the directory.
        std::thread::sleep(Duration::from_millis(200));
        Ok(!record.exists())
    }

    fn write_record(&self, record: &Record) -> Result<()> {
        let json = serde_json::to_string(record).expect("a record is plain data");
        kernel::write_file_atomically(&self.dir(&record.id).join("state.json"), &json)
    }

    fn record(&self, id: &str) -> Result<Record> {
        check_id(id)?;
        let file = self.dir(id).join("state.json");
        let text = std::fs::read_to_string(&file).map_err(|_| {
            Error::new(format!("container {id} does not exist (no state under {})", self.root.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::new(format!("the state of container {id} ({}) is damaged: {e}", file.display()))
        })
    }

    /// The state of container `id`, its status read off the kernel: its
    /// process alive and still waiting at the FIFO is created, alive past it
    /// is running (or paused, its cgroup frozen), gone (or a zombie) is
    /// stopped.
    pub fn state(&self, id: &str) -> Result<State> {
        let record = self.record(id)?;
        let alive = kernel::start_time(Pid::from_raw(record.pid)) == Some(record.start_time);
        let being_made = record.pid == 0
            && kernel::start_time(Pid::from_raw(record.creator)) == Some(record.creator_start_time);
        let status = match (alive, self.fifo(id).exists()) {
            _ if being_made => Status::Creating,
            (true, _) if self.cgroup(&record).is_some_and(|c| c.is_frozen()) => Status::Paused,
            (true, true) => Status::Created,
            (true, false) => Status::Running,
            (false, _) => Status::Stopped,
        };
        Ok(State {
            oci_version: OCI_VERSION.to_string(),
            id: record.id,
            pid: if status == Status::Running || status == Status::Created || status == Status::Paused {
                record.pid
            } else {
                0
            },
            status,
            bundle: record.bundle,
            rootfs: record.rootfs,
            created: record.created,
            owner: String::new(),
            annotations: record.annotations,
        })
    }

    /// The container's cgroup, to look at or change (never to remove: the
    /// value is kept when dropped).
    fn cgroup(&self, record: &Record) -> Option<KeptCgroup> {
        let version = Version::of_this_machine().ok()?;
        record.cgroup.as_ref().map(|name| KeptCgroup(Some(Cgroup::existing(version, name, &[]))))
    }

    /// Freezes every process of container `id` (runc's pause), created or
    /// running; resume brings it back to where it was.
    pub fn pause(&self, id: &str) -> Result<()> {
        let state = self.state(id)?;
        if !matches!(state.status, Status::Created | Status::Running) {
            return Err(Error::new(format!(
                "cannot pause container {id}: it is {}, not created or running",
                state.status
            )));
        }
        self.frozen_cgroup(id)?.freeze(true)
    }

    /// Thaws paused container `id` (runc's resume).
    pub fn resume(&self, id: &str) -> Result<()> {
        let state = self.state(id)?;
        if state.status != Status::Paused {
            return Err(Error::new(format!(
                "cannot resume container {id}: it is {}, not paused",
                state.status
            )));
        }
        self.frozen_cgroup(id)?.freeze(false)
    }

    fn frozen_cgroup(&self, id: &str) -> Result<KeptCgroup> {
        self.cgroup(&self.record(id)?)
            .ok_or_else(|| Error::new(format!("container {id} has no cgroup, so it cannot be frozen")))
    }

    /// Changes the limits of container `id` while it lives: only those set
    /// in `limits`, through level 3 as at create.
    pub fn update(
        &self,
        id: &str,
        limits: &Limits,
        cpu_shares: Option<u64>,
        more: &[resources::Write],
    ) -> Result<()> {
        let state = self.state(id)?;
        if state.status == Status::Stopped {
            return Err(Error::new(format!("cannot update container {id}: it is stopped")));
        }
        let cgroup = self
            .cgroup(&self.record(id)?)
            .ok_or_else(|| Error::new(format!("container {id} has no cgroup to update")))?;
        write_limits_told(&cgroup, limits)?;
        resources::apply(&cgroup, more)?;
        cpu_shares.map_or(Ok(()), |shares| write_cpu_shares(&cgroup, shares))
    }

    /// The host's pids of the processes in container `id`, as `ps` lists them.
    pub fn processes(&self, id: &str) -> Result<Vec<Pid>> {
        let record = self.record(id)?;
        Ok(self.cgroup(&record).map(|c| c.members()).unwrap_or_default())
    }

    /// Every container under the root, by id.
    pub fn list(&self) -> Result<Vec<State>> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Ok(Vec::new()) };
        let mut ids: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        ids.sort();
        let mut states = Vec::new();
        for id in &ids {
            match self.state(id) {
                Ok(state) => states.push(state),
                // Shown, not skipped: it holds a container, which delete
                // --force can still remove.
                Err(error) => eprintln!("warning: {error}"),
            }
        }
        Ok(states)
    }

    // ANCHOR: create
    /// Creates container `id` from `bundle`: everything set up, its first
    /// process waiting at the FIFO for `start`.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: Option<&Path>,
        console_socket: Option<&Path>,
    ) -> Result<Pid> {
        check_id(id)?;
        let bundle = std::path::absolute(bundle)
            .map_err(|e| Error::new(format!("bundle {}: {e}", bundle.display())))?;
        let mut plan = config::load(&bundle)?;
        self.check_preserved_fds()?;
        plan.preserved_fds = self.preserved_fds;
        for warning in &plan.process.warnings {
            eprintln!("warning: {warning}");
        }
        check_console(plan.process.terminal, console_socket)?;
        if self.dir(id).exists() {
            return Err(Error::new(format!(
                "container {id} exists already: delete it first, or choose another id"
            )));
        }
        // Recorded as soon as the container's directory exists, before
        // anything else is made, with what delete --force needs to remove
        // it: a create killed at any point after this leaves a container
        // that `list` shows and delete removes. (Killed between the two,
        // it leaves an empty directory, which delete --force removes too.)
        let version = Version::of_this_machine()?;
        let cgroup_name =
            crate::cgroups::confine(plan.cgroups_path.as_deref().unwrap_or(&format!("podlab-{id}")))?;
        let me = std::process::id() as i32;
        let mut record = Record {
            id: id.to_string(),
            pid: 0,
            bundle: bundle.clone(),
            rootfs: plan.rootfs.clone(),
            created: String::new(),
            start_time: 0,
            cgroup_parents: Cgroup::missing_parents(version, &cgroup_name, &Cgroup::for_a_container()),
            cgroup: Some(cgroup_name),
            creator: me,
            creator_start_time: kernel::start_time(Pid::from_raw(me)).unwrap_or(0),
            annotations: plan.annotations.clone(),
        };
        kernel::mkdir_all(&self.root)?;
        kernel::mkdir(&self.dir(id), 0o711)?;
        let mut made = Made(Some(self.dir(id)));
        self.write_record(&record)?;
        // The config as it is now: what start, exec and delete read later,
        // whatever becomes of the bundle's.
        kernel::write_file_atomically(&self.kept_config(id), &plan.config_text)?;
        // The handshake: the first process will open the FIFO to write,
        // which waits until `start` opens it to read.
        kernel::mkfifo(&self.fifo(id), 0o622)?;
        // In a user namespace, the process opening it is root in there, an
        // ordinary id out here: the FIFO must be its own.
        if let Some((uid, gid)) = plan.ids.as_ref().and_then(|ids| ids.root_outside()) {
            kernel::chown(&self.fifo(id), uid, gid)?;
        }
        let fifo = kernel::open_path(&self.fifo(id))?;
        // Level 3's group, with the config's limits; the first process goes
        // in from outside before it does anything, as all its children will.
        let cgroup = Cgroup::create_for_a_container(version, record.cgroup.as_deref().unwrap_or_default())?;
        write_limits_told(&cgroup, &plan.limits)?;
        resources::apply(&cgroup, &plan.more_resources)?;
        if let Some(shares) = plan.cpu_shares {
            write_cpu_shares(&cgroup, shares)?;
        }
        plan.devices.apply(&cgroup)?;
        if version == Version::V1 {
            let own_namespace = plan.namespaces.contains(CloneFlags::CLONE_NEWCGROUP);
            (plan.mounts, plan.links) = config::cgroup_tree_v1(&plan.mounts, &cgroup.name, own_namespace)?;
        }
        let hook_state = |pid: Pid| State {
            oci_version: OCI_VERSION.to_string(),
            id: id.to_string(),
            pid: pid.as_raw(),
            status: Status::Creating,
            bundle: bundle.clone(),
            rootfs: plan.rootfs.clone(),
            created: String::new(),
            owner: String::new(),
            annotations: plan.annotations.clone(),
        };
        // The console socket is on the host's paths: connected here, used
        // by the child once it has its terminal.
        let console = console_socket.map(kernel::connect_unix).transpose()?;
        let pid = spawn(&plan, &fifo, &cgroup, console.as_ref(), &hook_state(Pid::this()), |pid| {
            run_hooks(&plan.hooks.create_runtime, &hook_state(pid), "createRuntime")
        })
        .map_err(|error| {
            match (crate::cgroups::read_usage(&cgroup).oom_kills, plan.limits.memory) {
                // A process that dies without a word while its group's OOM
                // killer acts was killed by it: say so, and what to change.
                (Some(1..), Some(limit)) => Error::new(format!(
                    "the container's first process was killed by the OOM killer while being set up: its \
                 memory limit of {limit} bytes is below what it needs; raise linux.resources.memory.limit"
                )),
                _ => error,
            }
        })?;
        drop(console);
        drop(fifo);
        record.pid = pid.as_raw();
        record.start_time = kernel::start_time(pid).unwrap_or(0);
        record.created = rfc3339(SystemTime::now());
        self.write_record(&record)?;
        if let Some(pid_file) = pid_file {
            kernel::write_file(pid_file, &pid.to_string())?;
        }
        // Recorded: from here on the container, its group and its state
        // live on until delete.
        made.keep();
        cgroup.keep();
        Ok(pid)
    }
    // ANCHOR_END: create

    // ANCHOR: start
    /// Lets created container `id` run its program: opens the FIFO to read,
    /// which releases the process waiting to write to it.
    pub fn start(&self, id: &str) -> Result<()> {
        let state = self.state(id)?;
        if state.status != Status::Created {
            return Err(Error::new(format!(
                "cannot start container {id}: it is {}, not created",
                state.status
            )));
        }
        let start_time = self.record(id)?.start_time;
        let alive = || kernel::start_time(Pid::from_raw(state.pid)) == Some(start_time);
        if !release(&self.fifo(id), alive)? {
            return Err(Error::new(format!("container {id} ended before it could start")));
        }
        // A failing poststart hook is told, not fatal: the container runs.
        // It is given the state as it was when start began, as runc gives it.
        self.run_kept_hooks(id, |hooks| &hooks.poststart, &state, "poststart");
        Ok(())
    }
    // ANCHOR_END: start

    // ANCHOR: exec
    /// Runs `process` in running container `id`, as `docker exec` and
    /// `kubectl exec` do: joins its cgroup (on the host's paths, so first),
    /// then its namespaces (level 2's join), and starts the process there.
    /// With `detach`, returns once it runs; else waits for it to end.
    pub fn exec(
        &self,
        id: &str,
        process: &ProcessPlan,
        pid_file: Option<&Path>,
        console_socket: Option<&Path>,
        detach: bool,
    ) -> Result<Option<Exit>> {
        self.check_preserved_fds()?;
        let state = self.state(id)?;
        if state.status != Status::Running {
            return Err(Error::new(format!(
                "cannot exec in container {id}: it is {}, not running",
                state.status
            )));
        }
        check_console(process.terminal, console_socket)?;
        // On the host's paths, so before joining the container's: the
        // console socket, and the pid file, written once the pid is known.
        let console = console_socket.map(kernel::connect_unix).transpose()?;
        let pid_file = pid_file.map(kernel::create_file).transpose()?;
        if let Some(cgroup) = self.cgroup(&self.record(id)?) {
            cgroup.join_self()?;
        }
        let first = Pid::from_raw(state.pid);
        namespaces::join(first, &namespaces::namespaces_of(first)?)?;
        // Joined its mount namespace: the program is looked up in its files.
        let program = find_program(&process.args[0], &process.env)?;
        // Attached, we wait for it: Ctrl-C, kill and a closed terminal go to
        // it, as with runc, and we live on to report how it ended.
        if !detach {
            kernel::forward_signals_to_child()?;
        }
        let child = spawn_in_new_namespaces(CloneFlags::empty(), &[], None, |ready| {
            if let Some(console) = &console {
                give_a_terminal(console, process.console_size)?;
            }
            become_the_process(process)?;
            ready();
            last_before_execve(process, self.preserved_fds)?;
            Err(kernel::execve(&program, &process.args, &process.env))
        })?;
        if let Some(pid_file) = pid_file {
            kernel::write_to(&pid_file, child.to_string().as_bytes(), "the pid file")?;
        }
        if detach {
            return Ok(None);
        }
        kernel::set_signal_target(Some(child));
        let waited = kernel::waitpid(child);
        kernel::set_signal_target(None);
        match waited? {
            nix::sys::wait::WaitStatus::Exited(_, code) => Ok(Some(Exit::Code(code))),
            nix::sys::wait::WaitStatus::Signaled(_, signal, _) => Ok(Some(Exit::Signal(signal))),
            other => Err(Error::new(format!("the process ended in an unexpected way: {other:?}"))),
        }
    }
    // ANCHOR_END: exec

    /// The process container `id` was created to run, as its bundle's
    /// config says: what `exec` starts from.
    pub fn configured_process(&self, id: &str) -> Result<ProcessPlan> {
        config::kept_process(&self.kept_config(id))
    }

    /// Sends `signal` to container `id`'s first process, or with `all` to
    /// every process in its cgroup.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let state = self.state(id)?;
        if state.status == Status::Stopped || state.status == Status::Creating {
            return Err(Error::new(format!("cannot kill container {id}: it is {}", state.status)));
        }
        let record = self.record(id)?;
        match (all, self.cgroup(&record)) {
            (true, Some(cgroup)) => kernel::kill_each(&cgroup.members(), signal, "in the container's cgroup"),
            // Through a pidfd, once the start time says it is the process
            // the record means: a pid alone may be another's by now.
            _ => match kernel::Process::open(Pid::from_raw(state.pid), record.start_time)? {
                Some(process) => process.signal(signal),
                None => Err(Error::new(format!("cannot kill container {id}: its process has ended"))),
            },
        }
    }

    /// Removes stopped container `id`; with `force`, kills it first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        if force && self.made_before_its_record(id)? {
            return kernel::remove_dir_all(&self.dir(id));
        }
        let state = match self.state(id) {
            Err(damaged) if force && self.dir(id).join("state.json").exists() => {
                return self.delete_from_what_is_left(id, &damaged)
            }
            state => state?,
        };
        if state.status != Status::Stopped {
            if !force {
                return Err(Error::new(format!(
                    "cannot delete container {id}: it is {}; stop it first, or use --force",
                    state.status
                )));
            }
            // A frozen process would not even die: thaw it first.
            if state.status == Status::Paused {
                self.frozen_cgroup(id)?.freeze(false)?;
            }
            // One being made has no process of its own yet: its maker is
            // ended instead, and what it made is removed below.
            let record = self.record(id)?;
            let (pid, start_time) = match state.status {
                Status::Creating => (record.creator, record.creator_start_time),
                _ => (state.pid, record.start_time),
            };
            if let Some(process) = kernel::Process::open(Pid::from_raw(pid), start_time)? {
                process.signal(Signal::SIGKILL)?;
                process.wait_for_end(Duration::from_secs(10));
            }
        }
        // poststop hooks, from the config as create kept it; a failing one
        // is told, and the container removed all the same.
        let stopped = self.state(id)?;
        self.run_kept_hooks(id, |hooks| &hooks.poststop, &stopped, "poststop");
        let record = self.record(id)?;
        if let Some(name) = &record.cgroup {
            // Dropped at once: any process left in it is killed, the group
            // removed, and the groups made for it above it.
            drop(Cgroup::existing(Version::of_this_machine()?, name, &record.cgroup_parents));
        }
        kernel::remove_dir_all(&self.dir(id))
    }

    /// create, start, and wait for the container to end, then delete it: the
    /// container is our child here, so we can tell how it ended.
    pub fn run(&self, id: &str, bundle: &Path, pid_file: Option<&Path>) -> Result<Exit> {
        let pid = self.create(id, bundle, pid_file, None)?;
        // Ctrl-C, kill and a closed terminal go to the container, as with
        // runc; we live on to delete it when it ends (a second signal ends
        // it: a PID 1 ignores those it has no handler for).
        kernel::forward_signals_to_child()?;
        kernel::set_signal_target(Some(pid));
        let started = self.start(id);
        let waited = kernel::waitpid(pid);
        kernel::set_signal_target(None);
        self.delete(id, true)?;
        started?;
        match waited? {
            nix::sys::wait::WaitStatus::Exited(_, code) => Ok(Exit::Code(code)),
            nix::sys::wait::WaitStatus::Signaled(_, signal, _) => Ok(Exit::Signal(signal)),
            other => Err(Error::new(format!("the container ended in an unexpected way: {other:?}"))),
        }
    }
}

/// Level 4 in the ladder. Each scenario runs in a bundle of its own: level
/// 1's rootfs and a config.json from bundles/ (whose masked and read-only
/// paths are ones every kernel has, so that the transcripts are the same
/// on every machine), with the containers' state in the bundle's `state`.
/// The narration shows cgroups, so transcripts differ between v1 and v2.
pub const LEVEL: Level = Level {
    number: 4,
    name: "an OCI runtime",
    example: "04-runtime",
    feature: "lab-04",
    lab_files: &["labs/04-runtime/handshake.rs"],
    workspace: Some(Workspace { prepare: build_bundle, clean: delete_every_container }),
    variant: crate::cgroups::cgroup_version,
    scenarios: &[
        Scenario {
            name: "run",
            args: &["--root", "state", "run", "hello"],
            then: &[],
            files: &[("config.json", include_str!("bundles/hello.json"))],
            shows: "run: the whole set-up of a container from the default config, the program, the end",
            hint: "start with the mounts: every option of config.json's mounts becomes a flag of mount(2) \
                   or goes to the file system as data; then the handshake (wait_for_start, release)",
            alongside: None,
        },
        Scenario {
            name: "lifecycle",
            args: &["--root", "state", "create", "demo"],
            then: &[
                &["--root", "state", "state", "demo"],
                &["--root", "state", "start", "demo"],
                &["--root", "state", "state", "demo"],
                &["--root", "state", "start", "demo"],
                &["--root", "state", "delete", "demo"],
                &["--root", "state", "delete", "--force", "demo"],
                &["--root", "state", "list"],
            ],
            files: &[("config.json", include_str!("bundles/sleep.json"))],
            shows: "created, then running once start has come; each step a separate invocation",
            hint: "wait_for_start() must tell ready() before its open waits, write one byte, and hand \
                   back the open end; release() takes a handle (open_path), unlinks the name, then opens \
                   to read through the handle and reads until the end of file",
            alongside: None,
        },
        Scenario {
            name: "pause",
            args: &["--root", "state", "create", "sleeper"],
            then: &[
                &["--root", "state", "start", "sleeper"],
                &["--root", "state", "pause", "sleeper"],
                &["--root", "state", "state", "sleeper"],
                &["--root", "state", "resume", "sleeper"],
                &["--root", "state", "state", "sleeper"],
                &["--root", "state", "delete", "--force", "sleeper"],
            ],
            files: &[("config.json", include_str!("bundles/sleep.json"))],
            shows: "pause freezes the container's cgroup, resume thaws it",
            hint: "pause and resume are written for you: compare the handshake's lines first",
            alongside: None,
        },
        Scenario {
            name: "hooks",
            args: &["--root", "state", "create", "hookdemo"],
            then: &[
                &["--root", "state", "start", "hookdemo"],
                &["--root", "state", "delete", "--force", "hookdemo"],
            ],
            files: &[("config.json", include_str!("bundles/hooks.json"))],
            shows: "each kind of hook, run where and when the specification says, told the state",
            hint: "the hooks are written for you: compare the handshake's lines first",
            alongside: None,
        },
        Scenario {
            name: "mounts",
            args: &["--root", "state", "run", "mounted"],
            then: &[],
            files: &[
                ("config.json", include_str!("bundles/mounts.json")),
                ("data/note", "written on the host\n"),
                ("resolv.conf", "nameserver 192.0.2.53\n"),
            ],
            shows:
                "a tmpfs with options, a read-only bind mount of the bundle's data/ that refuses a write, \
                    and a file bound where the rootfs has none (/etc/resolv.conf, as a CRI binds it)",
            hint: "mount_options(): ro, nosuid, nodev are flags; rbind is MS_BIND|MS_REC; rprivate is \
                   propagation, done in a call of its own; mode=1777 and size=1m are data",
            alongside: None,
        },
        Scenario {
            name: "resources",
            args: &["--root", "state", "run", "limited"],
            then: &[],
            files: &[("config.json", include_str!("bundles/resources.json"))],
            shows: "the rest of linux.resources: the container pinned to CPU 0 (cpuset), a memory \
                    reservation beside the limit, each written where this cgroup version keeps it",
            hint: "nothing of the lab: this is resources.rs, written for you",
            alongside: None,
        },
        Scenario {
            name: "seccomp",
            args: &["--root", "state", "run", "filtered"],
            then: &[],
            files: &[("config.json", include_str!("bundles/seccomp.json"))],
            shows: "a seccomp filter: mkdir refused, personality refused for one argument only",
            hint: "the filter is written for you: compare the handshake's lines first",
            alongside: None,
        },
        Scenario {
            name: "no-rootfs",
            args: &["--root", "state", "run", "broken"],
            then: &[&["--root", "state", "list"]],
            files: &[("config.json", include_str!("bundles/no-rootfs.json"))],
            shows: "a root path that does not exist: one sentence, nothing left behind",
            hint: "this one fails before your code runs: compare the sentence",
            alongside: None,
        },
    ],
};

/// A scenario's bundle: level 1's rootfs, built quietly (the transcript is
/// about the runtime).
fn build_bundle(dir: &Path, _: &Scenario) -> std::io::Result<()> {
    crate::narrate::set_quiet(true);
    let rootfs = chroot::Rootfs::create(Some(&dir.join("rootfs")), Path::new(chroot::BUSYBOX))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    rootfs.keep();
    Ok(())
}

/// Whatever a scenario left in its bundle's state (a lab that stopped
/// half-way), deleted with force.
fn delete_every_container(dir: &Path) {
    crate::narrate::set_quiet(true);
    if let Ok(runtime) = Runtime::new(&dir.join("state")) {
        for state in runtime.list().unwrap_or_default() {
            let _ = runtime.delete(&state.id, true);
        }
    }
}

/// CPU shares: v1's cpu.shares as they are; under v2, cpu.weight, whose
/// scale (1 to 10000, 100 by default) runc maps them onto linearly from
/// v1's (2 to 262144, 1024 by default).
fn write_cpu_shares(cgroup: &Cgroup, shares: u64) -> Result<()> {
    let shares = shares.clamp(2, 262_144);
    match cgroup.version {
        Version::V1 => kernel::write_file(&cgroup.file("cpu", "cpu.shares"), &shares.to_string()),
        Version::V2 => {
            let weight = 1 + ((shares - 2) * 9999) / 262_142;
            kernel::write_file(&cgroup.file("cpu", "cpu.weight"), &weight.to_string())
        }
    }
}

/// A container's cgroup as later commands see it: there to look at and to
/// change, and left in place when the value goes (delete removes it).
struct KeptCgroup(Option<Cgroup>);

impl std::ops::Deref for KeptCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for KeptCgroup {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take() {
            cgroup.keep();
        }
    }
}

/// The lines `ps` (with `options`, or -ef) prints for the processes
/// `pids`, under its header, as runc's ps shows a container's processes.
pub fn ps_lines(pids: &[Pid], options: &[String]) -> Result<String> {
    let options = if options.is_empty() { vec!["-ef".to_string()] } else { options.to_vec() };
    let output = std::process::Command::new("ps")
        .args(&options)
        .output()
        .map_err(|e| Error::new(format!("cannot run ps: {e} (Debian's package procps has it)")))?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "ps {} failed: {}",
            options.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|name| name == "PID")
        .ok_or_else(|| Error::new("the ps options give no PID column: include one (-o pid,...)"))?;
    let mut shown = format!("{header}\n");
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse().ok()).map(Pid::from_raw);
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            shown.push_str(line);
            shown.push('\n');
        }
    }
    Ok(shown)
}

/// Appends an error to the log file containerd gave us, as runc writes it:
/// one JSON object a line with --log-format json, else plain text. A log
/// that cannot be written is no reason to fail more.
pub fn log_error(log: &mut std::fs::File, json: bool, message: &str) {
    use std::io::Write;
    let time = rfc3339(SystemTime::now());
    let line = if json {
        serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level=error msg={message:?}")
    };
    let _ = writeln!(log, "{line}");
}

/// The log file containerd gave us, opened to append, before anything
/// moves this process away from the host's paths.
pub fn open_log(file: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(file).ok()
}

/// Removes a half-made container's directory unless kept.
struct Made(Option<PathBuf>);

impl Made {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = kernel::remove_dir_all(&dir);
        }
    }
}

/// Container ids name directories: letters, digits, `_`, `-`, `.`, as runc
/// allows, and not `.` or `..`.
fn check_id(id: &str) -> Result<()> {
    let fine = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if fine {
        Ok(())
    } else {
        Err(Error::new(format!("{id:?} is not a container id: use letters, digits, _, - and .")))
    }
}

// ANCHOR: spawn
/// Clones the container's first process into its namespaces and its
/// cgroup, sets it up inside, and leaves it waiting at the FIFO.
fn spawn(
    plan: &Plan,
    fifo: &OwnedFd,
    cgroup: &Cgroup,
    console: Option<&OwnedFd>,
    state: &State,
    hooks: impl Fn(Pid) -> Result<()>,
) -> Result<Pid> {
    // Namespaces to join are joined by a helper that clones the child: it
    // is born in them, and this process stays in the runtime's own, where
    // the createRuntime hooks must run.
    let user = plan.user_namespace.iter().map(|path| (CloneFlags::CLONE_NEWUSER, path.as_path()));
    let joins: Vec<(CloneFlags, &Path)> =
        user.chain(plan.join.iter().map(|(kind, path)| (*kind, path.as_path()))).collect();
    let mut prepare = |child: Pid| {
        cgroup.add(child)?;
        // A new user namespace gets its maps; a joined one has them.
        if plan.namespaces.contains(CloneFlags::CLONE_NEWUSER) {
            plan.ids.as_ref().map_or(Ok(()), |ids| map_ids(child, ids))?;
        }
        hooks(child)
    };
    spawn_in_new_namespaces(plan.namespaces, &joins, Some(&mut prepare), |ready| {
        // The hooks that run in here are told the process as it sees
        // itself (pid 1, in a PID namespace of its own), as in runc.
        let seen_inside = |status| State { pid: nix::unistd::getpid().as_raw(), status, ..state.clone() };
        set_up_inside(plan, console, || {
            run_hooks(&plan.hooks.create_container, &seen_inside(Status::Creating), "createContainer")
        })?;
        let program = find_program(&plan.process.args[0], &plan.process.env)?;
        // The process stays here until `start`; `create` is done once it is.
        let _door = wait_for_start(fifo, ready)?;
        run_hooks(&plan.hooks.start_container, &seen_inside(Status::Created), "startContainer")?;
        last_before_execve(&plan.process, plan.preserved_fds)?;
        Err(kernel::execve(&program, &plan.process.args, &plan.process.env))
    })
}
// ANCHOR_END: spawn

// ANCHOR: set_up_inside
/// What the first process does inside its new namespaces, in the order the
/// specification implies: ids mapped, host name, network, mounts and root,
/// limits, working directory, then the user it runs as.
fn set_up_inside(
    plan: &Plan,
    console: Option<&OwnedFd>,
    before_pivot: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let has = |kind| plan.namespaces.contains(kind);
    let in_a_user_namespace = has(CloneFlags::CLONE_NEWUSER) || plan.user_namespace.is_some();
    if in_a_user_namespace {
        kernel::become_root()?;
    }
    if let Some(hostname) = &plan.hostname {
        kernel::sethostname(hostname)?;
    }
    if has(CloneFlags::CLONE_NEWNET) {
        kernel::set_link_up("lo")?;
    }
    let joins_mounts = plan.join.iter().any(|(kind, _)| *kind == CloneFlags::CLONE_NEWNS);
    if has(CloneFlags::CLONE_NEWNS) || joins_mounts {
        // The devices go in while the host's /dev is still in view: in a
        // user namespace they cannot be made, only bound from there.
        // The host's mounts' copies become slaves, as with runc, unless the
        // config says otherwise: the host's mounts under a volume still
        // reach the container (what Kubernetes calls HostToContainer).
        let propagation =
            plan.rootfs_propagation.unwrap_or(nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE);
        namespaces::pivot_into(&plan.rootfs, &plan.mounts, propagation, |root: &kernel::Root| {
            for (link, points_at) in &plan.links {
                let (Some(dir), Some(name)) = (link.parent(), link.file_name().and_then(|n| n.to_str()))
                else {
                    return Err(Error::new(format!("{} cannot be a link", link.display())));
                };
                root.make_dirs(dir)?.symlink(points_at, name)?;
            }
            create_default_devices(root, in_a_user_namespace)?;
            create_device_nodes(root, &plan.device_nodes, in_a_user_namespace)?;
            before_pivot()
        })?;
        // A private one is the new root's own too, as runc (1.1) makes it:
        // after the pivot, so that it is "/" in here that changes.
        if plan.rootfs_propagation.is_some_and(|p| p.contains(nix::mount::MsFlags::MS_PRIVATE)) {
            kernel::mount(None, Path::new("/"), None, nix::mount::MsFlags::MS_PRIVATE, None)?;
        }
    } else {
        before_pivot()?;
        chroot::enter(&plan.rootfs)?;
    }
    // The container's own kernel parameters, while /proc/sys is writable:
    // protect_paths makes it read-only next.
    for (file, value) in &plan.sysctl {
        kernel::write_file(file, value)?;
    }
    // Masked files are hidden under the container's /dev/null, held by a
    // handle once fstat has said it is the null device: the rootfs may have
    // put any file, or a link to one, in its place (CVE-2025-31133), and
    // the handle, not the name, is what gets mounted.
    let null = kernel::open_char_device(Path::new("/dev/null"), 1, 3)?;
    protect_paths(plan, &null)?;
    if let Some(console) = console {
        give_a_terminal(console, plan.process.console_size)?;
    }
    if let Some((persona, name)) = plan.personality {
        kernel::set_personality(persona, name)?;
    }
    if plan.readonly_root {
        let flags =
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_RDONLY;
        kernel::mount(None, Path::new("/"), None, flags, None)?;
    }
    become_the_process(&plan.process)
}
// ANCHOR_END: set_up_inside

// ANCHOR: give_a_terminal
/// A terminal from the container's own devpts for this process: its master
/// end goes to whoever listens on the console socket (containerd's shim).
fn give_a_terminal(console: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let (master, terminal) = kernel::open_pty()?;
    if let Some((rows, columns)) = size {
        kernel::set_window_size(&master, rows, columns)?;
    }
    kernel::send_fd(console, &master, &terminal.display().to_string(), "the terminal's master end")?;
    drop(master);
    kernel::take_terminal(&terminal)
}
// ANCHOR_END: give_a_terminal

/// A terminal needs somewhere to send its master end, and a console socket
/// is only for a terminal.
fn check_console(terminal: bool, console_socket: Option<&Path>) -> Result<()> {
    match (terminal, console_socket) {
        (true, None) => Err(Error::new(
            "the process asks for a terminal: give --console-socket, where the terminal's master end is to be sent",
        )),
        (false, Some(_)) => {
            Err(Error::new("--console-socket is only for a process with a terminal: leave it out, or ask for one"))
        }
        _ => Ok(()),
    }
}

// ANCHOR: become_the_process
/// The last steps before execve, the same for a container's first process
/// and for one `exec` starts in it: limits, working directory, capabilities
/// and the user it runs as.
fn become_the_process(process: &ProcessPlan) -> Result<()> {
    if let Some(score) = process.oom_score_adj {
        kernel::set_oom_score_adj(score)?;
    }
    if let Some(profile) = &process.apparmor_profile {
        kernel::apparmor_on_exec(profile)?;
    }
    for (kind, soft, hard) in &process.rlimits {
        kernel::setrlimit(&kind.to_string(), resource(*kind), *soft, *hard)?;
    }
    kernel::umask(process.umask);
    if let Some((class, level)) = process.io_priority {
        let name = ["", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"][class as usize];
        kernel::set_io_priority(class, level, name)?;
    }
    kernel::chdir(&process.cwd)?;
    // Without no_new_privs, installing a seccomp filter takes CAP_SYS_ADMIN:
    // now, before the capabilities go. With it, as late as can be.
    if let (Some(filter), false) = (&process.seccomp, process.no_new_privileges) {
        filter.install()?;
    }
    // Capabilities: the bounding set first, while we may still drop from
    // it; then keep the rest across the change of user, and set them.
    if let Some(caps) = &process.capabilities {
        kernel::drop_bounding_set(caps.bounding)?;
        kernel::keep_capabilities(true)?;
    }
    kernel::set_ids(process.uid, process.gid, &process.additional_gids)?;
    if let Some(caps) = &process.capabilities {
        kernel::keep_capabilities(false)?;
        kernel::capset(caps.effective, caps.permitted, caps.inheritable)?;
        kernel::raise_ambient(caps.ambient)?;
    }
    if process.no_new_privileges {
        kernel::no_new_privileges()?;
    }
    Ok(())
}
// ANCHOR_END: become_the_process

/// The very last steps before execve: no descriptor but stdio left to the
/// program, and the seccomp filter, where no_new_privs lets it wait until
/// here, so that as few of our own calls as can be must pass it (runc's
/// order).
fn last_before_execve(process: &ProcessPlan, preserved_fds: u32) -> Result<()> {
    // Before the filter, which might not allow sigaction.
    kernel::reset_signals()?;
    // Only stdin, stdout, stderr and what the caller asked to preserve go
    // on into the program, as with runc.
    // Saturating: a count past the last descriptor preserves them all.
    kernel::close_on_exec_from(3u32.saturating_add(preserved_fds))?;
    match (&process.seccomp, process.no_new_privileges) {
        (Some(filter), true) => filter.install(),
        _ => Ok(()),
    }
}

// ANCHOR: run_hooks
/// Runs `hooks` in order, each with the container's state on its stdin;
/// the first that fails (or times out) fails them all.
fn run_hooks(hooks: &[config::Hook], state: &State, which: &str) -> Result<()> {
    let json = serde_json::to_string(state).expect("a state is plain data");
    for hook in hooks {
        let status =
            kernel::run_with_input(&hook.path, &hook.args, &hook.env, &json, hook.timeout, "the state")?;
        if !status.success() {
            return Err(Error::new(format!("the {which} hook {} failed ({status})", hook.path.display())));
        }
    }
    Ok(())
}
// ANCHOR_END: run_hooks

/// Level 3's limits, written into a group that may hold processes already
/// (at update; at create the first process joins after). A memory limit
/// below what they use is refused by a v1 kernel (EBUSY) once it cannot
/// reclaim enough: said as such, with the usage, as runc says it. (v2 takes
/// the limit and OOM-kills instead.)
fn write_limits_told(cgroup: &Cgroup, limits: &Limits) -> Result<()> {
    write_limits(cgroup, limits).map_err(|error| {
        let usage = cgroup.number("memory", "memory.usage_in_bytes");
        match (limits.memory, usage) {
            (Some(limit), Some(usage)) if usage > limit && error.to_string().contains("EBUSY") => {
                let peak = cgroup.number("memory", "memory.max_usage_in_bytes").unwrap_or(usage);
                Error::new(format!(
                    "the kernel refused a memory limit of {limit} bytes: the container uses {usage} bytes \
                     already ({peak} at its peak), more than it could reclaim; give a limit above its usage"
                ))
            }
            _ => error,
        }
    })
}

/// Read-only paths become read-only bind mounts of themselves; masked paths
/// disappear under an empty read-only tmpfs (a directory) or /dev/null (a
/// file: `null`, a handle on the null device). Paths the rootfs does not have
/// are skipped, as runc does; any other failure to look is an error.
fn protect_paths(plan: &Plan, null: &OwnedFd) -> Result<()> {
    use nix::mount::MsFlags;
    for path in plan.readonly_paths.iter().filter(|p| p.exists()) {
        kernel::mount(Some(path), path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        let read_only = MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        kernel::mount(None, path, None, read_only, None)?;
    }
    for path in &plan.masked_paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                kernel::mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), MsFlags::MS_RDONLY, None)?
            }
            Ok(_) => {
                let through = PathBuf::from(format!("/proc/self/fd/{}", null.as_raw_fd()));
                kernel::mount(Some(&through), path, None, MsFlags::MS_BIND, None)?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(Error::new(format!(
                    "cannot look at the masked path {}: {error}: mask only what the container may have",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

/// The devices and links the runtime specification says every container
/// has in /dev, made where the rootfs (or a tmpfs on /dev) lacks them.
const DEFAULT_DEVICES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
const DEFAULT_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Makes them in the rootfs's /dev: with mknod, or, in a user namespace
/// (where mknod is not allowed), as bind mounts of the host's own. Each is
/// made in /dev's descriptor, found inside the root: a /dev that is a link
/// leads somewhere inside the rootfs, never to the host's /dev.
fn create_default_devices(root: &kernel::Root, bind_the_hosts: bool) -> Result<()> {
    let dev = root.make_dirs(Path::new("dev"))?;
    for (name, major, minor) in DEFAULT_DEVICES {
        if dev.has(name) {
            continue;
        }
        if bind_the_hosts {
            let file = dev.file(name)?;
            let host = Path::new("/dev").join(name);
            kernel::mount_on(Some(&host), &file, None, nix::mount::MsFlags::MS_BIND, None)?;
        } else {
            dev.mknod(name, SFlag::S_IFCHR, major, minor, 0o666)?;
        }
    }
    for (name, target) in DEFAULT_LINKS {
        if !dev.has(name) {
            dev.symlink(Path::new(target), name)?;
        }
    }
    Ok(())
}

/// linux.devices, made as the default ones are: with mknod, its mode and
/// owner as the config says; in a user namespace, as a bind mount of the
/// host's own at the same path, which the host must then have. One that
/// is there already is left as it is.
fn create_device_nodes(
    root: &kernel::Root,
    nodes: &[config::DeviceNode],
    bind_the_hosts: bool,
) -> Result<()> {
    for node in nodes {
        let (Some(dir), Some(name)) = (node.path.parent(), node.path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(Error::new(format!("{} cannot be a device file", node.path.display())));
        };
        let dir = root.make_dirs(dir)?;
        if dir.has(name) {
            continue;
        }
        if bind_the_hosts {
            if !node.path.exists() {
                return Err(Error::new(format!(
                    "in a user namespace a device file cannot be made, only bound from the host's, and the host \
                     has no {}: leave it out of linux.devices, or make it on the host",
                    node.path.display()
                )));
            }
            let file = dir.file(name)?;
            kernel::mount_on(Some(&node.path), &file, None, nix::mount::MsFlags::MS_BIND, None)?;
        } else {
            dir.mknod(name, node.kind, node.major, node.minor, node.mode)?;
            dir.chown(name, node.uid, node.gid)?;
        }
    }
    Ok(())
}

fn resource(kind: PosixRlimitType) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource;
    match kind {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// The program `name` names, found as execvp(3) would: a path if it has a
/// slash, else the first match in the PATH of `env`.
fn find_program(name: &str, env: &[String]) -> Result<PathBuf> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env.iter().find_map(|v| v.strip_prefix("PATH=")).unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path.split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::new(format!("there is no {name:?} in the container's PATH ({path})")))
}

/// A time as RFC 3339 in UTC with nanoseconds, as runc writes `created`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (days, seconds) = ((since.as_secs() / 86_400) as i64, since.as_secs() % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        since.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_rfc3339() {
        let time = SystemTime::UNIX_EPOCH + Duration::new(1_795_458_291, 943_463_784);
        assert_eq!(rfc3339(time), "2026-11-23T18:24:51.943463784Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn ids_that_name_a_directory_of_ours_only() {
        assert!(check_id("c1").is_ok());
        assert!(check_id("web-1.v2_a").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "with space"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
