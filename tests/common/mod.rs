//! What every level's tests share: finding the example binaries, deciding
//! whether a test can run here, recording scenarios as snapshots, and
//! scratch directories that clean up after themselves.
#![allow(dead_code)] // each test file uses its own part of this

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use std::sync::atomic::{AtomicUsize, Ordering};

use podlab::scenario::{self, Level};

/// The built example `name`, built first if need be: `cargo test` builds
/// the examples, but `cargo test --test NAME` does not, and would run stale
/// ones. Built once per test binary, with the tests' profile and lab features.
pub fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let mut dir = std::env::current_exe().expect("the test binary knows its path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    BUILT.call_once(|| {
        let features: Vec<&str> = [
            (cfg!(feature = "lab-01"), "lab-01"),
            (cfg!(feature = "lab-02"), "lab-02"),
            (cfg!(feature = "lab-03"), "lab-03"),
            (cfg!(feature = "lab-04"), "lab-04"),
            (cfg!(feature = "lab-05"), "lab-05"),
            (cfg!(feature = "lab-06"), "lab-06"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--examples", "--manifest-path", env!("CARGO_MANIFEST_PATH")]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        if !features.is_empty() {
            build.args(["--features", &features.join(",")]);
        }
        assert!(build.status().expect("cargo runs").success(), "the examples do not build");
    });
    dir.join("examples").join(name)
}

/// Whether a test that needs `what` can run. Under CI=true a test that
/// cannot run fails, saying why; elsewhere it says why it skips.
pub fn can_run(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run on CI: {why}");
    }
    eprintln!("skipped {test}: {why}");
    false
}

/// Root and busybox-static: what levels 1 and up need.
pub fn needs_root_and_busybox(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("it needs root (run the tests as root, as scripts/test does)".to_string())
    } else if !Path::new(podlab::chroot::BUSYBOX).exists() {
        Some("busybox-static is not installed (apt-get install busybox-static)".to_string())
    } else {
        None
    };
    can_run(test, missing)
}

/// Runs a level's scenario with the reference example and compares its
/// transcript with the recorded snapshot.
pub fn check_scenario(level: &Level, name: &str) {
    let scenario = level
        .scenarios
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("level {} has no scenario {name:?}", level.number));
    if !needs_root_and_busybox(name) {
        return;
    }
    let transcript = scenario::run(&example(level.example), level, scenario).expect("the example runs");
    assert_transcript(&scenario::snapshot_name(level, scenario), &transcript);
}

/// Checks that a run left no temporary directory behind, then compares its
/// normalised transcript with the snapshot `name`.
pub fn assert_transcript(name: &str, transcript: &str) {
    let leftovers = leftovers_named_in(transcript);
    assert!(leftovers.is_empty(), "{name} left {leftovers:?} behind:\n{transcript}");
    let transcript = scenario::normalize(transcript);
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, transcript);
    });
}

/// Declares one test per scenario of a level, and a test that no scenario
/// of the level goes without one.
#[macro_export]
macro_rules! scenario_tests {
    ($level:expr; $($test:ident => $name:literal),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                common::check_scenario(&$level, $name);
            }
        )+

        #[test]
        fn every_scenario_has_a_test() {
            let tested = [$($name),+];
            for scenario in $level.scenarios {
                assert!(tested.contains(&scenario.name), "scenario {:?} has no test", scenario.name);
            }
        }
    };
}

/// A directory for one test, named uniquely, removed when dropped (also
/// when the test fails). Its name starts with /tmp/podlab-test- so that the
/// leftover check at the end of the test run finds it if anything leaks.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/podlab-test-{test}-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).expect("a fresh scratch directory");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What of ours the narration in `output` names that still exists: the
/// temporary directories (/tmp/podlab-*) and cgroups (.../podlab-*) that
/// the examples make and tell as they make them.
pub fn leftovers_named_in(output: &str) -> Vec<String> {
    let mut found: Vec<String> = output
        .split('"')
        .filter(|word| !word.contains("XXXXXX"))
        .filter_map(|word| {
            if word.starts_with("/tmp/podlab-") {
                Some(word.split('/').take(3).collect::<Vec<_>>().join("/"))
            } else if word.starts_with("/sys/fs/cgroup/") {
                let end = word.find("/podlab-")? + 1;
                let name_end = word[end..].find('/').map_or(word.len(), |i| end + i);
                Some(word[..name_end].to_string())
            } else {
                None
            }
        })
        .filter(|dir| Path::new(dir).exists())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// How a program run by a test ended, and what it printed.
pub struct Outcome {
    /// The exit code, or 128 + the signal that ended it, as a shell says.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(command: &mut Command) -> Outcome {
    let output = command.stdin(Stdio::null()).output().expect("the program starts");
    Outcome {
        code: output.status.code().or(output.status.signal().map(|s| 128 + s)),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs an example as the unprivileged user nobody, from a copy it can
/// surely execute wherever the repository is.
pub fn run_as_nobody(example_name: &str, args: &[&str]) -> Outcome {
    let scratch = Scratch::new("not-root");
    let binary = scratch.path().join(example_name);
    std::fs::copy(example(example_name), &binary).unwrap();
    std::fs::set_permissions(scratch.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    run(Command::new(&binary).args(args).uid(65534).gid(65534))
}

/// Ends a running example if the test fails before it does; SIGTERM, so
/// that the example still cleans up after itself, then SIGKILL for a PID 1
/// that ignores it.
pub struct TerminateOnDrop(pub std::process::Child);

impl Drop for TerminateOnDrop {
    fn drop(&mut self) {
        for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGTERM] {
            if let Ok(None) = self.0.try_wait() {
                let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
                let _ = nix::sys::signal::kill(pid, signal);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let _ = self.0.wait();
    }
}

/// How a run that a test killed ended: its status, all it narrated, and
/// what of ours that narration named (which should be gone by now).
pub struct Killed {
    pub status: std::process::ExitStatus,
    pub narration: String,
    pub made: Vec<String>,
}

/// Runs `example` with `args` until its child runs `program`, then sends
/// each of `signals` to the example itself (not the child), 200 ms apart,
/// and waits for it to end.
pub fn kill_while_running(example_name: &str, args: &[&str], program: &str, signals: &[Signal]) -> Killed {
    use std::io::{BufRead, BufReader, Read};
    let mut parent = TerminateOnDrop(
        Command::new(example(example_name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let parent = &mut parent.0;
    let mut stderr = BufReader::new(parent.stderr.take().unwrap());
    let mut narration = String::new();
    let started_program = format!("execve(\"/bin/{program}\"");
    while !narration.contains(&started_program) {
        assert_ne!(stderr.read_line(&mut narration).unwrap(), 0, "ended early:\n{narration}");
    }
    let made = leftovers_named_in(&narration);
    child_running(parent.id(), program);
    let pid = nix::unistd::Pid::from_raw(parent.id() as i32);
    for signal in signals {
        nix::sys::signal::kill(pid, *signal).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let status = parent.wait().unwrap();
    stderr.read_to_string(&mut narration).unwrap();
    Killed { status, narration, made }
}

/// The pid of the only child of `parent`, once that child runs `program`.
pub fn child_running(parent: u32, program: &str) -> u32 {
    let children = format!("/proc/{parent}/task/{parent}/children");
    let started = std::time::Instant::now();
    loop {
        let child = std::fs::read_to_string(&children).unwrap_or_default();
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.trim())).unwrap_or_default();
        if comm.trim() == program {
            return child.trim().parse().unwrap();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no child of {parent} became {program}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
