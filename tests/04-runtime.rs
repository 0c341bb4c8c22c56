//! Level 4: the runtime, against runc. Each case builds a bundle from
//! level 1's rootfs and `runc spec`'s config, runs it through runc first
//! (a case that runc fails is a wrong case) and then through ours, and
//! compares what a user of a runtime can observe: output, exit codes,
//! the lifecycle's states, and which bad inputs are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{example, needs_root_and_busybox, run, Outcome, Scratch};
use podlab::runtime::LEVEL;
use serde_json::Value;

// The level's own transcripts, as the book shows them and `cargo lab 4`
// compares them.
scenario_tests!(LEVEL;
    run_a_default_bundle => "run",
    lifecycle => "lifecycle",
    pause => "pause",
    hooks => "hooks",
    seccomp => "seccomp",
    mounts => "mounts",
    resources => "resources",
    no_rootfs => "no-rootfs",
);

fn needs_runc(test: &str) -> bool {
    needs_root_and_busybox(test)
        && common::can_run(
            test,
            Command::new("runc")
                .arg("--version")
                .output()
                .is_err()
                .then(|| "runc is not installed".to_string()),
        )
}

/// A bundle in a scratch directory, with a state root for each runtime.
struct Bundle {
    scratch: Scratch,
}

impl Bundle {
    /// Level 1's rootfs and runc's default config, changed by `edit`.
    fn new(test: &str, edit: impl FnOnce(&mut Value)) -> Bundle {
        let scratch = Scratch::new(test);
        let rootfs = scratch.path().join("rootfs");
        let built = run(Command::new(example("01-chroot")).arg("--rootfs").arg(&rootfs).args(["-q", "true"]));
        assert_eq!(built.code, Some(0), "{}", built.stderr);
        let spec = run(Command::new("runc").arg("spec").current_dir(scratch.path()));
        assert_eq!(spec.code, Some(0), "{}", spec.stderr);
        let bundle = Bundle { scratch };
        bundle.edit(|config| {
            config["process"]["terminal"] = Value::Bool(false);
            edit(config);
        });
        bundle
    }

    /// Changes its config.json.
    fn edit(&self, edit: impl FnOnce(&mut Value)) {
        let file = self.path().join("config.json");
        let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        edit(&mut config);
        std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    }

    fn path(&self) -> &Path {
        self.scratch.path()
    }
}

/// On every path, failures too: force-delete what either runtime still
/// holds, so that no container process or runc cgroup outlives the test.
impl Drop for Bundle {
    fn drop(&mut self) {
        for runtime in [Runtime::Runc, Runtime::Crun, Runtime::Ours] {
            let root = runtime.root(self);
            let ids: Vec<String> = std::fs::read_dir(&root)
                .into_iter()
                .flatten()
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect();
            for id in ids {
                let _ = runtime.detached(self, &["delete", "--force", &id]);
            }
        }
    }
}

/// The two runtimes, each with a state root of its own in the bundle's
/// scratch directory.
#[derive(Clone, Copy, Debug)]
enum Runtime {
    Runc,
    /// crun 1.8 refuses cgroup v1 and hybrid layouts ("cgroups in hybrid
    /// mode not supported"); there it runs in a mount namespace of its own
    /// with cgroup2 on /sys/fs/cgroup and `--cgroup-manager=disabled`, so
    /// it makes no cgroups (and so is left out where limits are compared).
    Crun,
    Ours,
}

impl Runtime {
    fn root(self, bundle: &Bundle) -> PathBuf {
        match self {
            Runtime::Runc => bundle.path().join("runc-root"),
            Runtime::Crun => bundle.path().join("crun-root"),
            Runtime::Ours => bundle.path().join("our-root"),
        }
    }

    fn command(self, bundle: &Bundle) -> Command {
        let hybrid = podlab::cgroups::Version::of_this_machine().ok() == Some(podlab::cgroups::Version::V1);
        let mut command = match self {
            Runtime::Runc => Command::new("runc"),
            Runtime::Ours => Command::new(example("04-runtime")),
            Runtime::Crun if hybrid => {
                let mut wrapper = Command::new("unshare");
                let script =
                    "mount -t cgroup2 none /sys/fs/cgroup && exec crun --cgroup-manager=disabled \"$@\"";
                wrapper.args(["--mount", "sh", "-c", script, "crun"]);
                wrapper
            }
            Runtime::Crun => Command::new("crun"),
        };
        command.arg("--root").arg(self.root(bundle)).current_dir(bundle.path());
        if let Runtime::Ours = self {
            command.arg("--quiet");
        }
        command
    }

    /// A subcommand whose container may outlive it: stdio not captured.
    fn detached(self, bundle: &Bundle, args: &[&str]) -> Option<i32> {
        self.command(bundle)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    }

    /// A subcommand whose container may outlive it, and what it said on
    /// stderr: kept in a file, since a created container keeps its
    /// creator's stdio, and a pipe would not end until the container does.
    fn told(self, bundle: &Bundle, args: &[&str]) -> (Option<i32>, String) {
        let errors = bundle.path().join(format!("{self:?}-{}.err", unique_id()));
        let mut command = self.command(bundle);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::null());
        let code = command.stderr(std::fs::File::create(&errors).unwrap()).status().unwrap().code();
        (code, std::fs::read_to_string(&errors).unwrap())
    }

    fn run(self, bundle: &Bundle, args: &[&str]) -> Outcome {
        run(self.command(bundle).args(args))
    }

    /// Waits (10 s at most) until the container is stopped; `what` says
    /// what should have stopped it, should it not.
    fn wait_until_stopped(self, bundle: &Bundle, id: &str, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.state(bundle, id).unwrap()["status"] != "stopped" {
            assert!(std::time::Instant::now() < deadline, "{self:?}: {what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn state(self, bundle: &Bundle, id: &str) -> Option<Value> {
        let outcome = self.run(bundle, &["state", id]);
        (outcome.code == Some(0)).then(|| serde_json::from_str(&outcome.stdout).unwrap())
    }
}

/// crun is the second oracle where it is installed (scripts/setup --tests
/// installs it); under CI it must be.
fn has_crun() -> bool {
    let missing = Command::new("crun").arg("--version").output().is_err();
    if missing && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("crun cannot be run on CI: it is not installed");
    }
    !missing
}

/// Whether this process has capability `number` (24: CAP_SYS_RESOURCE).
fn has_capability(number: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status.lines().find_map(|line| line.strip_prefix("CapEff:")).unwrap();
    u64::from_str_radix(effective.trim(), 16).unwrap() & (1 << number) != 0
}

/// An id no other test uses; it names runc's cgroups too, which the
/// leftover check looks for by the podlab- prefix.
fn unique_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("podlab-t{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `run` of `bundle` through runc, which must show what `runc_shows` looks
/// for (else the case is wrong, not ours), then through ours: the same exit
/// status and output. What runc printed comes back.
fn runs_as_with_runc(bundle: &Bundle, what: &str, runc_shows: impl Fn(&str) -> bool) -> Outcome {
    let theirs = Runtime::Runc.run(bundle, &["run", &unique_id()]);
    assert!(runc_shows(&theirs.stdout), "{what}: runc printed {:?}; {}", theirs.stdout, theirs.stderr);
    let ours = Runtime::Ours.run(bundle, &["run", &unique_id()]);
    assert_eq!(
        (ours.code, &ours.stdout),
        (theirs.code, &theirs.stdout),
        "{what}: ours (left) and runc's (right) differ; our stderr: {}",
        ours.stderr
    );
    theirs
}

fn args_of(command: &[&str]) -> impl FnOnce(&mut Value) {
    let args: Vec<Value> = command.iter().map(|a| Value::String(a.to_string())).collect();
    move |config: &mut Value| config["process"]["args"] = Value::Array(args)
}

/// `run` of the same bundle: the same output and exit status.
#[test]
fn run_prints_and_ends_as_runc() {
    if !needs_runc("run_prints_and_ends_as_runc") {
        return;
    }
    for command in [
        &["sh", "-c", "echo hello; hostname; ps -o comm; id; pwd"][..],
        &["sh", "-c", "exit 7"],
        &["sh", "-c", "echo to stderr >&2; ls /dev | sort"],
        &["sh", "-c", "ulimit -n; grep -E 'NoNewPrivs|^Cap' /proc/self/status"],
        &["sh", "-c", "touch /cannot 2>/dev/null || echo read-only root"],
        // The mount table, but for the cgroup tree, which crun (without
        // cgroups here) cannot show: cgroup_tree_inside_as_with_runc.
        &["sh", "-c", "cut -d' ' -f2,3,4 /proc/mounts | grep -v ' /sys/fs/cgroup' | grep -v '^/sys/fs/cgroup' | sort"],
        &["sh", "-c", "wc -c < /proc/kcore; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/sysrq || echo /proc/sys is read-only"],
    ] {
        let bundle = Bundle::new("run", args_of(command));
        let theirs = Runtime::Runc.run(&bundle, &["run", &unique_id()]);
        if has_crun() {
            let crun = Runtime::Crun.run(&bundle, &["run", &unique_id()]);
            // Where the peers differ in detail only, compare what they agree
            // on: crun also links /dev/core to /proc/kcore (optional in the
            // spec; runc does not), and masks files with the host's /dev/null
            // where runc uses the container's (other mount sources and
            // options, the same mount points).
            let agreed = |stdout: &str| -> String {
                let lines = stdout.lines().filter(|line| *line != "core");
                let points = lines.map(|line| if line.starts_with('/') { line.split(' ').next().unwrap() } else { line });
                points.map(|line| format!("{line}\n")).collect()
            };
            assert_eq!(
                (crun.code, agreed(&crun.stdout)),
                (theirs.code, agreed(&theirs.stdout)),
                "{command:?}: crun (left) and runc (right) disagree: {}",
                crun.stderr
            );
        }
        let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
        assert_eq!(
            (ours.code, &ours.stdout),
            (theirs.code, &theirs.stdout),
            "{command:?}: ours (left) and runc's (right) differ; our stderr: {}",
            ours.stderr
        );
    }
}

/// create, state, start, state, delete, state: the same states and exit
/// codes through the lifecycle.
#[test]
fn the_lifecycle_goes_as_with_runc() {
    if !needs_runc("the_lifecycle_goes_as_with_runc") {
        return;
    }
    // The program runs until the test lets it end, through a FIFO in the
    // rootfs: no guess at how long the checks take.
    let bundle = Bundle::new("lifecycle", |config| {
        args_of(&["sh", "-c", "read line < /gate"])(config);
        config["annotations"] = serde_json::json!({"io.podlab.level": "4"});
    });
    let gate = bundle.path().join("rootfs/gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let pid_file = bundle.path().join(format!("{id}.pid"));
        let pid_file_arg = pid_file.to_str().unwrap();
        assert_eq!(
            runtime.detached(&bundle, &["create", "--pid-file", pid_file_arg, &id]),
            Some(0),
            "{runtime:?} create"
        );
        let created = runtime.state(&bundle, &id).unwrap();
        assert_eq!(created["annotations"], serde_json::json!({"io.podlab.level": "4"}), "{runtime:?}");
        assert_eq!(created["status"], "created", "{runtime:?}");
        // The pid is the container's first process: the one --pid-file
        // names, PID 1 of a PID namespace of its own.
        let pid = created["pid"].as_i64().unwrap();
        assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string(), "{runtime:?}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert!(nspid.ends_with("\t1"), "{runtime:?}: {nspid}");
        assert_eq!(created["id"], id.as_str());
        assert_eq!(created["bundle"], bundle.path().to_str().unwrap());
        // Starting twice: the second is refused.
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0), "{runtime:?} start");
        assert_eq!(runtime.state(&bundle, &id).unwrap()["status"], "running", "{runtime:?}");
        assert_ne!(runtime.detached(&bundle, &["start", &id]), Some(0), "{runtime:?} started twice");
        // Running: delete without --force is refused.
        assert_ne!(
            runtime.detached(&bundle, &["delete", &id]),
            Some(0),
            "{runtime:?} deleted a running container"
        );
        // The program reads the gate: a line lets it end (10 s for it to
        // open its end, rather than a test that hangs).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut open = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::custom_flags(open.write(true), nix::libc::O_NONBLOCK);
        let mut writer = loop {
            match open.open(&gate) {
                Ok(writer) => break writer,
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::ENXIO) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("{runtime:?}: the program never opened the gate: {e}"),
            }
        };
        std::io::Write::write_all(&mut writer, b"go\n").unwrap();
        drop(writer);
        runtime.wait_until_stopped(&bundle, &id, "never stopped");
        assert_ne!(
            runtime.detached(&bundle, &["start", &id]),
            Some(0),
            "{runtime:?} started a stopped container"
        );
        assert_eq!(runtime.detached(&bundle, &["delete", &id]), Some(0), "{runtime:?} delete");
        assert_eq!(runtime.state(&bundle, &id), None, "{runtime:?}: state after delete");
    }
}

