//! Scenarios: the runs of each level's example that the snapshot tests
//! record and the lab checker replays against a student's code.
//!
//! A scenario is a command line. Running one captures stdout and stderr
//! through one pipe, so the transcript holds the program's output and its
//! narration in the order a terminal shows them; what varies between runs
//! (temporary names) is normalised. The recorded transcripts live in
//! `tests/snapshots/` and are what the book shows.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regex::Regex;

/// One level of the ladder: its example, its lab, its scenarios.
pub struct Level {
    pub number: u8,
    pub name: &'static str,
    /// The example's name, also its command in transcripts.
    pub example: &'static str,
    /// The cargo feature that swaps in the student's lab file.
    pub feature: &'static str,
    /// The files the student edits, relative to the repository
    /// (labs/NN-name/FILE.rs): each stands for the chapter's module of its
    /// name (chapters/NN-name/FILE.rs), which the feature swaps for it.
    pub lab_files: &'static [&'static str],
    pub scenarios: &'static [Scenario],
    /// A directory that each scenario runs in, prepared before it and
    /// cleaned after it (level 4: a bundle); None to run where we are.
    pub workspace: Option<Workspace>,
    /// What about this machine changes the transcripts (level 3: the cgroup
    /// version), if anything; each variant has snapshots of its own.
    pub variant: fn() -> Option<&'static str>,
}

/// For levels whose transcripts are the same on every machine.
pub fn same_everywhere() -> Option<&'static str> {
    None
}

/// One run of a level's example.
pub struct Scenario {
    pub name: &'static str,
    pub args: &'static [&'static str],
    /// What the run shows, in a few words.
    pub shows: &'static str,
    /// What to look at when a student's run differs from the reference.
    pub hint: &'static str,
    /// A second run of the example, started first, that runs alongside (a
    /// container to join, say).
    pub alongside: Option<Alongside>,
    /// More runs of the example after the first, one after another, as a
    /// reader would type them (level 4: create, then state, then start).
    pub then: &'static [&'static [&'static str]],
    /// Files to write into the level's workspace before the first run:
    /// (name, contents).
    pub files: &'static [(&'static str, &'static str)],
}

/// The directory a level's scenarios run in: a new temporary one for each.
pub struct Workspace {
    /// Fills it before the scenario's files are written and its runs begin.
    pub prepare: fn(&Path, &Scenario) -> io::Result<()>,
    /// Ends what a run left behind in it (a lab that stopped half-way)
    /// before it is removed.
    pub clean: fn(&Path),
}

/// A run beside a scenario. In the scenario's `args`, `{pid}` stands for
/// the host's pid of its child once that child runs `ready_when`.
pub struct Alongside {
    pub args: &'static [&'static str],
    /// The program (as /proc/PID/comm names it) its child becomes when ready.
    pub ready_when: &'static str,
}

/// How long one run may take before it is killed (a lab that hangs); the
/// lab checker may set a shorter one.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Runs `scenario` with the example binary `exe` and returns its transcript,
/// as it came: [`normalize`] it before comparing it with a recorded one.
pub fn run(exe: &Path, level: &Level, scenario: &Scenario) -> io::Result<String> {
    run_within(exe, level, scenario, TIME_LIMIT)
}

/// [`run`], each run of the example killed once it has taken `limit`.
pub fn run_within(exe: &Path, level: &Level, scenario: &Scenario, limit: Duration) -> io::Result<String> {
    let workspace = level.workspace.as_ref().map(|w| InWorkspace::prepare(w, scenario)).transpose()?;
    let dir = workspace.as_ref().map(|w| w.dir.as_path());
    let filled: Vec<Vec<String>> = std::iter::once(scenario.args)
        .chain(scenario.then.iter().copied())
        .map(|args| args.iter().map(|arg| fill_in(arg, dir)).collect())
        .collect();
    let mut runs: Vec<Vec<&str>> =
        filled.iter().map(|args| args.iter().map(String::as_str).collect()).collect();
    let Some(alongside) = &scenario.alongside else {
        return transcript(exe, level.example, dir, &runs, limit);
    };
    let mut companion = Companion::start(exe, alongside.args, dir)?;
    let pid = match companion.child_running(alongside.ready_when) {
        Ok(pid) => pid.to_string(),
        // Its own transcript says why, a lab's unwritten piece say.
        Err(output) => {
            let line = command_line(level.example, alongside.args);
            return Ok(format!(
                "$ {line} &\n{output}[ended before its child ran {}]\n",
                alongside.ready_when
            ));
        }
    };
    for arg in runs.iter_mut().flatten() {
        if *arg == "{pid}" {
            *arg = &pid;
        }
    }
    transcript(exe, level.example, dir, &runs, limit)
}

