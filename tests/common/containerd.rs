//! A containerd of a test's own (Debian's, with its runc shim): root, state
//! and socket in the test's scratch directory, stopped (and what it left
//! unmounted and removed) on every path. With its CRI plugin on, it is what
//! kubelet talks to, and [`Cri`] talks to it as kubelet does.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use sha2::{Digest, Sha256};

use crate::common::{run, Outcome};

/// The programs a containerd test needs, or why it cannot run.
pub fn missing_tools() -> Option<String> {
    ["containerd", "ctr", "containerd-shim-runc-v2", "runc"]
        .into_iter()
        .find(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|tool| format!("{tool} is not installed (apt-get install containerd runc)"))
}

/// What containerd's CRI plugin is given: where the CNI plugins and their
/// configuration are, and the image each pod's sandbox runs.
pub struct CriSettings<'a> {
    pub cni_bin: &'a Path,
    pub cni_conf: &'a Path,
    pub sandbox_image: &'a str,
}

pub struct Containerd {
    dir: PathBuf,
    process: Child,
    pub namespace: String,
    /// Whether its CRI plugin is on (its containers are then in CRI's
    /// namespace, k8s.io).
    cri: bool,
    /// What appeared in the shim's shared directories since is ours.
    started: std::time::SystemTime,
    /// The cgroup its CRI pods are put under (removed with what is left).
    pub pods_cgroup: String,
    /// Directories at fixed paths that were not there before it started
    /// (removed if it left them empty).
    absent: Vec<&'static Path>,
}

/// Where containerd and what it runs keep things at fixed paths: the CRI
/// plugin's network namespaces and libcni's cache, runc's state for CRI's
/// namespace.
const FIXED_DIRS: [&str; 4] =
    ["/var/lib/cni/results", "/var/lib/cni", "/run/containerd/runc/k8s.io", "/run/netns"];