/// kill with a signal name, then delete --force of a created container.
#[test]
fn kill_and_force_delete_as_with_runc() {
    if !needs_runc("kill_and_force_delete_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("kill", args_of(&["sleep", "30"]));
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let (a, b) = (unique_id(), unique_id());
        assert_eq!(runtime.detached(&bundle, &["create", &a]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["start", &a]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["kill", &a, "KILL"]), Some(0), "{runtime:?} kill");
        runtime.wait_until_stopped(&bundle, &a, "kill did not stop it");
        assert_ne!(
            runtime.detached(&bundle, &["kill", &a, "KILL"]),
            Some(0),
            "{runtime:?} killed a stopped one"
        );
        assert_eq!(runtime.detached(&bundle, &["delete", &a]), Some(0));

        assert_eq!(runtime.detached(&bundle, &["create", &b]), Some(0));
        assert_eq!(
            runtime.detached(&bundle, &["delete", "--force", &b]),
            Some(0),
            "{runtime:?} delete --force"
        );
        assert_eq!(runtime.state(&bundle, &b), None);
    }
}

/// Bad input: refused by both, with nothing left behind by ours.
#[test]
fn bad_bundles_and_ids_are_refused_as_by_runc() {
    if !needs_runc("bad_bundles_and_ids_are_refused_as_by_runc") {
        return;
    }
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let mut cases: Vec<(&str, &str, Edit)> = vec![
        (
            "no process args",
            "the process's args are empty",
            Box::new(|c: &mut Value| c["process"]["args"] = Value::Array(vec![])),
        ),
        (
            "a root that does not exist",
            "no-such-rootfs is not a directory",
            Box::new(|c: &mut Value| c["root"]["path"] = "no-such-rootfs".into()),
        ),
        (
            "an unknown namespace type",
            "unknown variant `nonsense`",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "nonsense"}))
            }),
        ),
        (
            "a time namespace",
            "a time namespace is not supported",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "time"}))
            }),
        ),
        (
            "no proc on /proc",
            "mounts no proc on /proc",
            Box::new(|c: &mut Value| {
                c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/proc")
            }),
        ),
        (
            "a sysctl of the host's",
            "sysctl vm.swappiness is not in a namespace of the container's",
            Box::new(|c: &mut Value| c["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "10"})),
        ),
        (
            "a network sysctl without a network namespace",
            "belongs to the network namespace, and the container has none",
            Box::new(|c: &mut Value| {
                c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
                c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "network");
            }),
        ),
        (
            "a namespace listed twice",
            "lists the uts namespace twice",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "uts"}))
            }),
        ),
        (
            "a uid map without a gid map",
            "needs both uid and gid mappings",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
                c["linux"]["uidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            }),
        ),
        (
            "a hostname without a uts namespace",
            "sets a hostname but asks for no uts namespace",
            Box::new(|c: &mut Value| {
                let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
                namespaces.retain(|n| n["type"] != "uts");
            }),
        ),
    ];
    // An SELinux label where SELinux is off (on Debian, it is).
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        let label: Edit = Box::new(|c: &mut Value| {
            c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into()
        });
        cases.push(("an SELinux label, with SELinux off", "podlab does not apply SELinux labels", label));
        let label: Edit = Box::new(|c: &mut Value| {
            c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into()
        });
        cases.push((
            "an SELinux mount label, with SELinux off",
            "podlab does not apply SELinux labels",
            label,
        ));
    }
    // An AppArmor profile where AppArmor is off (this CI's kernel has none).
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled");
    if !apparmor.is_ok_and(|enabled| enabled.trim() == "Y") {
        let profile: Edit =
            Box::new(|c: &mut Value| c["process"]["apparmorProfile"] = "docker-default".into());
        cases.push((
            "an AppArmor profile, with AppArmor off",
            "AppArmor is not enabled on this machine",
            profile,
        ));
    }
    // Lowering the OOM score needs CAP_SYS_RESOURCE, which some machines
    // (this CI's among them) do not give even to root.
    if !has_capability(24) {
        let lower: Edit = Box::new(|c: &mut Value| c["process"]["oomScoreAdj"] = (-500).into());
        cases.push((
            "an oomScoreAdj below the current score, without CAP_SYS_RESOURCE",
            "needs CAP_SYS_RESOURCE",
            lower,
        ));
    }
    // A memory limit the first process cannot even be set up in: runc
    // cannot set it under what its init uses already; ours sees the OOM
    // killer end its process, and says so.
    cases.push((
        "a memory limit below what the first process needs",
        "killed by the OOM killer while being set up",
        Box::new(|c: &mut Value| c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 65536})),
    ));
    // A root that is a symbolic link, here to the host's /.
    cases.push((
        "a root that is a symbolic link out of the bundle",
        "is a symbolic link (to /)",
        Box::new(|c: &mut Value| c["root"]["path"] = "link-to-the-host".into()),
    ));
    // Each refusal for its own reason: ours must say the key phrase.
    for (what, says, edit) in cases {
        let bundle = Bundle::new("bad", edit);
        std::os::unix::fs::symlink("/", bundle.path().join("link-to-the-host")).unwrap();
        for runtime in [Runtime::Runc, Runtime::Ours] {
            let id = unique_id();
            let (code, said) = runtime.told(&bundle, &["create", &id]);
            assert_ne!(code, Some(0), "{runtime:?} created a bundle with {what}");
            assert_eq!(runtime.state(&bundle, &id), None, "{runtime:?} kept state for {what}");
            if let Runtime::Ours = runtime {
                assert!(said.contains(says), "ours refused {what} for another reason: {said}");
            }
        }
    }

    let bundle = Bundle::new("bad-json", |_| {});
    std::fs::write(bundle.path().join("config.json"), "{ not json").unwrap();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        assert_ne!(
            runtime.detached(&bundle, &["create", &unique_id()]),
            Some(0),
            "{runtime:?} took bad JSON"
        );
    }

    let bundle = Bundle::new("ids", args_of(&["sleep", "30"]));
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        assert_ne!(
            runtime.detached(&bundle, &["create", &id]),
            Some(0),
            "{runtime:?} created the same id twice"
        );
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
        for unknown in ["start", "state", "delete", "kill"] {
            assert_ne!(
                runtime.detached(&bundle, &[unknown, "no-such-container"]),
                Some(0),
                "{runtime:?} {unknown}"
            );
        }
    }
    let ours = Runtime::Ours.run(&bundle, &["state", "no-such-container"]);
    assert_eq!(ours.code, Some(1));
    assert_eq!(ours.stderr.lines().count(), 1, "{}", ours.stderr);
}

/// The container's own kernel parameters (IPC, network and UTS ones, in
/// its namespaces) and its OOM score: what runc sets, ours sets.
#[test]
fn sysctl_and_oom_score_as_with_runc() {
    if !needs_runc("sysctl_and_oom_score_as_with_runc") {
        return;
    }
    let show = "cat /proc/self/oom_score_adj /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward \
                /proc/sys/kernel/domainname /proc/sys/fs/mqueue/msg_max";
    let bundle = Bundle::new("sysctl", |config| {
        args_of(&["sh", "-c", show])(config);
        config["process"]["oomScoreAdj"] = 500.into();
        config["linux"]["sysctl"] = serde_json::json!({
            "kernel.shmmax": "123456",
            "net.ipv4.ip_forward": "1",
            "kernel.domainname": "example.org",
            "fs.mqueue.msg_max": "20",
        });
    });
    runs_as_with_runc(&bundle, "sysctl and oomScoreAdj", |out| out == "500\n123456\n1\nexample.org\n20\n");
}

/// features: JSON of the specification's shape, with the hooks runc runs,
/// and no namespace or capability that runc does not know.
#[test]
fn features_are_a_subset_of_runcs() {
    if !needs_runc("features_are_a_subset_of_runcs") {
        return;
    }
    let parse = |outcome: Outcome| -> Value {
        assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
        serde_json::from_str(&outcome.stdout).unwrap()
    };
    let bundle = Bundle::new("features", |_| {});
    let theirs = parse(Runtime::Runc.run(&bundle, &["features"]));
    let ours = parse(Runtime::Ours.run(&bundle, &["features"]));
    assert_eq!(ours["ociVersionMin"], theirs["ociVersionMin"]);
    assert_eq!(ours["hooks"], theirs["hooks"]);
    for list in ["namespaces", "capabilities"] {
        let known = theirs["linux"][list].as_array().unwrap();
        for item in ours["linux"][list].as_array().unwrap() {
            assert!(known.contains(item), "{list}: runc does not know {item}");
        }
    }
    for list in ["actions", "operators", "archs"] {
        let known = theirs["linux"]["seccomp"][list].as_array().unwrap();
        for item in ours["linux"]["seccomp"][list].as_array().unwrap() {
            assert!(known.contains(item), "seccomp {list}: runc does not know {item}");
        }
    }
    assert_eq!(ours["linux"]["seccomp"]["enabled"], true);
    assert_eq!(ours["linux"]["cgroup"]["v1"], true);
    assert_eq!(ours["linux"]["cgroup"]["v2"], true);
}

