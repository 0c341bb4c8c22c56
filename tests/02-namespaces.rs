//! Level 2: namespaces. The scenarios' transcripts are snapshots (and the
//! book's listings); the other tests compare what a user sees inside with
//! util-linux's unshare and nsenter (each run first), and check that the
//! host is left as it was.

mod common;

use nix::sys::signal::Signal;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{example, needs_root_and_busybox, run, Scratch, TerminateOnDrop};
use podlab::namespaces::LEVEL;

scenario_tests!(LEVEL;
    uts => "uts",
    pid => "pid",
    mount => "mount",
    escape => "escape",
    ipc => "ipc",
    net => "net",
    user => "user",
    all => "all",
    join => "join",
    no_such_process => "no-such-process",
    long_hostname => "long-hostname",
);

fn ours() -> Command {
    Command::new(example("02-namespaces"))
}

/// A rootfs built once by level 1, kept in a scratch directory, for the
/// peer and for us to share.
fn shared_rootfs(scratch: &Scratch) -> PathBuf {
    let rootfs = scratch.path().join("rootfs");
    let built = run(Command::new(example("01-chroot")).arg("--rootfs").arg(&rootfs).args(["-q", "true"]));
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    rootfs
}

/// Runs the peer's command line, then ours, in the same rootfs, and asserts
/// the same output and exit status.
fn same_as_peer(rootfs: &Path, peer: &[&str], our_options: &[&str], command: &[&str]) {
    let peer_outcome =
        run(Command::new(peer[0]).args(&peer[1..]).arg(format!("--root={}", rootfs.display())).args(command));
    let our_outcome = run(ours().arg("--rootfs").arg(rootfs).arg("-q").args(our_options).args(command));
    assert_eq!(
        (our_outcome.code, &our_outcome.stdout),
        (peer_outcome.code, &peer_outcome.stdout),
        "{our_options:?} {command:?}: ours (left) and {peer:?} (right) differ; stderr: ours {:?}, theirs {:?}",
        our_outcome.stderr,
        peer_outcome.stderr
    );
}

#[test]
fn each_namespace_looks_as_with_unshare() {
    if !needs_root_and_busybox("each_namespace_looks_as_with_unshare") {
        return;
    }
    let scratch = Scratch::new("vs-unshare");
    let rootfs = shared_rootfs(&scratch);
    same_as_peer(
        &rootfs,
        &["unshare", "--uts"],
        &["--uts", "--hostname", "box"],
        &["sh", "-c", "hostname box; hostname"],
    );
    same_as_peer(&rootfs, &["unshare", "--pid", "--fork", "--mount-proc"], &["--pid", "--mount"], &["ps"]);
    same_as_peer(
        &rootfs,
        &["unshare", "--net"],
        &["--net"],
        &["sh", "-c", "ip link set lo up; ip link; ip addr show lo"],
    );
    // The same map on both sides: unshare's --map-root-user maps root to root.
    same_as_peer(
        &rootfs,
        &["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"],
        &["--user", "--uid-map", "0:0:1", "--pid", "--mount"],
        &["sh", "-c", "id; touch /tmp/made-inside; stat -c '%u:%g %n' /tmp/made-inside /bin/busybox; ps"],
    );
    same_as_peer(
        &rootfs,
        &["unshare", "--pid", "--fork", "--mount-proc"],
        &["--pid", "--mount"],
        &["sh", "-c", "exit 3"],
    );
}

