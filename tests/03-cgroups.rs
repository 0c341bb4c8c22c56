//! Level 3: cgroups. The scenarios' transcripts are snapshots, one set per
//! cgroup version (this machine records its own; the v2 set comes from the
//! VM test in tests/cgroup-v2-vm.rs). The other tests check the kernel's
//! own counters and that no group is ever left behind.

mod common;

use nix::sys::signal::Signal;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{example, needs_root_and_busybox, run};
use podlab::cgroups::{Version, LEVEL};

scenario_tests!(LEVEL;
    memory => "memory",
    pids => "pids",
    cpu => "cpu",
    path_with_dots => "path-with-dots",
    bad_size => "bad-size",
);

fn ours() -> Command {
    Command::new(example("03-cgroups"))
}

/// The figure `label` from `--stats` output.
fn figure(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {stdout}"))
}

/// A busy loop under a 0.2 CPU limit: the kernel throttled it, and the CPU
/// time it counted is well under the wall-clock time (unlimited, a busy
/// loop would use about all of it). Kernel counters, not our own timing.
#[test]
fn a_busy_loop_gets_about_its_share() {
    if !needs_root_and_busybox("a_busy_loop_gets_about_its_share") {
        return;
    }
    let outcome = run(ours().args([
        "-q",
        "--stats",
        "--cpu",
        "0.2",
        "sh",
        "-c",
        "timeout 2 sh -c 'while :; do :; done'; true",
    ]));
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let cpu = figure(&outcome.stdout, "CPU time (ns)");
    let wall = figure(&outcome.stdout, "wall-clock time (ns)");
    assert!(figure(&outcome.stdout, "periods throttled") > 0, "{}", outcome.stdout);
    assert!(cpu > 0 && cpu < wall / 2, "0.2 CPU used {cpu} ns in {wall} ns:\n{}", outcome.stdout);
}

/// The memory limit holds: the OOM killer ended the shell, and the peak the
/// kernel counted is not above the limit.
#[test]
fn memory_peaks_at_the_limit_and_no_further() {
    if !needs_root_and_busybox("memory_peaks_at_the_limit_and_no_further") {
        return;
    }
    let outcome = run(ours().args([
        "-q",
        "--stats",
        "--memory",
        "16M",
        "awk",
        "BEGIN { s = \"x\"; while (1) s = s s }",
    ]));
    assert_eq!(outcome.code, Some(128 + 9), "{}", outcome.stderr);
    assert!(figure(&outcome.stdout, "OOM kills") >= 1, "{}", outcome.stdout);
    assert!(figure(&outcome.stdout, "memory peak (bytes)") <= 16 << 20, "{}", outcome.stdout);
}

/// A fork loop stops at the limit inside; outside, forks go on as usual.
#[test]
fn a_fork_loop_stops_at_the_limit_and_the_host_is_fine() {
    if !needs_root_and_busybox("a_fork_loop_stops_at_the_limit") {
        return;
    }
    let outcome =
        run(ours().args(["-q", "--stats", "--pids", "5", "sh", "-c", "while true; do sleep 5 & done"]));
    assert_eq!(outcome.code, Some(2), "the shell gives up when fork fails: {}", outcome.stderr);
    assert!(outcome.stderr.contains("can't fork"), "{}", outcome.stderr);
    assert!(figure(&outcome.stdout, "forks refused") >= 1, "{}", outcome.stdout);
    assert!(Command::new("true").status().unwrap().success());
}

/// The group named for a cgroup that exists already: refused, and nothing of
/// it is touched or made.
#[test]
fn refuses_a_cgroup_that_exists_and_leaves_it_alone() {
    if !needs_root_and_busybox("refuses_a_cgroup_that_exists") {
        return;
    }
    let version = Version::of_this_machine().unwrap();
    let name = format!("podlab-test-taken-{}", std::process::id());
    let taken = match version {
        Version::V1 => PathBuf::from("/sys/fs/cgroup/pids").join(&name),
        Version::V2 => PathBuf::from("/sys/fs/cgroup").join(&name),
    };
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    std::fs::create_dir(&taken).unwrap();
    let _guard = Remove(taken.clone());

    let outcome = run(ours().args(["--cgroup", &name, "true"]));
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("exists already"), "{}", outcome.stderr);
    assert!(taken.exists());
    if version == Version::V1 {
        assert!(
            !Path::new("/sys/fs/cgroup/memory").join(&name).exists(),
            "another controller's group was made"
        );
    }
    assert!(common::leftovers_named_in(&outcome.stderr).is_empty(), "{}", outcome.stderr);
}