/// A user namespace: root inside is 100000 outside; the devices are the
/// host's, bound (mknod is not allowed there), and work; as with runc.
#[test]
fn a_user_namespace_as_with_runc() {
    if !needs_runc("a_user_namespace_as_with_runc") {
        return;
    }
    let look = "ls -l /dev/null /dev/zero | cut -c1; echo hi > /dev/null && echo writes to /dev/null; \
                head -c 4 /dev/zero | wc -c; id -u; cat /proc/self/uid_map /proc/self/gid_map";
    let bundle = Bundle::new("userns", |config| {
        args_of(&["sh", "-c", look])(config);
        config["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map;
    });
    runs_as_with_runc(&bundle, "a user namespace", |out| {
        out.starts_with("c\nc\nwrites to /dev/null\n4\n0\n")
    });
}

/// Maps of several lines, users mapped otherwise than groups: each file
/// gets its own lines, as runc writes them.
#[test]
fn id_maps_of_several_lines_as_with_runc() {
    if !needs_runc("id_maps_of_several_lines_as_with_runc") {
        return;
    }
    let look = "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g";
    let bundle = Bundle::new("userns-lines", |config| {
        args_of(&["sh", "-c", look])(config);
        config["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        config["linux"]["uidMappings"] = serde_json::json!([
            {"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 1000, "hostID": 300000, "size": 64536}
        ]);
        config["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    runs_as_with_runc(&bundle, "several lines of maps", |out| {
        let words = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
        out.lines().map(words).collect::<Vec<_>>()
            == ["0 100000 1000", "1000 300000 64536", "0 200000 65536", "0", "0"]
    });
}

/// The cgroup tree inside: under v1 a tmpfs with one mount for each of the
/// host's hierarchies (fresh in a cgroup namespace, else bound from the
/// container's own group, whose limit shows), under v2 one cgroup2 mount;
/// as runc makes it.
#[test]
fn cgroup_tree_inside_as_with_runc() {
    if !needs_runc("cgroup_tree_inside_as_with_runc") {
        return;
    }
    let look = "grep cgroup /proc/mounts | cut -d' ' -f2-4; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null";
    for own_namespace in [true, false] {
        let bundle = Bundle::new("cgroup-tree", |config| {
            args_of(&["sh", "-c", look])(config);
            config["linux"]["resources"] = serde_json::json!({"pids": {"limit": 33}});
            if !own_namespace {
                config["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "cgroup");
            }
        });
        let what = format!("the cgroup tree, cgroup namespace: {own_namespace}");
        runs_as_with_runc(&bundle, &what, |out| out.contains("/sys/fs/cgroup"));
    }
}

/// seccomp: a profile that refuses mkdir, personality(PER_LINUX32) and
/// kill with signal 9 (arguments compared), with and without no_new_privs
/// (which decides when the filter goes in), for the first process and for
/// one exec starts; what runc refuses, ours refuses.
#[test]
fn seccomp_refuses_as_runc_does() {
    if !needs_runc("seccomp_refuses_as_runc_does") {
        return;
    }
    let probe =
        "mkdir /tmp/x 2>/dev/null || echo mkdir refused; linux32 true 2>/dev/null || echo linux32 refused; \
                 linux64 true && echo linux64 ran; sleep 5 & kill -9 $! 2>/dev/null || echo kill -9 refused; \
                 kill -15 $! && echo kill -15 ran";
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        ],
    });
    for no_new_privileges in [true, false] {
        let bundle = Bundle::new("seccomp", |config| {
            args_of(&["sh", "-c", probe])(config);
            config["root"]["readonly"] = false.into();
            config["process"]["noNewPrivileges"] = no_new_privileges.into();
            config["linux"]["seccomp"] = profile.clone();
        });
        let refusals = "mkdir refused\nlinux32 refused\nlinux64 ran\nkill -9 refused\nkill -15 ran\n";
        runs_as_with_runc(&bundle, &format!("seccomp, nnp {no_new_privileges}"), |out| out == refusals);
    }
    let bundle = Bundle::new("seccomp-exec", |config| {
        args_of(&["sleep", "30"])(config);
        config["root"]["readonly"] = false.into();
        config["linux"]["seccomp"] = profile.clone();
    });
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0));
        seen.push(
            runtime
                .run(&bundle, &["exec", &id, "sh", "-c", "mkdir /tmp/y 2>/dev/null || echo refused"])
                .stdout,
        );
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
    }
    assert_eq!(seen[0], "refused\n", "runc's exec");
    assert_eq!(seen[1], seen[0], "exec: ours (left), runc's (right)");
}

/// A rule that compares one argument twice: runc makes each comparison a
/// rule of its own, so any one refuses, even that of another argument. A
/// rule that compares each argument once needs all its comparisons. (runc's
/// ENOSYS for calls newer than the profile is left to the unit tests:
/// busybox makes no call whose answer would show it.)
#[test]
fn seccomp_corner_cases_as_runc() {
    if !needs_runc("seccomp_corner_cases_as_runc") {
        return;
    }
    let probe = "sleep 5 & kill -9 $! 2>/dev/null || echo kill -9 refused; \
                 kill -15 $! 2>/dev/null || echo kill -15 refused; \
                 kill -0 1 2>/dev/null || echo kill -0 1 refused; kill -0 $! && echo kill -0 ran; \
                 ionice -c 3 true 2>/dev/null || echo ionice idle refused; \
                 ionice -c 2 -n 5 true && echo ionice best-effort ran; kill -1 $! && echo kill -1 ran";
    let eq =
        |index: u32, value: u64| serde_json::json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            // Signal 9, signal 15, or pid 1.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [eq(1, 9), eq(1, 15), eq(0, 1)]},
            // IOPRIO_WHO_PROCESS and the idle class (3 << 13).
            {"names": ["ioprio_set"], "action": "SCMP_ACT_ERRNO", "args": [eq(0, 1), eq(2, 0x6000)]},
        ],
    });
    let bundle = Bundle::new("seccomp-corners", |config| {
        args_of(&["sh", "-c", probe])(config);
        config["linux"]["seccomp"] = profile;
    });
    let theirs = Runtime::Runc.run(&bundle, &["run", &unique_id()]);
    assert_eq!(
        theirs.stdout,
        "kill -9 refused\nkill -15 refused\nkill -0 1 refused\nkill -0 ran\nionice idle refused\n\
         ionice best-effort ran\nkill -1 ran\n",
        "runc: {}",
        theirs.stderr
    );
    let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
    assert_eq!((ours.code, &ours.stdout), (theirs.code, &theirs.stdout), "{}", ours.stderr);
}

/// A descriptor its caller leaves open (not close-on-exec) does not reach
/// the container's program: only stdin, stdout and stderr do, and those
/// --preserve-fds names, as with runc.
#[test]
fn only_stdio_reaches_the_program_as_with_runc() {
    if !needs_runc("only_stdio_reaches_the_program_as_with_runc") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let bundle = Bundle::new("fds", args_of(&["ls", "/proc/self/fd"]));
    // Without --preserve-fds, and with --preserve-fds 1 (fd 3 goes on).
    for (preserve, expected) in [(None, "0\n1\n2\n3\n"), (Some("1"), "0\n1\n2\n3\n4\n")] {
        let mut seen = Vec::new();
        for runtime in [Runtime::Runc, Runtime::Ours] {
            let mut command = runtime.command(&bundle);
            command.arg("run");
            if let Some(count) = preserve {
                command.args(["--preserve-fds", count]);
            }
            command.arg(unique_id());
            // SAFETY: dup2 between fork and exec touches no memory of ours.
            unsafe {
                command.pre_exec(|| {
                    // stdout again, as fds 3 and 9, without close-on-exec.
                    for fd in [3, 9] {
                        if nix::libc::dup2(1, fd) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
            seen.push(run(&mut command));
        }
        assert_eq!(seen[0].stdout, expected, "runc, {preserve:?}: {}", seen[0].stderr);
        assert_eq!(seen[1].stdout, seen[0].stdout, "ours, {preserve:?}: {}", seen[1].stderr);
    }
}

/// The devices cgroup: with runc's default config (deny all, then runc's
/// defaults), a container that may mknod can make a disk's node but not
/// open it; /dev/null stays usable; a rule of the config's own lets a
/// device in, read-only. As with runc.
#[test]
fn devices_are_refused_as_runc_refuses_them() {
    if !needs_runc("devices_are_refused_as_runc_refuses_them") {
        return;
    }
    // What each open says, errors by their text only.
    let probe = "rm -f /tmp/disk /tmp/loop; mknod /tmp/disk b 8 0 && echo made a disk node; \
                 head -c 1 /tmp/disk 2>&1 >/dev/null | sed 's/.*: //'; mknod /tmp/loop b 7 0; \
                 head -c 1 /tmp/loop >/dev/null 2>&1 && echo the loop device reads; \
                 (echo x > /tmp/loop) 2>&1 | sed 's/.*: //'; echo x > /dev/null && echo /dev/null works";
    let bundle = Bundle::new("devices", |config| {
        args_of(&["sh", "-c", probe])(config);
        config["root"]["readonly"] = false.into();
        for set in ["bounding", "effective", "permitted"] {
            config["process"]["capabilities"][set].as_array_mut().unwrap().push("CAP_MKNOD".into());
        }
        // The first loop device, to read only.
        config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}));
    });
    runs_as_with_runc(&bundle, "the devices cgroup", |out| {
        out.starts_with("made a disk node\nOperation not permitted\n") && out.ends_with("/dev/null works\n")
    });
}

/// `spec` writes a config that parses and that runc runs as well.
#[test]
fn our_spec_runs_under_runc_too() {
    if !needs_runc("our_spec_runs_under_runc_too") {
        return;
    }
    let bundle = Bundle::new("spec", |_| {});
    std::fs::remove_file(bundle.path().join("config.json")).unwrap();
    let written = Runtime::Ours.run(&bundle, &["spec"]);
    assert_eq!(written.code, Some(0), "{}", written.stderr);
    let again = Runtime::Ours.run(&bundle, &["spec"]);
    assert_eq!(again.code, Some(1), "spec overwrote a config.json");
    // Make it run something that ends, in both.
    bundle.edit(|config| {
        args_of(&["sh", "-c", "hostname; echo done"])(config);
    });
    let theirs = runs_as_with_runc(&bundle, "our spec", |out| out == "podlab\ndone\n");
    assert_eq!(theirs.code, Some(0), "runc: {}", theirs.stderr);
}

/// linux.resources through level 3's cgroups: over the memory limit the
/// OOM killer ends the process, at the pids limit fork fails, in runc's
/// container and ours alike; and no group is left after delete.
#[test]
fn resources_limit_as_with_runc() {
    if !needs_runc("resources_limit_as_with_runc") {
        return;
    }
    let limited = |command: &'static [&'static str], resources: Value| {
        move |config: &mut Value| {
            args_of(command)(config);
            config["linux"]["resources"] = resources;
        }
    };
    let cases = [
        (
            &["awk", "BEGIN { s = \"x\"; while (1) s = s s }"][..],
            serde_json::json!({"memory": {"limit": 16777216}}),
        ),
        (
            &["sh", "-c", "for i in 1 2 3 4 5; do sleep 1 & done; wait"][..],
            serde_json::json!({"pids": {"limit": 4}}),
        ),
        (
            &["sh", "-c", "cat /proc/self/cgroup > /dev/null; echo within"][..],
            serde_json::json!({"cpu": {"quota": 20000, "period": 100000}}),
        ),
    ];
    for (command, resources) in cases {
        let bundle = Bundle::new("resources", limited(command, resources));
        let theirs = Runtime::Runc.run(&bundle, &["run", &unique_id()]);
        let id = unique_id();
        let ours = Runtime::Ours.run(&bundle, &["run", &id]);
        assert_eq!(
            (ours.code, &ours.stdout, ours.stderr.contains("can't fork")),
            (theirs.code, &theirs.stdout, theirs.stderr.contains("can't fork")),
            "{command:?}: ours (left) and runc's (right) differ; our stderr: {}",
            ours.stderr
        );
        let left = std::fs::read_dir("/sys/fs/cgroup").unwrap().filter_map(|tree| tree.ok()).any(|tree| {
            tree.path().join(format!("podlab-{id}")).exists() || tree.path().ends_with(format!("podlab-{id}"))
        });
        assert!(!left, "the group of {id} is still there");
    }
}