/// An argument with each `{NAME}` in it replaced by what the workspace's
/// file `.NAME` holds, if it has one (level 5: `{registry}`, the address
/// of the registry its workspace started).
fn fill_in(arg: &str, dir: Option<&Path>) -> String {
    let Some(dir) = dir else { return arg.to_string() };
    let mut filled = arg.to_string();
    while let Some(start) = filled.find('{') {
        let Some(length) = filled[start..].find('}') else { break };
        let name = &filled[start + 1..start + length];
        let Ok(value) = std::fs::read_to_string(dir.join(format!(".{name}"))) else { break };
        filled.replace_range(start..=start + length, value.trim());
    }
    filled
}

/// A level's workspace, made for one scenario; cleaned and removed when
/// dropped.
struct InWorkspace<'a> {
    dir: PathBuf,
    workspace: &'a Workspace,
}

impl<'a> InWorkspace<'a> {
    fn prepare(workspace: &'a Workspace, scenario: &Scenario) -> io::Result<InWorkspace<'a>> {
        // Under /tmp and named podlab-XXXXXX, as the examples' own
        // temporary directories are, so that normalize() hides its name.
        let dir = nix::unistd::mkdtemp("/tmp/podlab-XXXXXX").map_err(io::Error::from)?;
        let made = InWorkspace { dir, workspace };
        (workspace.prepare)(&made.dir, scenario)?;
        for (name, contents) in scenario.files {
            let file = made.dir.join(name);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(file, contents)?;
        }
        Ok(made)
    }
}

impl Drop for InWorkspace<'_> {
    fn drop(&mut self) {
        (self.workspace.clean)(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The run alongside a scenario, its output collected; ended (SIGTERM, then
/// SIGTERM again, which the examples pass on as SIGKILL) when dropped.
struct Companion {
    process: Child,
    output: Option<JoinHandle<Vec<u8>>>,
}

impl Companion {
    fn start(exe: &Path, args: &[&str], dir: Option<&Path>) -> io::Result<Companion> {
        let (read_end, write_end) = output_pipe()?;
        let process = command(exe, args, dir, &write_end)?.spawn()?;
        // Our copy of the write end must go, or the read never ends.
        drop(write_end);
        let output = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::fs::File::from(read_end).read_to_end(&mut bytes);
            bytes
        });
        Ok(Companion { process, output: Some(output) })
    }
    /// The pid of its child once that child runs `program`; or, if it ends
    /// first, everything it printed.
    fn child_running(&mut self, program: &str) -> std::result::Result<u32, String> {
        let me = self.process.id();
        let started = Instant::now();
        while started.elapsed() < TIME_LIMIT {
            if let Ok(Some(_)) = self.process.try_wait() {
                let bytes = self.output.take().and_then(|reader| reader.join().ok()).unwrap_or_default();
                return Err(String::from_utf8_lossy(&bytes).into_owned());
            }
            let children =
                std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
            for child in children.split_whitespace() {
                let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                if comm.trim_end() == program {
                    return child.parse().map_err(|_| format!("{child} is not a pid"));
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("its child did not run {program} within {} s\n", TIME_LIMIT.as_secs()))
    }
}
impl Drop for Companion {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.process.id() as i32);
        for _ in 0..2 {
            if let Ok(None) = self.process.try_wait() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        // Its output ends with it; wait for the reader too.
        if let Some(reader) = self.output.take() {
            let _ = reader.join();
        }
    }
}

/// `exe` with `args`, run in `dir` if given, with stdout and stderr both
/// into `output`: one stream, in the order a terminal would show it. It
/// leads a process group of its own, so that a run that hangs can be ended
/// with every process it started.
fn command(exe: &Path, args: &[&str], dir: Option<&Path>, output: &OwnedFd) -> io::Result<Command> {
    let mut command = Command::new(exe);
    command
        .process_group(0)
        .args(args)
        // Temporary names in the transcripts start with /tmp/podlab-.
        .env("TMPDIR", "/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::from(output.try_clone()?))
        .stderr(Stdio::from(output.try_clone()?));
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    Ok(command)
}

/// Runs `exe` once with each of `runs`, one after another (in `dir` if
/// given), and returns what they printed, each run headed by its command
/// line as `shown_as` would be typed and followed by how it ended.
///
/// All runs write into one pipe, and what a run printed is taken once it
/// has ended: a process it leaves behind (a container, which keeps its
/// creator's output) adds to the transcript where its lines come, as on a
/// terminal, and is not waited for.
/// A run that takes longer than `limit` is ended as [`end_hanging`] does.
pub fn transcript(
    exe: &Path,
    shown_as: &str,
    dir: Option<&Path>,
    runs: &[Vec<&str>],
    limit: Duration,
) -> io::Result<String> {
    let (read_end, write_end) = output_pipe()?;
    nix::fcntl::fcntl(&read_end, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
        .map_err(io::Error::from)?;
    let mut pipe = std::fs::File::from(read_end);
    let mut transcript = String::new();
    for args in runs {
        transcript.push_str(&format!("$ {}\n", command_line(shown_as, args)));
        let mut child = command(exe, args, dir, &write_end)?.spawn()?;
        let mut bytes = Vec::new();
        let started = Instant::now();
        let status = loop {
            // Read as it comes, so that a long output never fills the pipe;
            // keep at most OUTPUT_LIMIT of it (a lab that loops may narrate
            // without end).
            take_what_is_there(&mut pipe, &mut bytes)?;
            bytes.truncate(OUTPUT_LIMIT);
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > limit {
                end_hanging(&mut child)?;
                break None;
            }
            let mut ready = [nix::poll::PollFd::new(pipe.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut ready, nix::poll::PollTimeout::from(10u8));
        };
        // All it wrote before it ended is in the pipe now.
        take_what_is_there(&mut pipe, &mut bytes)?;
        if bytes.len() >= OUTPUT_LIMIT {
            bytes.truncate(OUTPUT_LIMIT);
            bytes.extend_from_slice(b"\n[more output, not kept]\n");
        }
        transcript.push_str(&String::from_utf8_lossy(&bytes));
        if !transcript.ends_with('\n') {
            transcript.push('\n');
        }
        transcript.push_str(&match status.map(|s| (s.code(), s)) {
            Some((Some(code), _)) => format!("[exit status {code}]\n"),
            Some((None, status)) => format!("[ended by {status}]\n"),
            None => format!("{KILLED} {} s: does it loop?]\n", limit.as_secs()),
        });
    }
    Ok(transcript)
}

/// How much of one run's output a transcript keeps.
const OUTPUT_LIMIT: usize = 4 << 20;

/// How a transcript tells that a run was ended for taking too long.
pub const KILLED: &str = "[killed after";

/// Ends a run that hangs: SIGTERM, which the examples pass on to their
/// child and then clean up after, and SIGTERM again a second later, which
/// they pass on as SIGKILL (a PID 1 ignores the first); whatever of its
/// process group is still there two seconds after that gets SIGKILL.
fn end_hanging(child: &mut Child) -> io::Result<()> {
    use nix::sys::signal::{kill, killpg, Signal};
    let leader = nix::unistd::Pid::from_raw(child.id() as i32);
    for wait in [Duration::from_secs(1), Duration::from_secs(2)] {
        if child.try_wait()?.is_some() {
            break;
        }
        let _ = kill(leader, Signal::SIGTERM);
        let deadline = Instant::now() + wait;
        while child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = killpg(leader, Signal::SIGKILL);
    child.wait()?;
    Ok(())
}

/// What of podlab's is on this machine now: its temporary directories
/// (`/tmp/podlab-*`), the mounts under them and its cgroups, as
/// `scripts/leftovers` lists them. The lab checker takes this before and
/// after each run: what is new was left behind.
pub fn ours_on_this_machine() -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let ours = |name: &std::ffi::OsStr| name.to_string_lossy().starts_with("podlab-");
    for entry in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        if ours(&entry.file_name()) {
            found.insert(entry.path());
        }
    }
    // Mounts left elsewhere under a name of ours (the old root of a lab
    // that never detached it, say) are listed by where they are.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for mount_point in mounts.lines().filter_map(|line| line.split(' ').nth(1)) {
        if mount_point.contains("/podlab-") && !mount_point.starts_with("/tmp/podlab-") {
            found.insert(PathBuf::from(mount_point));
        }
    }
    let hierarchies = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|e| e.path());
    for tree in std::iter::once(PathBuf::from("/sys/fs/cgroup")).chain(hierarchies) {
        for entry in std::fs::read_dir(&tree).into_iter().flatten().flatten() {
            if ours(&entry.file_name()) && entry.path().is_dir() {
                found.insert(entry.path());
            }
        }
    }
    found
}

/// Removes what [`ours_on_this_machine`] found and a run left behind: a
/// cgroup as level 3 removes its own (thawed, its processes killed, in
/// every tree); a directory's mounts are detached before it is removed,
/// never deleted through. Quietly, and as far as it can.
pub fn sweep(left: &BTreeSet<PathBuf>) {
    crate::narrate::set_quiet(true);
    for path in left {
        if path.starts_with("/sys/fs/cgroup") {
            // Level 3's removal: thawed, its processes killed, every tree.
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if let Ok(version) = crate::cgroups::Version::of_this_machine() {
                drop(crate::cgroups::Cgroup::existing(version, &name, &[]));
            }
        } else if path.starts_with("/tmp") {
            let _ = crate::kernel::remove_dir_all(path);
        } else {
            let _ = crate::kernel::umount_detach(path);
        }
    }
}

/// A pipe for a run's output, closed on exec: tests run side by side, and
/// a pipe of another test's must not leak into our run (it would hold that
/// test's pipe open, and shift our run's file descriptor numbers).
fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Reads what a non-blocking pipe holds now, without waiting for more.
fn take_what_is_there(pipe: &mut std::fs::File, bytes: &mut Vec<u8>) -> io::Result<()> {
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Replaces what differs from run to run with a fixed placeholder:
/// temporary names and the host's process ids.
pub fn normalize(text: &str) -> String {
    // Temporary directories and cgroups: podlab- and six random characters.
    static TEMP_NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"/podlab-[A-Za-z0-9]{6}(?-u:\b)").unwrap());
    // The host's process ids, where the narration and a runtime's state
    // tell them (0 in cgroup.procs is "me", the same in every run).
    static HOST_PID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(/proc/|child pid |--join |"pid": |kill\(|pidfd_open\(|pidfd of |cgroup\.procs", ")[1-9][0-9]*(?-u:\b)"#,
        )
        .unwrap()
    });
    // When a container was created, as RFC 3339 writes it.
    static TIME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z").unwrap()
    });
    // Descriptors from 3 up: which numbers are free depends on what the
    // caller left open (0, 1 and 2 are stdio, the same everywhere).
    static FD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"/proc/self/fd/([3-9]|[1-9][0-9]+)(?-u:\b)").unwrap());
    // A runtime's record holds a pid and times, so its size varies too.
    static STATE_SIZE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(/state\.json", )[0-9]+ bytes"#).unwrap());
    // Digests: a layer's depends on the bytes of the machine's busybox; a
    // layer being unpacked is named by its digest and our pid.
    static DIGEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9a-f]{64}(\.[0-9]+)?").unwrap());
    // Ports on 127.0.0.1: a registry's, chosen free for each run.
    static PORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"127\.0\.0\.1:[0-9]+").unwrap());
    // A blob being received is named by our pid; an upload by the
    // registry's random id.
    static PARTIAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\.partial\.[0-9]+").unwrap());
    // Where the examples were built: the checkout's, the lab's, a copy's.
    static EXAMPLES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"[^\s"]*/examples/"#).unwrap());
    // A device's MAC address, random when the kernel makes the device.
    static MAC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b").unwrap());
    // A thread's own namespace, named by its id.
    static TASK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/task/[0-9]+/").unwrap());
    static UUID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap()
    });
    let text = PORT.replace_all(text, "127.0.0.1:[port]");
    let text = PARTIAL.replace_all(&text, ".partial.[pid]");
    let text = TASK.replace_all(&text, "/task/[tid]/");
    let text = EXAMPLES.replace_all(&text, "[examples]/");
    let text = MAC.replace_all(&text, |found: &regex::Captures| match &found[0] {
        // loopback's and broadcast's are the same everywhere
        fixed @ ("00:00:00:00:00:00" | "ff:ff:ff:ff:ff:ff") => fixed.to_string(),
        _ => "[mac]".to_string(),
    });
    let text = UUID.replace_all(&text, "[uuid]");
    let text = HOST_PID.replace_all(&text, "${1}[pid]");
    let text = DIGEST.replace_all(&text, |found: &regex::Captures| {
        if found.get(1).is_some() { "[digest].[pid]" } else { "[digest]" }.to_string()
    });
    let text = TIME.replace_all(&text, "[time]");
    let text = STATE_SIZE.replace_all(&text, "${1}[n] bytes");
    let text = FD.replace_all(&text, "/proc/self/fd/[fd]");
    TEMP_NAME
        .replace_all(&text, |found: &regex::Captures| match &found[0] {
            template @ "/podlab-XXXXXX" => template.to_string(),
            _ => "/podlab-[id]".to_string(),
        })
        .into_owned()
}