/// Killed while its command runs, the example passes the signal on, then
/// removes the group and the rootfs.
#[test]
fn cleans_up_when_killed() {
    if !needs_root_and_busybox("cleans_up_when_killed") {
        return;
    }
    let killed = common::kill_while_running(
        "03-cgroups",
        &["--pids", "10", "sleep", "30"],
        "sleep",
        &[Signal::SIGTERM],
    );
    assert_eq!(killed.status.code(), Some(128 + 15), "{}", killed.narration);
    assert!(killed.made.iter().any(|d| d.starts_with("/sys/fs/cgroup/")), "{:?}", killed.made);
    let left: Vec<_> = killed.made.iter().filter(|d| Path::new(d).exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn refuses_without_root() {
    if !needs_root_and_busybox("refuses_without_root") {
        return;
    }
    let outcome = common::run_as_nobody("03-cgroups", &["--memory", "16M", "true"]);
    assert_eq!(outcome.code, Some(2));
    assert_eq!(
        outcome.stderr,
        "03-cgroups: this needs root (making a cgroup and moving a process into it needs root): run it again with sudo, or as root in the course VM\n"
    );
}

#[test]
fn refuses_limits_that_do_not_parse() {
    if !needs_root_and_busybox("refuses_limits_that_do_not_parse") {
        return;
    }
    for (args, says) in [
        (&["--pids", "0", "true"][..], "--pids \"0\" is not a number of processes"),
        (&["--cpu", "half", "true"][..], "--cpu \"half\" is not a number of CPUs"),
        (&["--cpu", "0.001", "true"][..], "--cpu \"0.001\" is too small"),
        (&["--memory", "99999999999G", "true"][..], "--memory \"99999999999G\" is not a size"),
    ] {
        let outcome = run(ours().args(args));
        assert_eq!(outcome.code, Some(2), "{args:?}");
        assert!(outcome.stderr.starts_with(&format!("03-cgroups: {says}")), "{args:?}: {}", outcome.stderr);
        assert_eq!(outcome.stderr.lines().count(), 1, "{args:?}: made something:\n{}", outcome.stderr);
    }
}

/// A --cgroup with ".." stays inside the cgroup tree: `../../tmp/x` is the
/// group tmp/x there, never the directory /tmp/x; the groups made above it
/// go with it.
#[test]
fn a_cgroup_path_cannot_leave_the_tree() {
    if !needs_root_and_busybox("a_cgroup_path_cannot_leave_the_tree") {
        return;
    }
    let scratch = common::Scratch::new("cgroup-escape");
    let outside = scratch.path().join("escape");
    let name = format!("../../../../..{}/leaf", outside.display());
    let outcome = run(ours().args(["--pids", "10", "--cgroup", &name, "true"]));
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    assert!(!outside.exists(), "{} was made outside the cgroup tree", outside.display());
    let inside = format!("{}/leaf", outside.display().to_string().trim_start_matches('/'));
    assert!(outcome.stderr.contains(&inside), "the group is not {inside:?} in the tree:\n{}", outcome.stderr);
    // Its own groups only: the tests run side by side.
    let left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|tree| tree.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .map(|tree| tree.join(inside.trim_end_matches("/leaf")))
        .filter(|dir| dir.exists())
        .collect();
    assert!(left.is_empty(), "the groups made above the leaf were left: {left:?}");
}

/// The largest limits parse and run without a panic in the report.
#[test]
fn the_largest_memory_limit_is_reported() {
    if !needs_root_and_busybox("the_largest_memory_limit_is_reported") {
        return;
    }
    let outcome = run(ours().args(["--quiet", "--memory", "18446744073709551615", "true"]));
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    assert!(outcome.stdout.starts_with("memory: limit "), "{}", outcome.stdout);
}