/// Hooks: each gets the state on stdin, at the same point of the lifecycle
/// (told by the status it sees) in runc and ours; a failing prestart hook
/// fails create in both, and leaves no container.
#[test]
fn hooks_run_where_runc_runs_them() {
    if !needs_runc("hooks_run_where_runc_runs_them") {
        return;
    }
    let recorded = |dir: &Path| {
        let hook = |which: &str| {
            let file = dir.join(format!("{which}.json"));
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", file.display())]})
        };
        // startContainer runs in the container, after the pivot: its path
        // and the file it writes are the container's.
        let inside =
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /startContainer.json"]});
        serde_json::json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [inside],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        })
    };
    let scratch = Scratch::new("hook-records");
    let records = scratch.path().to_path_buf();
    let bundle = Bundle::new("hooks", |config| {
        args_of(&["true"])(config);
        config["hooks"] = recorded(&records);
        config["root"]["readonly"] = false.into();
    });
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let outcome = runtime.run(&bundle, &["run", &id]);
        assert_eq!(outcome.code, Some(0), "{runtime:?}: {}", outcome.stderr);
        let mut statuses = Vec::new();
        for which in
            ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
        {
            let file = if which == "startContainer" {
                bundle.path().join("rootfs").join("startContainer.json")
            } else {
                records.join(format!("{which}.json"))
            };
            let state: Value = serde_json::from_str(
                &std::fs::read_to_string(&file)
                    .unwrap_or_else(|_| panic!("{runtime:?} did not run the {which} hook")),
            )
            .unwrap();
            assert_eq!(state["id"], id.as_str(), "{runtime:?} {which}");
            assert_eq!(state["bundle"], bundle.path().to_str().unwrap(), "{runtime:?} {which}");
            // The pid as the hook's side sees it: pid 1 inside.
            let pid = match state["pid"].as_i64() {
                None | Some(0) => "none",
                Some(1) => "1",
                Some(_) => "outside",
            };
            statuses.push(format!("{which}: {}, pid {pid}", state["status"].as_str().unwrap()));
            std::fs::remove_file(file).unwrap();
        }
        seen.push(statuses);
    }
    assert_eq!(seen[1], seen[0], "the statuses the hooks saw: ours (left), runc's (right)");

    let failing = Bundle::new("failing-hook", |config| {
        args_of(&["true"])(config);
        config["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/false"}]});
    });
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_ne!(
            runtime.detached(&failing, &["create", &id]),
            Some(0),
            "{runtime:?} ignored a failing hook"
        );
        assert_eq!(runtime.state(&failing, &id), None, "{runtime:?} kept the container");
    }
}

/// `kill --all` signals every process of the container, `list --format
/// json` lists the same fields, and a failing command leaves one JSON line
/// in the --log file: in runc and ours alike.
#[test]
fn kill_all_list_and_log_as_with_runc() {
    if !needs_runc("kill_all_list_and_log_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("kill-all", args_of(&["sh", "-c", "sleep 30 & sleep 30"]));
    let mut listed = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0));
        let list = runtime.run(&bundle, &["list", "--format", "json"]);
        let list: Value = serde_json::from_str(&list.stdout).unwrap();
        let entry = list.as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).expect("listed").clone();
        let mut keys: Vec<String> = entry.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        listed.push(keys);
        assert_eq!(entry["status"], "running", "{runtime:?}");

        assert_eq!(
            runtime.detached(&bundle, &["kill", "--all", &id, "9"]),
            Some(0),
            "{runtime:?} kill --all"
        );
        runtime.wait_until_stopped(&bundle, &id, "kill --all did not stop it");
        assert_eq!(runtime.detached(&bundle, &["delete", &id]), Some(0));

        let log = bundle.path().join(format!("{runtime:?}.log"));
        let mut failing = runtime.command(&bundle);
        failing.arg("--log").arg(&log).args(["--log-format", "json", "start", "no-such-container"]);
        assert_ne!(
            failing.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().code(),
            Some(0)
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let last: Value = serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap();
        assert_eq!(last["level"], "error", "{runtime:?} log: {text}");
        assert!(last["msg"].as_str().is_some_and(|m| !m.is_empty()), "{runtime:?} log: {text}");
    }
    assert_eq!(listed[1], listed[0], "list --format json fields: ours (left), runc's (right)");
}

/// Joining namespaces by path, as a pod's containers join its sandbox's: a
/// second container joins the network, IPC and UTS namespaces of a first
/// one, under runc and under ours, and both land in the very same ones.
#[test]
fn joining_a_sandbox_namespaces_as_with_runc() {
    if !needs_runc("joining_a_sandbox_namespaces_as_with_runc") {
        return;
    }
    let sandbox = Bundle::new("sandbox", |config| {
        args_of(&["sleep", "30"])(config);
        config["hostname"] = "sandbox".into();
    });
    let (sandbox_id, pid) = started_by_runc(&sandbox);
    let namespace =
        |kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap().display().to_string();
    let expected = format!("sandbox\n{}\n{}\n{}\n", namespace("net"), namespace("ipc"), namespace("uts"));

    let member = Bundle::new("member", |config| {
        let look = "hostname; for kind in net ipc uts; do readlink /proc/self/ns/$kind; done";
        args_of(&["sh", "-c", look])(config);
        config.as_object_mut().unwrap().remove("hostname");
        for entry in config["linux"]["namespaces"].as_array_mut().unwrap() {
            let kind = entry["type"].as_str().unwrap().to_string();
            let file = match kind.as_str() {
                "network" => "net",
                "ipc" | "uts" => kind.as_str(),
                _ => continue,
            };
            entry["path"] = format!("/proc/{pid}/ns/{file}").into();
        }
    });
    // The createRuntime and prestart hooks run in the runtime's namespaces,
    // not the sandbox's the container joins: here, the test's own.
    let seen = member.path().join("hooks-saw");
    let hook = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c",
        format!("for kind in net ipc uts; do readlink /proc/self/ns/$kind; done >> {}", seen.display())]});
    member.edit(|config| {
        config["hooks"] = serde_json::json!({"createRuntime": [hook.clone()], "prestart": [hook]});
    });
    let own = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap().display().to_string();
    let runtimes = format!("{}\n{}\n{}\n", own("net"), own("ipc"), own("uts")).repeat(2);
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let _ = std::fs::remove_file(&seen);
        let outcome = runtime.run(&member, &["run", &unique_id()]);
        assert_eq!(
            (outcome.code, outcome.stdout.as_str()),
            (Some(0), expected.as_str()),
            "{runtime:?}: {}",
            outcome.stderr
        );
        assert_eq!(std::fs::read_to_string(&seen).unwrap(), runtimes, "{runtime:?}: where its hooks ran");
    }
    assert_eq!(Runtime::Runc.detached(&sandbox, &["delete", "--force", &sandbox_id]), Some(0));
}

/// Joining a user namespace by path: a second container's new namespaces
/// are made inside the first one's user namespace (root inside is 100000
/// outside there too), under runc and under ours. Joining its mount
/// namespace is refused by both (runc fails setting the rootfs up there).
#[test]
fn joining_a_user_namespace_as_with_runc() {
    if !needs_runc("joining_a_user_namespace_as_with_runc") {
        return;
    }
    let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let with_map = |config: &mut Value| {
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map.clone();
    };
    let sandbox = Bundle::new("userns-sandbox", |config| {
        args_of(&["sleep", "30"])(config);
        config["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        with_map(config);
    });
    let (sandbox_id, pid) = started_by_runc(&sandbox);
    let user_namespace = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap().display().to_string();

    let joining = |extra: Option<Value>| {
        let look = "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; ls -l /dev/null | cut -c1";
        Bundle::new("userns-member", |config| {
            args_of(&["sh", "-c", look])(config);
            let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
            namespaces.push(serde_json::json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
            if let Some(extra) = extra {
                namespaces.retain(|n| n["type"] != extra["type"]);
                namespaces.push(extra);
            }
            with_map(config);
        })
    };
    let member = joining(None);
    let expected = format!("0\n         0     100000      65536\n{user_namespace}\nc\n");
    runs_as_with_runc(&member, "joining a user namespace", |out| out == expected);

    let sharing_mounts =
        joining(Some(serde_json::json!({"type": "mount", "path": format!("/proc/{pid}/ns/mnt")})));
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let outcome = runtime.run(&sharing_mounts, &["run", &unique_id()]);
        assert_ne!(outcome.code, Some(0), "{runtime:?} ran in another container's mount namespace");
    }
    assert_eq!(Runtime::Runc.detached(&sandbox, &["delete", "--force", &sandbox_id]), Some(0));
}

/// Receives one descriptor sent with SCM_RIGHTS on a connection to
/// `listener`, as containerd's shim does on its console socket.
fn receive_terminal(listener: std::os::unix::net::UnixListener) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let (connection, _) = listener.accept().unwrap();
    let mut name = [0u8; 256];
    let mut bytes = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let message =
        // Close-on-exec: tests run side by side, and this descriptor must
        // not leak into the processes another test starts.
        recvmsg::<()>(connection.as_raw_fd(), &mut bytes, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
    for control in message.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = control {
            // SAFETY: the kernel just gave us this descriptor.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor came over the console socket");
}

/// A console socket at `path`, listened on by a thread that gives back the
/// terminal's master end once a runtime sends it; and the path, to pass.
fn console_socket(path: &Path) -> (String, std::thread::JoinHandle<std::os::fd::OwnedFd>) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    (path.to_str().unwrap().to_string(), std::thread::spawn(move || receive_terminal(listener)))
}

/// What a terminal showed, read until its other end is gone (EIO), with
/// the terminal's CR LF line ends as plain LF.
fn terminal_output(master: &std::os::fd::OwnedFd) -> String {
    let mut output = Vec::new();
    let mut buffer = [0u8; 1024];
    while let Ok(read @ 1..) = nix::unistd::read(master, &mut buffer) {
        output.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&output).replace("\r\n", "\n")
}

/// A container of `bundle`, created and started by runc (a pod's sandbox,
/// say): its id and its first process's pid.
fn started_by_runc(bundle: &Bundle) -> (String, i64) {
    let id = unique_id();
    assert_eq!(Runtime::Runc.detached(bundle, &["create", &id]), Some(0));
    assert_eq!(Runtime::Runc.detached(bundle, &["start", &id]), Some(0));
    let pid = Runtime::Runc.state(bundle, &id).unwrap()["pid"].as_i64().unwrap();
    (id, pid)
}

/// process.terminal with --console-socket: the terminal's master end comes
/// over the socket, and the program sees a terminal, in runc and ours.
#[test]
fn a_terminal_through_the_console_socket_as_with_runc() {
    if !needs_runc("a_terminal_through_the_console_socket_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("terminal", |config| {
        args_of(&["sh", "-c", "tty; [ -t 0 ] && echo stdin is a terminal; stty size"])(config);
        config["process"]["terminal"] = Value::Bool(true);
        config["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 101});
    });
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let (socket, receiver) = console_socket(&bundle.path().join(format!("{runtime:?}.sock")));
        assert_eq!(
            runtime.detached(&bundle, &["create", "--console-socket", &socket, &id]),
            Some(0),
            "{runtime:?}"
        );
        let master = receiver.join().unwrap();
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0), "{runtime:?}");
        seen.push(terminal_output(&master));
        runtime.wait_until_stopped(&bundle, &id, "never stopped");
        assert_eq!(runtime.detached(&bundle, &["delete", &id]), Some(0));
    }
    assert_eq!(seen[0], "/dev/pts/0\nstdin is a terminal\n33 101\n", "runc's");
    assert_eq!(seen[1], seen[0], "on the terminal: ours (left), runc's (right)");

    // A terminal needs a console socket, and a console socket a terminal.
    assert_ne!(Runtime::Ours.detached(&bundle, &["create", &unique_id()]), Some(0));
}