/// A command line as a reader would type it, quoting what the shell would split.
pub fn command_line(program: &str, args: &[&str]) -> String {
    let quote = |arg: &&str| {
        let plain =
            !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
        if plain {
            arg.to_string()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    std::iter::once(program.to_string()).chain(args.iter().map(quote)).collect::<Vec<_>>().join(" ")
}

/// The snapshot's name: `<example>__<scenario>`, and `.<variant>` for a
/// level whose transcripts depend on the machine.
pub fn snapshot_name(level: &Level, scenario: &Scenario) -> String {
    match (level.variant)() {
        Some(variant) => format!("{}__{}.{variant}", level.example, scenario.name),
        None => format!("{}__{}", level.example, scenario.name),
    }
}

/// Where the reference transcript of a scenario is recorded.
pub fn snapshot_file(level: &Level, scenario: &Scenario) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{}.snap", snapshot_name(level, scenario)))
}

/// The recorded transcript: the snapshot file without insta's header.
pub fn recorded(level: &Level, scenario: &Scenario) -> io::Result<String> {
    let file = snapshot_file(level, scenario);
    let text = std::fs::read_to_string(&file)?;
    let body = text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(_header, body)| body)
        .ok_or_else(|| io::Error::other(format!("{} has no snapshot header", file.display())))?;
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_hides_temporary_names_but_not_the_template() {
        let text = r#"mkdtemp("/tmp/podlab-XXXXXX") = "/tmp/podlab-a1B2c3"; /tmp/podlab-a1B2c3/rootfs"#;
        assert_eq!(
            normalize(text),
            r#"mkdtemp("/tmp/podlab-XXXXXX") = "/tmp/podlab-[id]"; /tmp/podlab-[id]/rootfs"#
        );
        assert_eq!(
            normalize("/sys/fs/cgroup/pids/podlab-Ab12Cd/pids.max"),
            "/sys/fs/cgroup/pids/podlab-[id]/pids.max"
        );
        // Names of other shapes are not ours to hide: the rootfs's marker...
        assert_eq!(normalize("/tmp/x/rootfs/.podlab-rootfs"), "/tmp/x/rootfs/.podlab-rootfs");
        // ...nor a test's scratch directory.
        assert_eq!(normalize("/tmp/podlab-test-keep-1-0"), "/tmp/podlab-test-keep-1-0");
    }

    #[test]
    fn normalize_hides_host_pids_where_they_are_told() {
        assert_eq!(
            normalize(r#"clone(CLONE_NEWPID, SIGCHLD) = child pid 4242; write("/proc/4242/uid_map")"#),
            r#"clone(CLONE_NEWPID, SIGCHLD) = child pid [pid]; write("/proc/[pid]/uid_map")"#
        );
        assert_eq!(
            normalize(r#"kill(4242, SIGKILL); "pid": 4242, "created": "2026-11-23T21:56:13.975845724Z""#),
            r#"kill([pid], SIGKILL); "pid": [pid], "created": "[time]""#
        );
        assert_eq!(normalize(r#"write("/x/cgroup.procs", "4242")"#), r#"write("/x/cgroup.procs", "[pid]")"#);
        assert_eq!(
            normalize(r#"write("/run/x/c1/state.json", 196 bytes)"#),
            r#"write("/run/x/c1/state.json", [n] bytes)"#
        );
        assert_eq!(
            normalize(r#"open("/proc/self/fd/12", O_WRONLY)"#),
            r#"open("/proc/self/fd/[fd]", O_WRONLY)"#
        );
        assert_eq!(
            normalize(r#"symlink("/proc/self/fd/2", "/dev/stderr")"#),
            r#"symlink("/proc/self/fd/2", "/dev/stderr")"#
        );
        // A pid inside the container is what the reader should see, and 0 is "me".
        assert_eq!(normalize(r#"write("/x/cgroup.procs", "0")"#), r#"write("/x/cgroup.procs", "0")"#);
        assert_eq!(normalize("    1 root     ps"), "    1 root     ps");
        assert_eq!(normalize("/proc/self/ns/uts"), "/proc/self/ns/uts");
    }

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        assert_eq!(command_line("01-chroot", &["ls", "/"]), "01-chroot ls /");
        assert_eq!(command_line("x", &["sh", "-c", "cd ..; pwd"]), "x sh -c 'cd ..; pwd'");
        assert_eq!(command_line("x", &["it's", ""]), r"x 'it'\''s' ''");
    }
}