/// A System V shared memory segment on the host is seen without an IPC
/// namespace and not with one, by unshare's process and ours alike.
#[test]
fn an_ipc_namespace_hides_the_hosts_objects_as_with_unshare() {
    if !needs_root_and_busybox("an_ipc_namespace_hides_the_hosts_objects") {
        return;
    }
    struct Segment(i32);
    impl Drop for Segment {
        fn drop(&mut self) {
            // SAFETY: removes the segment this test made, by its id.
            unsafe { nix::libc::shmctl(self.0, nix::libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
    // SAFETY: makes a new private 4 KiB segment; no memory is touched.
    let id = unsafe { nix::libc::shmget(nix::libc::IPC_PRIVATE, 4096, nix::libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "shmget failed");
    let _segment = Segment(id);
    let scratch = Scratch::new("ipc");
    let rootfs = shared_rootfs(&scratch);
    let ours_shows = |options: &[&str]| {
        let outcome = run(ours().arg("--rootfs").arg(&rootfs).arg("-q").args(options).args([
            "sh",
            "-c",
            &format!("grep -c ' {id} ' /proc/sysvipc/shm"),
        ]));
        outcome.stdout.trim().to_string()
    };
    let theirs_shows = |options: &[&str]| {
        let mut command = Command::new("unshare");
        command.args(options).args(["--mount-proc", &format!("--root={}", rootfs.display())]);
        let outcome = run(command.args(["sh", "-c", &format!("grep -c ' {id} ' /proc/sysvipc/shm")]));
        outcome.stdout.trim().to_string()
    };
    assert_eq!(
        (theirs_shows(&["--pid", "--fork"]), ours_shows(&["--pid", "--mount"])),
        ("1".into(), "1".into())
    );
    assert_eq!(
        (theirs_shows(&["--ipc", "--pid", "--fork"]), ours_shows(&["--ipc", "--pid", "--mount"])),
        ("0".into(), "0".into())
    );
}

#[test]
fn the_hosts_hostname_is_untouched() {
    if !needs_root_and_busybox("the_hosts_hostname_is_untouched") {
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let outcome = run(ours().args(["-q", "--uts", "--hostname", "not-the-host", "hostname"]));
    assert_eq!(outcome.stdout, "not-the-host\n");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), before);
}

/// Root inside a user namespace is 100000 out here: a file it makes is
/// owned by 100000 on the host's disk.
#[test]
fn root_inside_a_user_namespace_is_an_ordinary_id_outside() {
    if !needs_root_and_busybox("root_inside_a_user_namespace") {
        return;
    }
    let scratch = Scratch::new("userns");
    // Others may pass through the scratch directory, as the mapped root must.
    std::fs::set_permissions(scratch.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let rootfs = scratch.path().join("rootfs");
    let outcome = run(ours().arg("--rootfs").arg(&rootfs).args([
        "-q",
        "--user",
        "--pid",
        "--mount",
        "touch",
        "/tmp/mine",
    ]));
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(rootfs.join("tmp/mine")).unwrap());
    assert_eq!(owner, 100000);
}

/// Joining a running container: ours and nsenter (run first) land in the
/// very same namespaces, so they see the same host name and namespace ids.
#[test]
fn joining_lands_where_nsenter_does() {
    if !needs_root_and_busybox("joining_lands_where_nsenter_does") {
        return;
    }
    let container = TerminateOnDrop(
        ours()
            .args(["-q", "--all", "--hostname", "joined", "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = common::child_running(container.0.id(), "sleep").to_string();
    let look = "hostname; readlink /proc/self/ns/uts /proc/self/ns/ipc /proc/self/ns/net /proc/self/ns/pid /proc/self/ns/mnt; ls /";
    let theirs = run(Command::new("nsenter").args(["--target", &pid, "--all", "sh", "-c", look]));
    let mine = run(ours().args(["-q", "--join", &pid, "sh", "-c", look]));
    assert_eq!((mine.code, &mine.stdout), (theirs.code, &theirs.stdout), "{}", mine.stderr);
    assert!(mine.stdout.starts_with("joined\n"), "{}", mine.stdout);

    // The container's PID 1 ignores SIGTERM, as a PID 1 without a handler
    // does; the second signal is passed on as SIGKILL.
    drop(container);
}

/// Killed while its container runs, the example ends the container (a PID 1
/// ignores the first SIGTERM; the second kills it), then removes the rootfs
/// and leaves no mount behind.
#[test]
fn cleans_up_when_killed() {
    if !needs_root_and_busybox("cleans_up_when_killed") {
        return;
    }
    let killed = common::kill_while_running(
        "02-namespaces",
        &["--all", "sleep", "30"],
        "sleep",
        &[Signal::SIGTERM, Signal::SIGTERM],
    );
    assert_eq!(killed.status.code(), Some(128 + 9), "{}", killed.narration);
    assert!(killed.narration.contains("waitpid(child) = killed by SIGKILL"), "{}", killed.narration);
    assert!(killed.narration.contains("kill(child, SIGTERM): passed on"), "{}", killed.narration);
    assert!(killed.narration.contains("kill(child, SIGKILL): a second signal came"), "{}", killed.narration);
    assert_eq!(killed.made.len(), 1, "{}", killed.narration);
    assert!(!Path::new(&killed.made[0]).exists(), "{} was left behind", killed.made[0]);
    assert!(podlab::kernel::mounts_under(Path::new(&killed.made[0])).unwrap().is_empty());
}

#[test]
fn refuses_without_root() {
    if !needs_root_and_busybox("refuses_without_root") {
        return;
    }
    let outcome = common::run_as_nobody("02-namespaces", &["--uts", "hostname"]);
    assert_eq!(outcome.code, Some(2));
    assert_eq!(
        outcome.stderr,
        "02-namespaces: this needs root (clone(2) with new namespaces needs CAP_SYS_ADMIN): run it again with sudo, or as root in the course VM\n"
    );
}

#[test]
fn refuses_a_user_namespace_that_could_not_mount_proc() {
    if !needs_root_and_busybox("refuses_a_user_namespace_that_could_not_mount_proc") {
        return;
    }
    let outcome = run(ours().args(["--user", "--mount", "true"]));
    assert_eq!(outcome.code, Some(2));
    assert_eq!(
        outcome.stderr,
        "02-namespaces: root of a user namespace may mount a /proc only for a PID namespace of its own: add --pid\n"
    );
}

#[test]
fn refuses_a_malformed_id_map() {
    if !needs_root_and_busybox("refuses_a_malformed_id_map") {
        return;
    }
    let outcome = run(ours().args(["--user", "--uid-map", "0:x:1", "true"]));
    assert_eq!(outcome.code, Some(2));
    assert!(outcome.stderr.contains("is not INSIDE:OUTSIDE:COUNT"), "{}", outcome.stderr);
}

/// When PID 1 of a PID namespace exits, the kernel kills every other
/// process in the namespace: the shell's background sleep does not outlive it.
#[test]
fn when_pid_1_exits_the_rest_of_its_namespace_is_killed() {
    if !needs_root_and_busybox("when_pid_1_exits_the_rest_of_its_namespace_is_killed") {
        return;
    }
    // A duration no other process uses, to find the sleep by.
    let marker = format!("{}", 4000 + std::process::id() % 1000);
    let outcome =
        run(ours().args(["-q", "--pid", "--mount", "sh", "-c", &format!("sleep {marker} & echo started")]));
    assert_eq!((outcome.code, outcome.stdout.as_str()), (Some(0), "started\n"), "{}", outcome.stderr);
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .any(|cmdline| cmdline == format!("sleep\0{marker}\0").as_bytes());
    assert!(!sleeping, "the background sleep outlived PID 1");

    // Without a PID namespace, the same sleep lives on: the test can fail.
    // (Its output goes to /dev/null, or it would hold our pipe open.)
    let outcome = run(ours().args([
        "-q",
        "--mount",
        "sh",
        "-c",
        &format!("sleep {marker} >/dev/null 2>&1 & echo started"),
    ]));
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let survivor = std::fs::read_dir("/proc").unwrap().filter_map(|entry| entry.ok()).find(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
    });
    let survivor = survivor.expect("without a PID namespace the sleep survives its shell");
    let pid: i32 = survivor.file_name().to_string_lossy().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
}