/// pause and resume (the cgroup freezer), ps in both formats, and a force
/// delete of a paused container: the same statuses, refusals and process
/// lists as runc's.
#[test]
fn pause_resume_and_ps_as_with_runc() {
    if !needs_runc("pause_resume_and_ps_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("pause", args_of(&["sh", "-c", "sleep 30 & sleep 30"]));
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let status = || runtime.state(&bundle, &id).unwrap()["status"].as_str().unwrap().to_string();
        let code = |args: &[&str]| runtime.detached(&bundle, args);
        assert_eq!(code(&["create", &id]), Some(0));
        // Paused before start, a container is created again once resumed.
        let pause_created = code(&["pause", &id]);
        let paused_created = status();
        let resume_created = code(&["resume", &id]);
        let created_again = status();
        assert_eq!(code(&["start", &id]), Some(0), "{runtime:?}");
        // Two sleeps, once sh has started the first and become the second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let pids = loop {
            let json = runtime.run(&bundle, &["ps", "--format", "json", &id]);
            let pids: Vec<i64> = serde_json::from_str(&json.stdout).unwrap_or_default();
            if pids.len() == 2 || std::time::Instant::now() > deadline {
                break pids;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let table = runtime.run(&bundle, &["ps", &id]);
        let sleeping = table.stdout.lines().filter(|line| line.ends_with("sleep 30")).count();
        let header = table
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let pause = code(&["pause", &id]);
        let paused = status();
        // Refused (runc ends with 255 there, ours with 1, its code for every error).
        let exec_while_paused = code(&["exec", &id, "true"]) != Some(0);
        let pause_twice = code(&["pause", &id]);
        let resume = code(&["resume", &id]);
        let resumed = status();
        let resume_twice = code(&["resume", &id]);
        let pause_again = code(&["pause", &id]);
        let delete_paused = code(&["delete", "--force", &id]);
        let gone = runtime.state(&bundle, &id).is_none();
        seen.push(format!(
            "pause before start {pause_created:?}: {paused_created}, resume {resume_created:?}: \
             {created_again}; {} pids; ps: {header}, {sleeping} sleeping; \
             pause {pause:?}: {paused}; exec refused while paused: {exec_while_paused}; pause twice {pause_twice:?}; \
             resume {resume:?}: {resumed}; resume twice {resume_twice:?}; pause {pause_again:?}, \
             delete --force {delete_paused:?}, gone {gone}",
            pids.len()
        ));
    }
    assert!(seen[0].contains("2 pids; ps: UID PID, 2 sleeping; pause Some(0): paused"), "runc: {}", seen[0]);
    assert_eq!(seen[1], seen[0], "ours (left), runc's (right)");
}

/// update: new limits for a living container, from a resources file on
/// standard input (as containerd passes them) and from options; the same
/// values in the cgroup's files as runc writes, the others left alone.
#[test]
fn update_changes_limits_as_runc() {
    if !needs_runc("update_changes_limits_as_runc") {
        return;
    }
    use podlab::cgroups::{Cgroup, Version};
    let version = Version::of_this_machine().unwrap();
    let memory_file = if version == Version::V1 { "memory.limit_in_bytes" } else { "memory.max" };
    let shares_file = if version == Version::V1 { "cpu.shares" } else { "cpu.weight" };
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let bundle = Bundle::new("update", |config| {
            args_of(&["sleep", "30"])(config);
            config["linux"]["cgroupsPath"] = format!("/{id}").into();
            config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
            config["linux"]["resources"]["cpu"] = serde_json::json!({"shares": 512});
        });
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        let cgroup = Cgroup::existing(version, &id, &[]);
        let read = |controller: &str, file: &str| cgroup.number(controller, file);
        let before = (read("pids", "pids.max"), read("memory", memory_file));
        let mut update = runtime.command(&bundle);
        update.args(["update", "--resources", "-", &id]).stdin(Stdio::piped());
        let mut child = update.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(br#"{"memory": {"limit": 67108864}}"#).unwrap();
        let from_file = child.wait().unwrap().code();
        let after_file = (read("pids", "pids.max"), read("memory", memory_file));
        let from_option = runtime.detached(&bundle, &["update", "--pids-limit", "20", &id]);
        let after_option = (read("pids", "pids.max"), read("memory", memory_file));
        let shares_before = read("cpu", shares_file);
        let from_shares = runtime.detached(&bundle, &["update", "--cpu-share", "256", &id]);
        let shares_after = read("cpu", shares_file);
        seen.push(format!(
            "{before:?}; {from_file:?}: {after_file:?}; {from_option:?}: {after_option:?}; \
             shares {shares_before:?}, {from_shares:?}: {shares_after:?}"
        ));
        cgroup.keep();
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
    }
    assert!(
        seen[0].contains("Some(0): (Some(50), Some(67108864)); Some(0): (Some(20), Some(67108864))"),
        "runc: {}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0], "ours (left), runc's (right)");
}

/// exec with a terminal: the master end comes over the console socket, as
/// containerd's shim asks for it (`exec --detach --tty --console-socket`).
#[test]
fn exec_with_a_terminal_as_with_runc() {
    if !needs_runc("exec_with_a_terminal_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("exec-tty", args_of(&["sleep", "30"]));
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0));
        let (socket, receiver) = console_socket(&bundle.path().join(format!("{runtime:?}-exec.sock")));
        let look = "tty; [ -t 0 ] && echo stdin is a terminal; ps -o comm";
        let exec = ["exec", "--detach", "--tty", "--console-socket", &socket, &id, "sh", "-c", look];
        assert_eq!(runtime.detached(&bundle, &exec), Some(0), "{runtime:?}");
        let master = receiver.join().unwrap();
        seen.push(terminal_output(&master));
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
    }
    assert!(seen[0].starts_with("/dev/pts/0\nstdin is a terminal\n"), "runc's: {}", seen[0]);
    assert_eq!(seen[1], seen[0], "on the terminal: ours (left), runc's (right)");
}

/// exec: a second process in a running container sees what its first one
/// sees, runs as the config says (or as a process file says), and ends
/// with its own status; a stopped container takes no exec. As with runc.
#[test]
fn exec_runs_in_the_container_as_with_runc() {
    if !needs_runc("exec_runs_in_the_container_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("exec", |config| {
        args_of(&["sleep", "30"])(config);
        config["hostname"] = "execd".into();
    });
    let process_file = bundle.path().join("process.json");
    let process = serde_json::json!({
        "terminal": false, "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "echo from the process file; pwd; echo $GREETING"],
        "env": ["PATH=/bin", "GREETING=hello"], "cwd": "/tmp",
    });
    std::fs::write(&process_file, process.to_string()).unwrap();
    let process_file = process_file.to_str().unwrap().to_string();
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0));
        let look = runtime.run(
            &bundle,
            &["exec", &id, "sh", "-c", "hostname; ps -o comm; grep -E '^Cap(Eff|Bnd)' /proc/self/status"],
        );
        let with_options = runtime.run(
            &bundle,
            &["exec", "--cwd", "/etc", "--env", "MOOD=fine", &id, "sh", "-c", "pwd; echo $MOOD"],
        );
        let from_file = runtime.run(&bundle, &["exec", "--process", &process_file, &id]);
        let status = runtime.run(&bundle, &["exec", &id, "sh", "-c", "exit 5"]);
        seen.push([look, with_options, from_file, status].map(|o| (o.code, o.stdout)));
        assert_eq!(runtime.detached(&bundle, &["kill", &id, "KILL"]), Some(0));
        runtime.wait_until_stopped(&bundle, &id, "never stopped");
        assert_ne!(
            runtime.detached(&bundle, &["exec", &id, "true"]),
            Some(0),
            "{runtime:?} exec'd in a stopped container"
        );
        assert_eq!(runtime.detached(&bundle, &["delete", &id]), Some(0));
    }
    assert_eq!(seen[0][0].1.lines().next(), Some("execd"), "runc's: {:?}", seen[0]);
    assert_eq!(seen[1], seen[0], "exec: ours (left), runc's (right)");
}

/// A linux.cgroupsPath with ".." stays in the cgroup tree, as runc keeps
/// it: `../../tmp/x/leaf` is the group tmp/x/leaf, never /tmp/x on the
/// host. runc leaves the groups it made above the leaf; ours removes them.
#[test]
fn a_cgroup_path_stays_in_the_tree_as_with_runc() {
    if !needs_runc("a_cgroup_path_stays_in_the_tree_as_with_runc") {
        return;
    }
    for runtime in [Runtime::Runc, Runtime::Ours] {
        // runc's are removed before ours runs, so that ours makes its own.
        let _groups = GroupsNamed("tmp".to_string());
        let id = unique_id();
        let bundle = Bundle::new("cgroup-escape", |config| {
            args_of(&["true"])(config);
            config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
        });
        let outside = bundle.path().join("escape");
        let path = format!("../../../../../..{}/{id}", outside.display());
        bundle.edit(|config| {
            config["linux"]["cgroupsPath"] = path.into();
        });
        let outcome = runtime.run(&bundle, &["run", &id]);
        assert_eq!(outcome.code, Some(0), "{runtime:?}: {}", outcome.stderr);
        assert!(!outside.exists(), "{runtime:?} made {} outside the cgroup tree", outside.display());
        if let Runtime::Ours = runtime {
            assert_eq!(groups_named("tmp"), Vec::<PathBuf>::new(), "ours left the groups above the leaf");
        }
    }
}

/// The program starts with no signal ignored and none blocked, as under
/// runc: the runtime's own (Rust ignores SIGPIPE) are not handed down, and
/// `yes | head -1` ends. Signals 32 and 33, which glibc keeps for itself and
/// runc's Go runtime leaves ignored, are not compared.
#[test]
fn signals_reach_the_program_as_with_runc() {
    if !needs_runc("signals_reach_the_program_as_with_runc") {
        return;
    }
    let script = "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1";
    let bundle = Bundle::new("signals", args_of(&["sh", "-c", script]));
    let glibcs = (1u64 << 31) | (1u64 << 32);
    let seen = |outcome: &Outcome| -> Vec<String> {
        outcome
            .stdout
            .lines()
            .map(|line| match line.split_once(":\t") {
                Some((name, mask)) => {
                    format!("{name} {:x}", u64::from_str_radix(mask, 16).unwrap() & !glibcs)
                }
                None => line.to_string(),
            })
            .collect()
    };
    let runc = Runtime::Runc.run(&bundle, &["run", &unique_id()]);
    assert_eq!(seen(&runc), ["SigBlk 0", "SigIgn 0", "y"], "runc: {}{}", runc.stdout, runc.stderr);
    let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
    assert_eq!(seen(&ours), seen(&runc), "ours (left), runc's (right): {}", ours.stderr);
}

