//! Scenarios: the runs of each level's example that the snapshot tests
//! record and the lab checker replays against a student's code.
//!
//! A scenario is a command line. Running one captures stdout and stderr
//! through one pipe, so the transcript holds the program's output and its
//! narration in the order a terminal shows them; what varies between runs
//! (temporary names) is normalised. The recorded transcripts live in
//! `tests/snapshots/` and are what the book shows.

use std::io::{self, Read};
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
    /// The file the student edits, relative to the repository.
    pub lab_file: &'static str,
    pub scenarios: &'static [Scenario],
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
}

/// A run beside a scenario. In the scenario's `args`, `{pid}` stands for
/// the host's pid of its child once that child runs `ready_when`.
pub struct Alongside {
    pub args: &'static [&'static str],
    /// The program (as /proc/PID/comm names it) its child becomes when ready.
    pub ready_when: &'static str,
}

/// How long one run may take before it is killed (a lab that hangs).
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Runs `scenario` with the example binary `exe` and returns its transcript,
/// as it came: [`normalize`] it before comparing it with a recorded one.
pub fn run(exe: &Path, level: &Level, scenario: &Scenario) -> io::Result<String> {
    let Some(alongside) = &scenario.alongside else {
        return transcript(exe, level.example, scenario.args);
    };
    let mut companion = Companion::start(exe, alongside.args)?;
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
    let args: Vec<&str> =
        scenario.args.iter().map(|arg| if *arg == "{pid}" { pid.as_str() } else { arg }).collect();
    transcript(exe, level.example, &args)
}

/// The run alongside a scenario, its output collected; ended (SIGTERM, then
/// SIGTERM again, which the examples pass on as SIGKILL) when dropped.
struct Companion {
    process: Child,
    output: Option<JoinHandle<Vec<u8>>>,
}

impl Companion {
    fn start(exe: &Path, args: &[&str]) -> io::Result<Companion> {
        let (process, output) = spawn_merged(exe, args)?;
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

/// Starts `exe` with `args`, its stdout and stderr into one pipe, read to
/// the end by a thread: one stream, in the order a terminal would show it.
fn spawn_merged(exe: &Path, args: &[&str]) -> io::Result<(Child, JoinHandle<Vec<u8>>)> {
    let (read_end, write_end) = nix::unistd::pipe().map_err(io::Error::from)?;
    let mut command = Command::new(exe);
    command
        .args(args)
        // Temporary names in the transcripts start with /tmp/podlab-.
        .env("TMPDIR", "/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end.try_clone()?))
        .stderr(Stdio::from(write_end));
    let child = command.spawn()?;
    // Our copies of the write end must go, or the read never ends.
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::fs::File::from(read_end).read_to_end(&mut bytes);
        bytes
    });
    Ok((child, reader))
}

/// Runs `exe` with `args` and returns its transcript, headed by the command
/// line as `shown_as` would be typed.
pub fn transcript(exe: &Path, shown_as: &str, args: &[&str]) -> io::Result<String> {
    let (mut child, reader) = spawn_merged(exe, args)?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > TIME_LIMIT {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let bytes = reader.join().map_err(|_| io::Error::other("the output reader panicked"))?;

    let mut transcript = format!("$ {}\n", command_line(shown_as, args));
    transcript.push_str(&String::from_utf8_lossy(&bytes));
    if !transcript.ends_with('\n') {
        transcript.push('\n');
    }
    transcript.push_str(&match status.map(|s| (s.code(), s)) {
        Some((Some(code), _)) => format!("[exit status {code}]\n"),
        Some((None, status)) => format!("[ended by {status}]\n"),
        None => format!("[killed after {} s: it did not end]\n", TIME_LIMIT.as_secs()),
    });
    Ok(transcript)
}

/// Replaces what differs from run to run with a fixed placeholder:
/// temporary names and the host's process ids.
pub fn normalize(text: &str) -> String {
    // Temporary directories and cgroups: podlab- and six random characters.
    static TEMP_NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"/podlab-[A-Za-z0-9]{6}(?-u:\b)").unwrap());
    // The host's process ids, where the narration tells them.
    static HOST_PID: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(/proc/|child pid |--join )[0-9]+(?-u:\b)").unwrap());
    let text = HOST_PID.replace_all(text, "${1}[pid]");
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
        // A pid inside the container is what the reader should see.
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
