//! Level 4's proof that the runtime is real: containerd (Debian's, with its
//! runc shim) runs a container through it in place of runc. A private
//! containerd (root, state and socket in a scratch directory) imports an
//! OCI image made here from level 1's rootfs; `ctr run` runs it with runc
//! first, then with ours as the "runc binary", and both print the same.

mod common;
#[path = "common/containerd.rs"]
mod containerd;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{example, needs_root_and_busybox, run, Scratch};
use containerd::{oci_image, Containerd};

#[test]
fn containerd_runs_a_container_through_our_runtime() {
    let missing = containerd::missing_tools();
    if !needs_root_and_busybox("containerd_runs_a_container_through_our_runtime")
        || !common::can_run("containerd_runs_a_container_through_our_runtime", missing)
    {
        return;
    }
    let scratch = Scratch::new("ctrd");
    let rootfs = scratch.path().join("rootfs");
    let built = run(Command::new(example("01-chroot")).arg("--rootfs").arg(&rootfs).args(["-q", "true"]));
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    let image = "docker.io/podlab/busybox:test";
    oci_image(&rootfs, image, &["sh"], &scratch.path().join("image.tar"));

    let containerd = Containerd::start(scratch.path(), None, None);
    let imported = containerd.ctr(&["image", "import", scratch.path().join("image.tar").to_str().unwrap()]);
    assert_eq!(imported.code, Some(0), "import: {}\n{}", imported.stderr, containerd.log());

    let command = ["sh", "-c", "echo hello through containerd; hostname; ps -o comm; id"];
    let ours = example("04-runtime");
    let mut outputs = Vec::new();
    for (name, binary) in [("runc", "runc"), ("ours", ours.to_str().unwrap())] {
        let id = format!("podlab-{name}-{}", std::process::id());
        let mut args = vec!["run", "--rm", "--runc-binary", binary, image, &id];
        args.extend(command);
        let outcome = containerd.ctr(&args);
        assert_eq!(outcome.code, Some(0), "{name}: {}\n{}", outcome.stderr, containerd.log());
        outputs.push(outcome.stdout.replace(&id, "[id]"));
    }
    assert!(outputs[0].starts_with("hello through containerd\n"), "{}", outputs[0]);
    assert_eq!(outputs[1], outputs[0], "through containerd: ours (left), runc (right)");

    // A task that lives on, driven as containerd drives its runtime: ps
    // (ps --format json), exec (exec --process), pause and resume, kill and
    // delete. (ctr 1.6 has no task update.)
    let mut stories = Vec::new();
    for (name, binary) in [("runc", "runc"), ("ours", ours.to_str().unwrap())] {
        let id = format!("podlab-{name}-long-{}", std::process::id());
        let mut story = Vec::new();
        let step = |what: &str, args: &[&str]| {
            let outcome = containerd.ctr(args);
            assert_eq!(outcome.code, Some(0), "{name}: {what}: {}\n{}", outcome.stderr, containerd.log());
            outcome.stdout
        };
        step("run -d", &["run", "-d", "--runc-binary", binary, image, &id, "sleep", "300"]);
        let processes = step("task ps", &["task", "ps", &id]);
        story.push(format!("ps: {} process(es)", processes.lines().skip(1).count()));
        let exec = step(
            "task exec",
            &["task", "exec", "--exec-id", "look", &id, "sh", "-c", "echo exec here; hostname"],
        );
        story.push(format!("exec: {}", exec.replace(&id, "[id]").trim_end()));
        step("task pause", &["task", "pause", &id]);
        let status = |listing: String| {
            listing
                .lines()
                .find(|l| l.starts_with(&id))
                .map(|l| l.split_whitespace().last().unwrap_or_default().to_string())
        };
        story.push(format!("paused: {:?}", status(step("task ls", &["task", "ls"]))));
        step("task resume", &["task", "resume", &id]);
        story.push(format!("resumed: {:?}", status(step("task ls", &["task", "ls"]))));
        step("task kill", &["task", "kill", "--signal", "KILL", &id]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while status(step("task ls", &["task", "ls"])).as_deref() != Some("STOPPED") {
            assert!(Instant::now() < deadline, "{name}: the task did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        step("task delete", &["task", "delete", &id]);
        step("container delete", &["container", "delete", &id]);
        stories.push(story.join("\n"));
    }
    assert!(stories[0].contains("paused: Some(\"PAUSED\")"), "runc: {}", stories[0]);
    assert_eq!(stories[1], stories[0], "a task through containerd: ours (left), runc (right)");
}