/// --preserve-fds past the descriptors that are open is refused, as runc
/// refuses it (and as large as it goes, without a panic on the way).
#[test]
fn preserve_fds_past_the_open_ones_is_refused_as_by_runc() {
    if !needs_runc("preserve_fds_past_the_open_ones_is_refused_as_by_runc") {
        return;
    }
    let bundle = Bundle::new("preserve-all", args_of(&["true"]));
    // runc holds descriptors of its own from 3 on, so only a count past
    // any process's shows the same in both.
    let count = "4294967295";
    let runc = Runtime::Runc.run(&bundle, &["run", "--preserve-fds", count, &unique_id()]);
    assert!(runc.stderr.contains("unable to stat preserved-fd"), "runc: {}", runc.stderr);
    let ours = Runtime::Ours.run(&bundle, &["run", "--preserve-fds", count, &unique_id()]);
    assert_eq!(ours.code, runc.code, "{}", ours.stderr);
    assert!(ours.stderr.contains("is not open"), "{}", ours.stderr);
    assert_eq!(ours.stderr.lines().count(), 1, "{}", ours.stderr);
}

/// A rootfs whose dev/null is not the null device (here a link to a file
/// of its own) is refused before anything is masked with it: masking binds
/// the device over /proc files, and a link there would bind whatever it
/// leads to (CVE-2025-31133; runc 1.1.5, Debian's, still binds it).
#[test]
fn a_dev_null_that_is_not_the_device_is_refused() {
    if !needs_runc("a_dev_null_that_is_not_the_device_is_refused") {
        return;
    }
    let bundle = Bundle::new("fake-null", |config| {
        args_of(&["cat", "/proc/keys"])(config);
        // The rootfs's own /dev, not a tmpfs over it.
        config["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev");
    });
    let null = bundle.path().join("rootfs/dev/null");
    std::fs::remove_file(&null).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &null).unwrap();
    let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
    assert_eq!(ours.code, Some(1), "{}", ours.stderr);
    assert!(ours.stderr.contains("\"/dev/null\" is not the character device 1:3"), "{}", ours.stderr);
    assert_eq!(ours.stdout, "", "the masked file was shown");
}

/// A runtime killed while it prepares the container (here by its own
/// createRuntime hook) leaves no process behind in the container's cgroup:
/// the first process goes on only when told to, never on the end of the
/// pipe it waits on, as with runc.
#[test]
fn a_runtime_killed_while_preparing_leaves_no_process_as_with_runc() {
    if !needs_runc("a_runtime_killed_while_preparing_leaves_no_process_as_with_runc") {
        return;
    }
    use podlab::cgroups::{Cgroup, Version};
    let version = Version::of_this_machine().unwrap();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let bundle = Bundle::new("killed-preparing", |config| {
            args_of(&["true"])(config);
            config["linux"]["cgroupsPath"] = format!("/{id}").into();
            let suicide = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]});
            config["hooks"] = serde_json::json!({"createRuntime": [suicide]});
        });
        let _groups = GroupsNamed(id.clone());
        let code = runtime.detached(&bundle, &["create", &id]);
        assert_eq!(code, None, "{runtime:?} was not killed by its hook");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let cgroup = Cgroup::existing(version, &id, &[]);
        while !cgroup.members().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(cgroup.members(), vec![], "{runtime:?} left its container's first process running");
        cgroup.keep();
        if let Runtime::Ours = runtime {
            // What it made is a container still: stopped, listed, removable.
            assert_eq!(runtime.state(&bundle, &id).unwrap()["status"], "stopped");
            let listed = runtime.run(&bundle, &["list"]);
            let line = listed.stdout.lines().find(|line| line.starts_with(&format!("{id} ")));
            assert!(line.is_some_and(|line| line.contains(" stopped ")), "{}", listed.stdout);
            assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
            assert!(!runtime.root(&bundle).join(&id).exists(), "its state was left");
            let version = podlab::cgroups::Version::of_this_machine().unwrap();
            assert!(podlab::cgroups::Cgroup::existing(version, &id, &[]).members().is_empty());
        }
    }
}

/// `create` killed at any moment leaves a container that delete --force
/// removes, with its group and any process it had started: the state is
/// written before anything it must remove is made. Killed at 14 points,
/// from before the state exists to after the container waits.
#[test]
fn a_create_killed_at_any_point_is_removed_by_delete_force() {
    if !needs_runc("a_create_killed_at_any_point_is_removed_by_delete_force") {
        return;
    }
    let bundle = Bundle::new("killed-create", args_of(&["sleep", "30"]));
    for delay_ms in (0..14u64).map(|i| i * 2) {
        let id = unique_id();
        let _groups = GroupsNamed(format!("podlab-{id}"));
        let mut create = Runtime::Ours.command(&bundle);
        create.args(["create", &id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut create = create.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = create.kill();
        let _ = create.wait();
        let state = Runtime::Ours.root(&bundle).join(&id);
        if state.exists() {
            let deleted = Runtime::Ours.run(&bundle, &["delete", "--force", &id]);
            assert_eq!(deleted.code, Some(0), "killed after {delay_ms} ms: {}", deleted.stderr);
        }
        assert!(!state.exists(), "killed after {delay_ms} ms: the state was left");
        let version = podlab::cgroups::Version::of_this_machine().unwrap();
        let group = podlab::cgroups::Cgroup::existing(version, &format!("podlab-{id}"), &[]);
        assert!(group.members().is_empty(), "killed after {delay_ms} ms: a process was left in its group");
        assert!(group.directory("pids").is_none(), "killed after {delay_ms} ms: its group was left");
        group.keep();
    }
}

/// The groups of this name (a path) that are there, in every tree.
fn groups_named(name: &str) -> Vec<PathBuf> {
    let trees = std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|tree| tree.path());
    trees
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .map(|tree| tree.join(name))
        .filter(|g| g.is_dir())
        .collect()
}

/// The groups of this name in every tree, whoever made them (runc makes
/// them in trees podlab does not use), removed when this goes with all
/// below them, deepest first, their processes killed.
struct GroupsNamed(String);

impl Drop for GroupsNamed {
    fn drop(&mut self) {
        fn remove(group: &Path) {
            for below in
                std::fs::read_dir(group).into_iter().flatten().flatten().filter(|e| e.path().is_dir())
            {
                remove(&below.path());
            }
            for pid in std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default().lines() {
                let pid = nix::unistd::Pid::from_raw(pid.parse().unwrap());
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while group.exists()
                && std::fs::remove_dir(group).is_err()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        groups_named(&self.0).iter().for_each(|group| remove(group));
    }
}

/// `run` passes a signal it gets on to the container and lives on to
/// delete it when it ends, as runc does: the program's own handler runs,
/// and nothing of the container is left.
#[test]
fn run_passes_signals_on_as_runc_does() {
    if !needs_runc("run_passes_signals_on_as_runc_does") {
        return;
    }
    let script = "trap 'echo got TERM; exit 3' TERM; echo ready; sleep 30 & wait";
    let bundle = Bundle::new("run-signals", args_of(&["sh", "-c", script]));
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let mut run = runtime.command(&bundle);
        run.args(["run", &id]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut run = common::TerminateOnDrop(run.spawn().unwrap());
        let mut stdout = std::io::BufReader::new(run.0.stdout.take().unwrap());
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut ready).unwrap();
        assert_eq!(ready, "ready\n", "{runtime:?}");
        let pid = nix::unistd::Pid::from_raw(run.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = run.0.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert_eq!(runtime.state(&bundle, &id), None, "{runtime:?} left the container's state");
        seen.push((status.code(), rest));
    }
    assert_eq!(seen[0], (Some(3), "got TERM\n".to_string()), "runc");
    assert_eq!(seen[1], seen[0], "ours (left), runc's (right)");
}

/// Creates side by side into a --root that does not exist yet all succeed:
/// each makes the root if it is missing, and one that finds it made by
/// another in the meantime goes on.
#[test]
fn parallel_creates_into_a_new_root() {
    if !needs_runc("parallel_creates_into_a_new_root") {
        return;
    }
    let bundle = Bundle::new("parallel-root", args_of(&["sleep", "30"]));
    let root = bundle.path().join("new/root");
    let ids: Vec<String> = (0..12).map(|_| unique_id()).collect();
    // Each one's errors in a file: a created container keeps its creator's
    // stdio, so a pipe would not end until the container does.
    let errors = |id: &str| bundle.path().join(format!("{id}.err"));
    let creates: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut create = Command::new(example("04-runtime"));
            create.arg("--root").arg(&root).args(["--quiet", "create", id]).current_dir(bundle.path());
            let stderr = std::fs::File::create(errors(id)).unwrap();
            create.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().unwrap()
        })
        .collect();
    let outcomes: Vec<_> = creates.into_iter().map(|mut c| c.wait().unwrap()).collect();
    for id in &ids {
        let mut delete = Command::new(example("04-runtime"));
        delete.arg("--root").arg(&root).args(["--quiet", "delete", "--force", id]);
        run(&mut delete);
    }
    for (id, status) in ids.iter().zip(outcomes) {
        assert!(status.success(), "{id}: {}", std::fs::read_to_string(errors(id)).unwrap_or_default());
    }
}

/// A container whose state.json is damaged is shown by `list` (a warning
/// naming it), and delete --force removes it from what is left: its
/// process, its group and its directory.
#[test]
fn a_damaged_state_is_shown_and_removed_by_delete_force() {
    if !needs_root_and_busybox("a_damaged_state_is_shown_and_removed_by_delete_force") {
        return;
    }
    let bundle = Bundle::new("damaged", args_of(&["sleep", "30"]));
    let id = unique_id();
    let _groups = GroupsNamed(format!("podlab-{id}"));
    assert_eq!(Runtime::Ours.detached(&bundle, &["create", &id]), Some(0));
    let state = Runtime::Ours.root(&bundle).join(&id);
    std::fs::write(state.join("state.json"), "{ not json").unwrap();
    let listed = Runtime::Ours.run(&bundle, &["list"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(listed.stderr.contains(&format!("the state of container {id}")), "{}", listed.stderr);
    assert!(listed.stderr.contains("is damaged"), "{}", listed.stderr);
    let deleted = Runtime::Ours.run(&bundle, &["delete", "--force", &id]);
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert!(!state.exists(), "its state was left");
    let version = podlab::cgroups::Version::of_this_machine().unwrap();
    let group = podlab::cgroups::Cgroup::existing(version, &format!("podlab-{id}"), &[]);
    assert!(group.directory("pids").is_none(), "its group was left");
    group.keep();
}

/// A hook that does not read its stdin, given a state larger than a pipe
/// holds (64 KiB of annotations), is still ended by its timeout, as runc
/// ends it: the state is written without waiting on the hook.
#[test]
fn a_hook_that_does_not_read_a_large_state_still_times_out_as_with_runc() {
    if !needs_runc("a_hook_that_does_not_read_a_large_state_still_times_out_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("hook-large-state", |config| {
        args_of(&["true"])(config);
        config["annotations"] = serde_json::json!({"io.podlab.large": "x".repeat(100_000)});
        let deaf = serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1});
        config["hooks"] = serde_json::json!({"createRuntime": [deaf]});
    });
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let (code, said) = runtime.told(&bundle, &["create", &id]);
        assert_ne!(code, Some(0), "{runtime:?} went on past the hook's timeout: {said}");
        if let Runtime::Ours = runtime {
            assert!(said.contains("did not end within its timeout of 1s"), "{said}");
        }
        runtime.detached(&bundle, &["delete", "--force", &id]);
    }
}

