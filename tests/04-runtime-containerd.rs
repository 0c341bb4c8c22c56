//! Level 4's proof that the runtime is real: containerd (Debian's, with its
//! runc shim) runs a container through it in place of runc. A private
//! containerd (root, state and socket in a scratch directory) imports an
//! OCI image made here from level 1's rootfs; `ctr run` runs it with runc
//! first, then with ours as the "runc binary", and both print the same.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{example, needs_root_and_busybox, run, Scratch};
use sha2::{Digest, Sha256};

/// A containerd of the test's own, stopped (and what it left unmounted and
/// removed) on every path.
struct Containerd {
    dir: PathBuf,
    process: Child,
    namespace: String,
    /// What appeared in the shim's shared directories since is ours.
    started: std::time::SystemTime,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let config = format!(
            "version = 2\n\
             root = \"{dir}/root\"\n\
             state = \"{dir}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{dir}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{dir}/containerd.sock.ttrpc\"\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let process = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let containerd = Containerd {
            dir: dir.to_path_buf(),
            process,
            namespace: format!("podlab-test-{}", std::process::id()),
            started: std::time::SystemTime::now(),
        };
        let started = Instant::now();
        while !dir.join("containerd.sock").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "containerd did not come up: {}",
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> common::Outcome {
        let mut command = Command::new("ctr");
        command.arg("--address").arg(self.dir.join("containerd.sock")).args(["--namespace", &self.namespace]);
        run(command.args(args))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.process.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.process.wait();
        // A failed test can leave a task running, and its shim, which
        // outlives containerd: both go first.
        for shim in processes_whose_command_has(&format!("-namespace {} ", self.namespace)) {
            let _ = nix::sys::signal::kill(shim, nix::sys::signal::Signal::SIGKILL);
        }
        for mount in podlab::kernel::mounts_under(&self.dir).unwrap_or_default() {
            let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
        }
        // The parent group containerd names after the namespace, which
        // runtimes leave in place (runc too), and what a failed test left
        // in it.
        for tree in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().filter_map(|e| e.ok()) {
            remove_group_tree(&tree.path().join(&self.namespace));
        }
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc").join(&self.namespace));
        // A task's I/O fifos and its shim's socket, left by a failed test
        // in the shim's shared directories: what appeared there since we
        // started.
        for shared in ["/run/containerd/fifo", "/run/containerd/s"] {
            for entry in std::fs::read_dir(shared).into_iter().flatten().filter_map(|e| e.ok()) {
                if entry.metadata().is_ok_and(|m| m.modified().is_ok_and(|t| t >= self.started)) {
                    let _ =
                        std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
                }
            }
        }
        // The shim's working directories, at fixed paths: removed only when
        // empty, so that a containerd of the machine's own keeps its own.
        for dir in ["/run/containerd/fifo", "/run/containerd/s", "/run/containerd/runc", "/run/containerd"] {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The processes whose command line holds `words` (/proc/PID/cmdline, its
/// arguments joined by spaces).
fn processes_whose_command_has(words: &str) -> Vec<nix::unistd::Pid> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&command).replace('\0', " ").contains(words)
        })
        .map(nix::unistd::Pid::from_raw)
        .collect()
}

/// A cgroup and the groups below it: their processes killed, the groups
/// removed, deepest first.
fn remove_group_tree(group: &Path) {
    for child in std::fs::read_dir(group).into_iter().flatten().filter_map(|e| e.ok()) {
        if child.path().is_dir() {
            remove_group_tree(&child.path());
        }
    }
    for _ in 0..50 {
        if !group.exists() || std::fs::remove_dir(group).is_ok() {
            return;
        }
        let members = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
        for pid in members.lines().filter_map(|line| line.parse().ok()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes an OCI image archive of `rootfs`, named `name`, to `archive`: one
/// uncompressed layer, a config, a manifest, an index.
fn oci_image(rootfs: &Path, name: &str, archive: &Path) {
    let blob = |bytes: &[u8]| (format!("sha256:{:x}", Sha256::digest(bytes)), bytes.len());
    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    for entry in ["bin", "etc", "proc", "root", "sys", "tmp", "dev"] {
        layer.append_dir_all(entry, rootfs.join(entry)).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let (layer_digest, layer_size) = blob(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin:/sbin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let (config_digest, config_size) = blob(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    })
    .to_string();
    let (manifest_digest, manifest_size) = blob(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "test"},
        }],
    })
    .to_string();

    let mut out = tar::Builder::new(std::fs::File::create(archive).unwrap());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.append_data(&mut header, path, bytes).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", index.as_bytes());
    for (digest, bytes) in [
        (&layer_digest, &layer[..]),
        (&config_digest, config.as_bytes()),
        (&manifest_digest, manifest.as_bytes()),
    ] {
        add(&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")), bytes);
    }
    out.finish().unwrap();
}

#[test]
fn containerd_runs_a_container_through_our_runtime() {
    let missing = ["containerd", "ctr", "containerd-shim-runc-v2", "runc"]
        .into_iter()
        .find(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|tool| format!("{tool} is not installed (apt-get install containerd runc)"));
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
    oci_image(&rootfs, image, &scratch.path().join("image.tar"));

    let containerd = Containerd::start(scratch.path());
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
