//! Level 1: chroot. The scenarios' transcripts are snapshots (and the
//! book's listings); the other tests check behaviour against chroot(8) and
//! the promises made to users: refuse bad input plainly, leave nothing.

mod common;

use nix::sys::signal::Signal;

use std::process::Command;

use common::{example, needs_root_and_busybox, run, Scratch};
use podlab::chroot::LEVEL;

scenario_tests!(LEVEL;
    ls => "ls",
    cd_up => "cd-up",
    whoami => "whoami",
    escape => "escape",
    mount_proc => "mount-proc",
    files => "files",
    quiet => "quiet",
    no_such_command => "no-such-command",
    dynamic_busybox => "dynamic-busybox",
    missing_busybox => "missing-busybox",
);

fn ours() -> Command {
    Command::new(example("01-chroot"))
}

/// The same commands in the same rootfs, through chroot(8) (the peer, run
/// first) and through ours: the same output and the same exit status.
#[test]
fn behaves_like_chroot8() {
    if !needs_root_and_busybox("behaves_like_chroot8") {
        return;
    }
    let scratch = Scratch::new("vs-chroot8");
    let rootfs = scratch.path().join("rootfs");
    let built = run(ours().arg("--rootfs").arg(&rootfs).args(["--quiet", "true"]));
    assert_eq!(built.code, Some(0), "{}", built.stderr);

    let commands: &[&[&str]] = &[
        &["ls", "-a", "/"],
        &["sh", "-c", "cd /..; pwd; cd ../..; ls"],
        &["sh", "-c", "whoami; id"],
        &["sh", "-c", "echo to stderr >&2; exit 7"],
        &["sh", "-c", "kill -TERM $$"],
        &["/bin/busybox", "true"],
        // SIGPIPE as a new process has it: `yes` dies of it (141) once
        // head has gone, rather than inheriting the example's SIG_IGN (Rust
        // ignores SIGPIPE) and ending with a write error (1).
        &["sh", "-c", "{ yes; echo $? >/tmp/yes-ended; } | head -1; cat /tmp/yes-ended"],
    ];
    for command in commands {
        let peer = run(Command::new("chroot").arg(&rootfs).args(*command));
        let mine = run(ours().arg("--rootfs").arg(&rootfs).arg("--quiet").args(*command));
        assert_eq!(
            (mine.code, &mine.stdout),
            (peer.code, &peer.stdout),
            "{command:?}: ours (left) and chroot(8) (right) differ; our stderr: {}",
            mine.stderr
        );
    }
}

#[test]
fn refuses_without_root_and_makes_nothing() {
    if !needs_root_and_busybox("refuses_without_root_and_makes_nothing") {
        return;
    }
    let outcome = common::run_as_nobody("01-chroot", &["ls", "/"]);
    assert_eq!(outcome.code, Some(2));
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.stderr,
        "01-chroot: this needs root (chroot(2) needs CAP_SYS_CHROOT): run it again with sudo, or as root in the course VM\n"
    );
}

#[test]
fn refuses_a_directory_that_is_not_ours_and_leaves_it_alone() {
    if !needs_root_and_busybox("refuses_a_directory_that_is_not_ours") {
        return;
    }
    let scratch = Scratch::new("not-ours");
    std::fs::write(scratch.path().join("precious"), "data").unwrap();

    let outcome = run(ours().arg("--rootfs").arg(scratch.path()).arg("true"));
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    let last = outcome.stderr.lines().last().unwrap();
    assert!(last.contains("already exists and is not a rootfs that podlab built"), "{last}");
    let left: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["precious"]);
    assert_eq!(std::fs::read_to_string(scratch.path().join("precious")).unwrap(), "data");
}

#[test]
fn refuses_a_relative_rootfs() {
    if !needs_root_and_busybox("refuses_a_relative_rootfs") {
        return;
    }
    let outcome = run(ours().args(["--rootfs", "relative/rootfs", "true"]));
    assert_eq!(outcome.code, Some(2));
    assert!(outcome.stderr.contains("is not an absolute path"), "{}", outcome.stderr);
}

#[test]
fn keeps_a_named_rootfs_and_rebuilds_it_next_time() {
    if !needs_root_and_busybox("keeps_a_named_rootfs") {
        return;
    }
    let scratch = Scratch::new("keep");
    let rootfs = scratch.path().join("rootfs");
    for _ in 0..2 {
        let outcome =
            run(ours().arg("--rootfs").arg(&rootfs).args(["sh", "-c", "touch /root/mark; ls /root"]));
        assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
        // Rebuilt from scratch each time: the mark of the run before is gone.
        assert_eq!(outcome.stdout, "mark\n");
        assert!(outcome.stderr.ends_with(&format!("kept the rootfs at {}\n", rootfs.display())));
    }
    assert!(rootfs.join(".podlab-rootfs").exists());
}

/// Killed while its command runs, the parent passes the signal on, waits,
/// removes the rootfs and ends as its child did.
#[test]
fn cleans_up_when_killed() {
    if !needs_root_and_busybox("cleans_up_when_killed") {
        return;
    }
    let killed = common::kill_while_running("01-chroot", &["sleep", "30"], "sleep", &[Signal::SIGTERM]);
    assert_eq!(killed.status.code(), Some(128 + 15), "{}", killed.narration);
    assert!(
        killed.narration.contains(
            "> kill(child, SIGTERM): passed on the signal this process got\n  > waitpid(child) = killed by SIGTERM"
        ),
        "{}",
        killed.narration
    );
    assert_eq!(killed.made.len(), 1, "{}", killed.narration);
    assert!(!std::path::Path::new(&killed.made[0]).exists(), "{} was left behind", killed.made[0]);
}

/// A bind mount inside a rootfs leads to host files: removing the rootfs
/// must detach it, not delete through it.
#[test]
fn removing_a_rootfs_never_deletes_through_a_bind_mount() {
    if !needs_root_and_busybox("removing_a_rootfs_never_deletes_through_a_bind_mount") {
        return;
    }
    let scratch = Scratch::new("bind");
    let host_data = scratch.path().join("host-data");
    let rootfs = scratch.path().join("rootfs");
    std::fs::create_dir_all(&host_data).unwrap();
    std::fs::write(host_data.join("precious"), "data").unwrap();
    std::fs::create_dir_all(rootfs.join("mnt")).unwrap();
    nix::mount::mount(
        Some(&host_data),
        &rootfs.join("mnt"),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    // Detaches the mount on every path, should the removal below not.
    struct Detach(std::path::PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _guard = Detach(rootfs.join("mnt"));

    podlab::narrate::set_quiet(true);
    podlab::kernel::remove_dir_all(&rootfs).unwrap();
    assert!(!rootfs.exists());
    assert_eq!(std::fs::read_to_string(host_data.join("precious")).unwrap(), "data");
    assert!(podlab::kernel::mounts_under(scratch.path()).unwrap().is_empty());
}