/// Mount targets are paths in the container: a link on the way is
/// followed, as runc follows it, but inside the rootfs, never out of it,
/// whether it points out by an absolute path or by climbing with "..".
#[test]
fn mount_targets_through_links_stay_in_the_rootfs_as_with_runc() {
    if !needs_runc("mount_targets_through_links_stay_in_the_rootfs_as_with_runc") {
        return;
    }
    let bundle = Bundle::new("mount-links", |config| {
        args_of(&["sh", "-c", "cut -d' ' -f2 /proc/mounts | grep -E '/(absolute|climbing|merged)$'"])(config);
        let tmpfs = |at: &str| serde_json::json!({"destination": at, "type": "tmpfs", "source": "tmpfs"});
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.extend([tmpfs("/absolute/absolute"), tmpfs("/climbing/climbing"), tmpfs("/var/run/merged")]);
    });
    // Where the links point, on the host: it must stay as it is.
    let outside = bundle.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let rootfs = bundle.path().join("rootfs");
    std::os::unix::fs::symlink(&outside, rootfs.join("absolute")).unwrap();
    let climbing = format!("../../../../../../../..{}", outside.display());
    std::os::unix::fs::symlink(climbing, rootfs.join("climbing")).unwrap();
    // As real images have it, and a kubelet mounts secrets below it.
    std::fs::create_dir_all(rootfs.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", rootfs.join("var/run")).unwrap();
    let inside = |name: &str| format!("{}/{name}", outside.display());
    let expected = format!("{}\n{}\n/run/merged\n", inside("absolute"), inside("climbing"));
    let runc = runs_as_with_runc(&bundle, "links on the way to mount targets", |out| out == expected);
    assert_eq!(runc.code, Some(0));
    let left: Vec<_> = std::fs::read_dir(&outside).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "a mount target was made outside the rootfs");
    assert!(rootfs.join(outside.strip_prefix("/").unwrap()).join("absolute").is_dir());
}

/// The race behind CVE-2021-30465: while containers start, a directory on
/// the way to a mount target is swapped, again and again, for a link out of
/// the rootfs. Whatever the timing, nothing is made or mounted outside: each
/// step is resolved inside the root, and the mount is made through the
/// descriptor the resolution gave, not the path.
#[test]
fn a_link_swapped_in_while_mounting_never_leads_out() {
    if !needs_root_and_busybox("a_link_swapped_in_while_mounting_never_leads_out") {
        return;
    }
    let bundle = Bundle::new("mount-race", |config| {
        args_of(&["true"])(config);
        let target =
            serde_json::json!({"destination": "/race/deep/target", "type": "tmpfs", "source": "tmpfs"});
        config["mounts"].as_array_mut().unwrap().push(target);
    });
    let outside = bundle.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let rootfs = bundle.path().join("rootfs");
    std::fs::create_dir(rootfs.join("race")).unwrap();
    std::os::unix::fs::symlink(&outside, rootfs.join("swapped")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, rootfs) = (stop.clone(), rootfs.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let cwd = nix::fcntl::AT_FDCWD;
                let exchange = nix::fcntl::RenameFlags::RENAME_EXCHANGE;
                nix::fcntl::renameat2(cwd, &rootfs.join("race"), cwd, &rootfs.join("swapped"), exchange)
                    .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let mut started = 0;
    for _ in 0..40 {
        // A run may fail (the target is not a directory at that instant);
        // none may reach outside.
        if Runtime::Ours.detached(&bundle, &["run", &unique_id()]) == Some(0) {
            started += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    let left: Vec<_> = std::fs::read_dir(&outside).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "made outside the rootfs in {started} runs and {swaps} swaps");
    assert!(started > 0, "no run started in {swaps} swaps");
}

/// A memory limit below what the container uses: a v1 kernel refuses it
/// (EBUSY) once it cannot reclaim enough, and runc says so with the usage;
/// ours says it in a sentence too, and the container runs on as it was.
#[test]
fn a_memory_limit_below_usage_is_refused_as_by_runc() {
    if !needs_runc("a_memory_limit_below_usage_is_refused_as_by_runc") {
        return;
    }
    let v1 = podlab::cgroups::Version::of_this_machine().ok() == Some(podlab::cgroups::Version::V1);
    let mut codes = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let bundle = Bundle::new("update-below", args_of(&["sleep", "30"]));
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0));
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0));
        let (code, said) = runtime.told(&bundle, &["update", "--memory", "4096", &id]);
        let status = runtime.state(&bundle, &id).unwrap()["status"].clone();
        if v1 {
            let phrase = match runtime {
                Runtime::Runc => "unable to set memory limit to 4096 (current usage:",
                _ => "the kernel refused a memory limit of 4096 bytes: the container uses ",
            };
            assert!(said.contains(phrase), "{runtime:?}: {said}");
            assert_eq!(status, "running", "{runtime:?}");
        }
        codes.push(code);
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
    }
    assert_eq!(codes[1], codes[0], "ours (left), runc's (right)");
}