impl Containerd {
    /// Starts one whose files are in `dir`. Without `cri`, its CRI plugin
    /// is off (`ctr` is enough). In `netns` if given (a network namespace
    /// playing the node): containerd runs the CNI plugins where it is.
    pub fn start(dir: &Path, cri: Option<&CriSettings>, netns: Option<&Path>) -> Containerd {
        let mut config = format!(
            "version = 2\n\
             root = \"{dir}/root\"\n\
             state = \"{dir}/state\"\n\
             [grpc]\n  address = \"{dir}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{dir}/containerd.sock.ttrpc\"\n",
            dir = dir.display()
        );
        match cri {
            None => config.insert_str(0, "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"),
            Some(cri) => config.push_str(&format!(
                "[plugins.\"io.containerd.grpc.v1.cri\"]\n\
                 \x20 sandbox_image = \"{image}\"\n\
                 \x20 stream_server_address = \"127.0.0.1\"\n\
                 \x20 stream_server_port = \"0\"\n\
                 \x20 disable_apparmor = true\n\
                 \x20 restrict_oom_score_adj = true\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
                 \x20 bin_dir = \"{bin}\"\n\
                 \x20 conf_dir = \"{conf}\"\n\
                 \x20 max_conf_num = 1\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n\
                 \x20 runtime_type = \"io.containerd.runc.v2\"\n",
                image = cri.sandbox_image,
                bin = cri.cni_bin.display(),
                conf = cri.cni_conf.display(),
            )),
        }
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let spawn = || {
            Command::new("containerd")
                .arg("--config")
                .arg(dir.join("config.toml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log.try_clone().unwrap())
                .spawn()
                .expect("containerd starts")
        };
        let absent = FIXED_DIRS.iter().map(Path::new).filter(|dir| !dir.exists()).collect();
        let process = match netns {
            Some(netns) => podlab::kernel::in_network_namespace(netns, || Ok(spawn())).unwrap(),
            None => spawn(),
        };
        let containerd = Containerd {
            dir: dir.to_path_buf(),
            process,
            namespace: match cri {
                Some(_) => "k8s.io".to_string(),
                None => format!("podlab-test-{}", std::process::id()),
            },
            cri: cri.is_some(),
            started: std::time::SystemTime::now(),
            pods_cgroup: format!("podlab-cri-{}", std::process::id()),
            absent,
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

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn ctr(&self, args: &[&str]) -> Outcome {
        let mut command = Command::new("ctr");
        command.arg("--address").arg(self.socket()).args(["--namespace", &self.namespace]);
        run(command.args(args))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Pods first, through CRI, so that containerd tears their networks
        // down (CNI DEL) and removes their network namespaces.
        if self.cri {
            if let Ok(mut cri) = Cri::connect(&self.socket()) {
                for pod in cri.pods().unwrap_or_default() {
                    let _ = cri.stop(&pod);
                    let _ = cri.remove(&pod);
                }
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.process.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.process.wait();
        // A failed test can leave a task running, and its shim, which
        // outlives containerd: both go first.
        for shim in processes_whose_command_has(&format!("-address {} ", self.socket().display())) {
            let _ = nix::sys::signal::kill(shim, nix::sys::signal::Signal::SIGKILL);
        }
        for mount in podlab::kernel::mounts_under(&self.dir).unwrap_or_default() {
            let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
        }
        // The parent group containerd names after the namespace (or the
        // one our pods were put in), which runtimes leave in place (runc
        // too), and what a failed test left in it.
        let ours = if self.cri { &self.pods_cgroup } else { &self.namespace };
        for tree in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().filter_map(|e| e.ok()) {
            remove_group_tree(&tree.path().join(ours));
        }
        remove_group_tree(&Path::new("/sys/fs/cgroup").join(ours));
        if !self.cri {
            let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc").join(&self.namespace));
        }
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
        for dir in &self.absent {
            let _ = std::fs::remove_dir(dir);
        }
        for dir in ["/run/containerd/fifo", "/run/containerd/s", "/run/containerd/runc", "/run/containerd"] {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The processes whose command line holds `words` (/proc/PID/cmdline, its
/// arguments joined by spaces, and a space after the last).
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
/// uncompressed layer, a config (whose process is `command`), a manifest,
/// an index.
pub fn oci_image(rootfs: &Path, name: &str, command: &[&str], archive: &Path) {
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
        "config": {"Env": ["PATH=/bin:/sbin"], "Cmd": command},
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

/// A CRI client, as kubelet is one: gRPC on containerd's Unix socket.
pub struct Cri {
    runtime: tokio::runtime::Runtime,
    client: RuntimeServiceClient<tonic::transport::Channel>,
}

/// A call's result: what it answered, or its status (code and message).
type CriResult<T> = Result<T, String>;

fn said(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

impl Cri {
    pub fn connect(socket: &Path) -> Result<Cri, String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let socket = socket.to_path_buf();
        let channel = runtime
            .block_on(tonic::transport::Endpoint::from_static("http://[::]:0").connect_with_connector(
                tower::service_fn(move |_| {
                    let socket = socket.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(socket).await?,
                        ))
                    }
                }),
            ))
            .map_err(|e| e.to_string())?;
        Ok(Cri { runtime, client: RuntimeServiceClient::new(channel) })
    }

    /// RunPodSandbox: a pod's sandbox made and its network set up (CNI ADD).
    pub fn run_pod(&mut self, config: k8s_cri::v1::PodSandboxConfig) -> CriResult<String> {
        let request =
            k8s_cri::v1::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
        Ok(self
            .runtime
            .block_on(self.client.run_pod_sandbox(request))
            .map_err(said)?
            .into_inner()
            .pod_sandbox_id)
    }

    /// PodSandboxStatus, verbose: the status and containerd's own
    /// information (its "info" JSON: the sandbox's OCI spec, CNI result).
    pub fn pod_status(
        &mut self,
        id: &str,
    ) -> CriResult<(k8s_cri::v1::PodSandboxStatus, std::collections::HashMap<String, String>)> {
        let request = k8s_cri::v1::PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose: true };
        let response =
            self.runtime.block_on(self.client.pod_sandbox_status(request)).map_err(said)?.into_inner();
        Ok((response.status.unwrap_or_default(), response.info))
    }

    pub fn pods(&mut self) -> CriResult<Vec<String>> {
        let request = k8s_cri::v1::ListPodSandboxRequest { filter: None };
        let response =
            self.runtime.block_on(self.client.list_pod_sandbox(request)).map_err(said)?.into_inner();
        Ok(response.items.into_iter().map(|pod| pod.id).collect())
    }

    /// StopPodSandbox: its processes stopped and its network torn down (CNI DEL).
    pub fn stop(&mut self, id: &str) -> CriResult<()> {
        let request = k8s_cri::v1::StopPodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.runtime.block_on(self.client.stop_pod_sandbox(request)).map_err(said)?;
        Ok(())
    }

    pub fn remove(&mut self, id: &str) -> CriResult<()> {
        let request = k8s_cri::v1::RemovePodSandboxRequest { pod_sandbox_id: id.to_string() };
        self.runtime.block_on(self.client.remove_pod_sandbox(request)).map_err(said)?;
        Ok(())
    }
}