/// A runtime killed after it let the first process go, while that process
/// sets itself up (here, while its createContainer hook runs): the process
/// dies with it (the parent-death signal), rather than finish its set-up
/// alone and wait forever for a start that no one will send.
#[test]
fn a_runtime_killed_while_the_container_sets_up_leaves_no_process() {
    if !needs_runc("a_runtime_killed_while_the_container_sets_up_leaves_no_process") {
        return;
    }
    use podlab::cgroups::{Cgroup, Version};
    let version = Version::of_this_machine().unwrap();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let bundle = Bundle::new("killed-setting-up", |config| {
            args_of(&["true"])(config);
            config["linux"]["cgroupsPath"] = format!("/{id}").into();
        });
        let marker = bundle.path().join("hook-ran");
        let script = format!("touch {}; sleep 1", marker.display());
        bundle.edit(|config| {
            let hook = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
            config["hooks"] = serde_json::json!({"createContainer": [hook]});
        });
        let _groups = GroupsNamed(id.clone());
        let mut create = runtime.command(&bundle);
        create.args(["create", &id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut create = create.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !marker.exists() {
            assert!(std::time::Instant::now() < deadline, "{runtime:?}: the hook never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        create.kill().unwrap();
        create.wait().unwrap();
        // The hook ends within a second; a first process that outlived the
        // runtime would be there for good.
        let cgroup = Cgroup::existing(version, &id, &[]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
        while !cgroup.members().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let left = cgroup.members();
        cgroup.keep();
        let _ = runtime.detached(&bundle, &["delete", "--force", &id]);
        assert_eq!(left, vec![], "{runtime:?} left its container's first process running");
    }
}

/// An attached `exec` passes the signals it gets on to its process and
/// waits for it, as runc's does, rather than die and leave the process
/// running in the container.
#[test]
fn exec_passes_signals_on_as_runc_does() {
    if !needs_runc("exec_passes_signals_on_as_runc_does") {
        return;
    }
    // The sleep's stdout is not the pipe: it outlives the shell (and runc's
    // exec waits for it to end too, hence a short one).
    let script = "trap 'echo got TERM; exit 3' TERM; echo ready; sleep 3 >/dev/null & wait";
    let bundle = Bundle::new("exec-signals", args_of(&["sleep", "60"]));
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        assert_eq!(runtime.detached(&bundle, &["create", &id]), Some(0), "{runtime:?}");
        assert_eq!(runtime.detached(&bundle, &["start", &id]), Some(0), "{runtime:?}");
        let mut exec = runtime.command(&bundle);
        exec.args(["exec", &id, "sh", "-c", script]).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut exec = common::TerminateOnDrop(exec.stderr(Stdio::null()).spawn().unwrap());
        let mut stdout = std::io::BufReader::new(exec.0.stdout.take().unwrap());
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut ready).unwrap();
        assert_eq!(ready, "ready\n", "{runtime:?}");
        let pid = nix::unistd::Pid::from_raw(exec.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = exec.0.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        seen.push((status.code(), rest));
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
    }
    assert_eq!(seen[0], (Some(3), "got TERM\n".to_string()), "runc");
    assert_eq!(seen[1], seen[0], "ours (left), runc's (right)");
}

/// A bind of a file onto a target the rootfs lacks: an empty file is made
/// there to bind onto, as runc makes one. A CRI binds /etc/hosts,
/// /etc/resolv.conf, /etc/hostname and /dev/termination-log into every
/// container, whatever its image has.
#[test]
fn a_file_is_bound_where_the_rootfs_has_none_as_with_runc() {
    if !needs_runc("a_file_is_bound_where_the_rootfs_has_none_as_with_runc") {
        return;
    }
    let look = "cat /etc/resolv.conf /etc/hosts; ls -l /dev/termination-log | cut -c1; ls /etc";
    let bundle = Bundle::new("file-binds", |config| {
        args_of(&["sh", "-c", look])(config);
        let bind = |from: &str, to: &str| serde_json::json!({"destination": to, "type": "bind", "source": from, "options": ["rbind", "rw"]});
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.extend([
            bind("resolv.conf", "/etc/resolv.conf"),
            bind("hosts", "/etc/hosts"),
            bind("termination-log", "/dev/termination-log"),
        ]);
    });
    std::fs::write(bundle.path().join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    std::fs::write(bundle.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(bundle.path().join("termination-log"), "").unwrap();
    runs_as_with_runc(&bundle, "file binds", |out| {
        out.starts_with("nameserver 192.0.2.53\n127.0.0.1 localhost\n-\n")
    });
}

/// process.user.umask, and runc's 0022 where the config gives none: the
/// mask the program starts with, whatever the runtime's own was.
#[test]
fn the_umask_is_the_configs_as_with_runc() {
    if !needs_runc("the_umask_is_the_configs_as_with_runc") {
        return;
    }
    let look = "umask; rm -f /tmp/new; touch /tmp/new; stat -c %a /tmp/new";
    for (umask, expected) in [(Some(0o077), "0077\n600\n"), (None, "0022\n644\n")] {
        let bundle = Bundle::new("umask", |config| {
            args_of(&["sh", "-c", look])(config);
            config["root"]["readonly"] = false.into();
            if let Some(umask) = umask {
                config["process"]["user"]["umask"] = umask.into();
            }
        });
        runs_as_with_runc(&bundle, "the umask", |out| out == expected);
    }
}

/// What create read is what the container is: a config.json changed, or
/// broken, after create changes nothing for start, exec and delete (their
/// hooks and the process exec starts from come from the copy create
/// kept). A failing poststart or poststop hook is a warning, and the hooks
/// after it run all the same.
#[test]
fn the_config_after_create_changes_nothing() {
    if !needs_root_and_busybox("the_config_after_create_changes_nothing") {
        return;
    }
    let bundle = Bundle::new("config-kept", args_of(&["sleep", "60"]));
    let said = bundle.path().join("hooks-said");
    let hook = |script: String| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
    bundle.edit(|config| {
        let say = |what: &str| format!("echo {what} >> {}", said.display());
        config["hooks"] = serde_json::json!({
            "poststart": [hook("exit 1".into()), hook(say("poststart"))],
            "poststop": [hook("exit 1".into()), hook(say("poststop"))],
        });
    });
    let id = unique_id();
    assert_eq!(Runtime::Ours.detached(&bundle, &["create", &id]), Some(0));
    std::fs::write(bundle.path().join("config.json"), "{ this is no longer JSON").unwrap();
    let (code, warned) = Runtime::Ours.told(&bundle, &["start", &id]);
    assert_eq!(code, Some(0), "{warned}");
    assert!(warned.contains("warning: the poststart hook /bin/sh failed"), "{warned}");
    let exec = Runtime::Ours.run(&bundle, &["exec", &id, "sh", "-c", "echo in there"]);
    assert_eq!((exec.code, exec.stdout.as_str()), (Some(0), "in there\n"), "{}", exec.stderr);
    let (code, warned) = Runtime::Ours.told(&bundle, &["delete", "--force", &id]);
    assert_eq!(code, Some(0), "{warned}");
    assert!(warned.contains("warning: the poststop hook /bin/sh failed"), "{warned}");
    assert_eq!(std::fs::read_to_string(&said).unwrap(), "poststart\npoststop\n");
}

/// linux.devices are made, with the type, numbers, mode and owner the
/// config gives (a FIFO too); opening one is still up to the device rules.
#[test]
fn config_devices_are_made_as_with_runc() {
    if !needs_runc("config_devices_are_made_as_with_runc") {
        return;
    }
    let look =
        "ls -ln /dev/fuse /dev/loop-podlab /dev/queue /dev/sub/null | tr -s ' ' | cut -d' ' -f1,3-6,10; \
                head -c 1 /dev/sub/null && echo opened; head -c 1 /dev/fuse || echo refused";
    let bundle = Bundle::new("config-devices", |config| {
        args_of(&["sh", "-c", look])(config);
        config["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1000, "gid": 1001},
            {"path": "/dev/loop-podlab", "type": "b", "major": 7, "minor": 200},
            {"path": "/dev/queue", "type": "p", "major": 0, "minor": 0, "fileMode": 0o600},
            {"path": "/dev/sub/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
        ]);
    });
    runs_as_with_runc(&bundle, "linux.devices", |out| {
        out.contains("10, 229 /dev/fuse") && out.contains("refused")
    });
}

/// The rest of linux.resources (cpuset, memory reservation, swap,
/// swappiness, the OOM killer, block I/O throttles, real-time CPU time)
/// lands in the same files with the same values as runc's, where this
/// machine has them; what it has no file for is refused before anything
/// is made.
#[test]
fn more_resources_as_with_runc() {
    if !needs_runc("more_resources_as_with_runc") {
        return;
    }
    use podlab::cgroups::{Cgroup, Version};
    let version = Version::of_this_machine().unwrap();
    if version == Version::V2 {
        // v2's mapping is checked by the unit tests; runc 1.1.5 writes
        // what v1 has here.
        return;
    }
    let disk = std::fs::read_to_string("/sys/dev/block/254:0/uevent").map(|_| "254:0").unwrap_or("1:0");
    let (major, minor) = disk.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let files = [
        ("cpuset", "cpuset.cpus"),
        ("cpuset", "cpuset.mems"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("memory", "memory.swappiness"),
        ("memory", "memory.oom_control"),
        ("blkio", "blkio.throttle.read_bps_device"),
        ("blkio", "blkio.throttle.write_iops_device"),
        ("cpu", "cpu.rt_period_us"),
        ("cpu", "cpu.rt_runtime_us"),
    ];
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        let id = unique_id();
        let bundle = Bundle::new("more-resources", |config| {
            args_of(&["true"])(config);
            config["linux"]["cgroupsPath"] = format!("/{id}").into();
            config["linux"]["resources"]["cpu"] = serde_json::json!({
                "cpus": "0", "mems": "0", "realtimePeriod": 500000, "realtimeRuntime": 0
            });
            config["linux"]["resources"]["memory"] = serde_json::json!({
                "limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10,
                "disableOOMKiller": true
            });
            config["linux"]["resources"]["blockIO"] = serde_json::json!({
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]
            });
        });
        let _groups = GroupsNamed(id.clone());
        let (code, said) = runtime.told(&bundle, &["create", &id]);
        assert_eq!(code, Some(0), "{runtime:?}: {said}");
        let cgroup = Cgroup::existing(version, &id, &[]);
        let read = |(controller, file): (&str, &str)| {
            let text = std::fs::read_to_string(cgroup.file(controller, file)).unwrap_or_default();
            // oom_control holds a state beside the setting.
            let text = text
                .lines()
                .find(|l| !l.starts_with("under_oom") && !l.starts_with("oom_kill "))
                .unwrap_or("");
            format!("{file}: {text}")
        };
        seen.push(files.map(read));
        cgroup.keep();
        assert_eq!(runtime.detached(&bundle, &["delete", "--force", &id]), Some(0));
    }
    assert!(seen[0].contains(&"memory.swappiness: 10".to_string()), "runc: {:?}", seen[0]);
    assert_eq!(seen[1], seen[0], "ours (left), runc's (right)");
    // A controller this machine lacks: refused by both, ours before
    // anything is made.
    if !podlab::cgroups::has_controller(version, "hugetlb") {
        let bundle = Bundle::new("no-hugetlb", |config| {
            args_of(&["true"])(config);
            config["linux"]["resources"]["hugepageLimits"] =
                serde_json::json!([{"pageSize": "2MB", "limit": 4194304}]);
        });
        let runc = Runtime::Runc.run(&bundle, &["run", &unique_id()]);
        assert!(runc.stderr.contains("cannot set hugetlb limit"), "runc: {}", runc.stderr);
        let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
        assert_eq!(ours.code, Some(1), "{}", ours.stderr);
        assert!(ours.stderr.contains("it needs the hugetlb controller"), "{}", ours.stderr);
    }
}

/// linux.rootfsPropagation, and runc's default when there is none (the
/// host's mounts' copies become slaves, so that a mount the host makes
/// under a volume still reaches the container). Each runtime runs in a
/// mount namespace of the test's whose mounts are shared, as systemd makes
/// a host's: there the propagation the container's "/" ends up with shows.
#[test]
fn rootfs_propagation_as_with_runc() {
    if !needs_runc("rootfs_propagation_as_with_runc") {
        return;
    }
    let look = "awk '$5 == \"/\" { print $7 }' /proc/self/mountinfo";
    // What the optional fields say, without their group numbers.
    let kind = |text: &str| -> String {
        let field = text.trim();
        field.split(':').next().unwrap_or(field).to_string()
    };
    for (propagation, expected) in
        [(None, "master"), (Some("rprivate"), "-"), (Some("rslave"), "master"), (Some("rshared"), "-")]
    {
        let bundle = Bundle::new("propagation", |config| {
            args_of(&["sh", "-c", look])(config);
            if let Some(propagation) = propagation {
                config["linux"]["rootfsPropagation"] = propagation.into();
            }
        });
        let mut seen = Vec::new();
        for runtime in [Runtime::Runc, Runtime::Ours] {
            let inner = runtime.command(&bundle);
            let mut shared = Command::new("unshare");
            shared
                .args(["--mount", "--propagation", "shared"])
                .arg(inner.get_program())
                .args(inner.get_args());
            let outcome = run(shared.args(["run", &unique_id()]).current_dir(bundle.path()));
            assert_eq!(outcome.code, Some(0), "{runtime:?} {propagation:?}: {}", outcome.stderr);
            seen.push(kind(&outcome.stdout));
        }
        assert_eq!(seen[0], expected, "runc, {propagation:?}");
        assert_eq!(seen[1], seen[0], "ours (left), runc's (right), {propagation:?}");
    }
}

/// Mount and UTS namespaces joined by path, as runc joins them: the
/// container is set up in the mount namespace it joins (whose root then is
/// the rootfs for every process in it), and its hostname is set in the UTS
/// namespace it joins.
#[test]
fn joining_mount_and_uts_namespaces_as_with_runc() {
    if !needs_runc("joining_mount_and_uts_namespaces_as_with_runc") {
        return;
    }
    let mut seen = Vec::new();
    for runtime in [Runtime::Runc, Runtime::Ours] {
        // A process holding a mount and a UTS namespace of the test's own.
        let mut holder = Command::new("unshare");
        holder.args(["--mount", "--uts", "--propagation", "private", "sleep", "30"]);
        let holder = common::TerminateOnDrop(holder.spawn().unwrap());
        let pid = holder.0.id();
        let namespace = |kind: &str| format!("/proc/{pid}/ns/{kind}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_link(namespace("mnt")).ok() == std::fs::read_link("/proc/self/ns/mnt").ok() {
            assert!(std::time::Instant::now() < deadline, "unshare made no mount namespace");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let bundle = Bundle::new("join-mnt-uts", |config| {
            args_of(&["sh", "-c", "readlink /proc/self/ns/mnt; hostname; ls /etc"])(config);
            config["hostname"] = "joined".into();
            for entry in config["linux"]["namespaces"].as_array_mut().unwrap() {
                match entry["type"].as_str() {
                    Some("mount") => entry["path"] = namespace("mnt").into(),
                    Some("uts") => entry["path"] = namespace("uts").into(),
                    _ => {}
                }
            }
        });
        let outcome = runtime.run(&bundle, &["run", &unique_id()]);
        let expected =
            format!("{}\njoined\ngroup\npasswd\n", std::fs::read_link(namespace("mnt")).unwrap().display());
        assert_eq!(
            (outcome.code, outcome.stdout.as_str()),
            (Some(0), expected.as_str()),
            "{runtime:?}: {}",
            outcome.stderr
        );
        let holders = |args: &[&str]| {
            let out = Command::new("nsenter").args(["-t", &pid.to_string()]).args(args).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        seen.push((holders(&["-u", "hostname"]), holders(&["-m", "ls", "/etc"])));
    }
    assert_eq!(seen[0].0, "joined\n", "runc set no hostname in the namespace it joined");
    assert_eq!(seen[1], seen[0], "what the holder sees after ours (left) and runc (right)");
}

/// linux.personality and process.ioPriority, which runc 1.1.5 (whose
/// specification is 1.0.2) does not know: checked by what the program
/// sees. And the newer settings podlab does not carry out are refused, not
/// passed over.
#[test]
fn personality_and_io_priority_are_applied() {
    if !needs_root_and_busybox("personality_and_io_priority_are_applied") {
        return;
    }
    let bundle = Bundle::new("personality", |config| {
        args_of(&["sh", "-c", "uname -m; ionice"])(config);
        config["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"});
        config["process"]["ioPriority"] = serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
    assert_eq!((ours.code, ours.stdout.as_str()), (Some(0), "i686\nidle\n"), "{}", ours.stderr);
    for (setting, value) in [
        ("/linux/intelRdt", serde_json::json!({"closID": "podlab"})),
        ("/process/scheduler", serde_json::json!({"policy": "SCHED_OTHER"})),
    ] {
        let bundle = Bundle::new("not-applied", |config| {
            let (parent, name) = setting.rsplit_once('/').unwrap();
            config.pointer_mut(parent).unwrap()[name] = value;
        });
        let ours = Runtime::Ours.run(&bundle, &["run", &unique_id()]);
        assert_eq!(ours.code, Some(1), "{setting}: {}", ours.stderr);
        assert!(ours.stderr.contains("podlab does not apply it"), "{setting}: {}", ours.stderr);
    }
}
