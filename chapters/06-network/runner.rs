//! The container runtime's side of CNI, as libcni (in containerd and
//! CRI-O) plays it: the network's configuration is the file of a `net.d`
//! directory that sorts first (kubelet and containerd follow that rule); a
//! configuration list names a chain of plugins, each found by its `type` in
//! the CNI_PATH directories and run in turn, each given the previous one's
//! result (`prevResult`); DEL runs the chain backwards. The result of ADD is
//! cached on disk, so that DEL and CHECK can pass it on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::kernel;
use crate::narrate;

/// How long one plugin may run.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// A network's configuration list, read from a `net.d` directory.
pub struct ConfigList {
    pub file: PathBuf,
    pub name: String,
    pub version: String,
    pub plugins: Vec<Value>,
}

// ANCHOR: pick_config
/// The configuration the runtime uses: of the `*.conflist`, `*.conf` and
/// `*.json` files in `net_d`, the one whose name sorts first. A single
/// plugin's `.conf` is read as a list of one.
pub fn pick_config(net_d: &Path) -> Result<ConfigList> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(net_d)
        .map_err(|e| Error::new(format!("{} cannot be read: {e}", net_d.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conflist" || e == "conf" || e == "json"))
        .collect();
    files.sort();
    let file = files.into_iter().next().ok_or_else(|| {
        Error::new(format!("{} holds no network configuration (*.conflist, *.conf)", net_d.display()))
    })?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::new(format!("{} cannot be read: {e}", file.display())))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("{} is not JSON: {e}", file.display())))?;
    let plugins = match config["plugins"].as_array() {
        Some(plugins) => plugins.clone(),
        None => vec![config.clone()],
    };
    let name = config["name"].as_str().unwrap_or_default().to_string();
    let version = config["cniVersion"].as_str().unwrap_or_default().to_string();
    if name.is_empty() || version.is_empty() || plugins.is_empty() {
        return Err(Error::new(format!("{} needs a name, a cniVersion and plugins", file.display())));
    }
    Ok(ConfigList { file, name, version, plugins })
}
// ANCHOR_END: pick_config

/// A runtime's view of CNI: where plugins are, where results are cached.
pub struct Runtime {
    pub plugin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
}

/// The pod a network is for.
pub struct Pod<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
}

impl Runtime {
    // ANCHOR: add
    /// ADD through the chain: each plugin with the list's name and version
    /// and the previous one's result; the last result, cached and returned.
    pub fn add(&self, list: &ConfigList, pod: &Pod) -> Result<Value> {
        let mut previous: Option<Value> = None;
        for plugin in &list.plugins {
            let result = self.exec(list, plugin, "ADD", pod, previous.as_ref())?;
            previous = Some(serde_json::from_str(&result).map_err(|e| {
                Error::new(format!("the plugin {} answered ADD with no result: {e}", plugin["type"]))
            })?);
        }
        let result = previous.unwrap_or_else(|| json!({}));
        let cached = json!({
            "kind": "cniCacheV1", "containerId": pod.container_id, "ifName": pod.ifname,
            "networkName": list.name, "result": result,
        });
        kernel::mkdir_all(&self.cache_dir.join("results"))?;
        kernel::write_file_atomically(&self.cached(list, pod), &cached.to_string())?;
        Ok(result)
    }
    // ANCHOR_END: add

    /// DEL through the chain, last plugin first, each given the cached
    /// result of ADD; then the cache entry goes.
    pub fn del(&self, list: &ConfigList, pod: &Pod) -> Result<()> {
        let cached = self.cached_result(list, pod);
        for plugin in list.plugins.iter().rev() {
            self.exec(list, plugin, "DEL", pod, cached.as_ref())?;
        }
        let file = self.cached(list, pod);
        if file.exists() {
            kernel::unlink(&file)?;
        }
        Ok(())
    }

    /// CHECK through the chain, with the cached result of ADD.
    pub fn check(&self, list: &ConfigList, pod: &Pod) -> Result<()> {
        let cached = self.cached_result(list, pod).ok_or_else(|| {
            Error::new(format!(
                "there is no cached result for {} {}: ADD it first",
                pod.container_id, pod.ifname
            ))
        })?;
        for plugin in &list.plugins {
            self.exec(list, plugin, "CHECK", pod, Some(&cached))?;
        }
        Ok(())
    }

    // ANCHOR: gc
    /// GC (CNI 1.1) through the chain: each plugin is told which
    /// attachments are still valid (`cni.dev/valid-attachments`), and frees
    /// whatever else it holds; the cached results of the others go too.
    pub fn gc(&self, list: &ConfigList, valid: &[Pod]) -> Result<()> {
        let attachments: Vec<Value> =
            valid.iter().map(|a| json!({"containerID": a.container_id, "ifname": a.ifname})).collect();
        let nobody = Pod { container_id: "", netns: Path::new(""), ifname: "" };
        for plugin in &list.plugins {
            let mut plugin = plugin.clone();
            plugin["cni.dev/valid-attachments"] = json!(attachments);
            self.exec(list, &plugin, "GC", &nobody, None)?;
        }
        let kept: Vec<String> =
            valid.iter().map(|a| format!("{}-{}-{}", list.name, a.container_id, a.ifname)).collect();
        let prefix = format!("{}-", list.name);
        for entry in std::fs::read_dir(self.cache_dir.join("results")).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && !kept.contains(&name) {
                kernel::unlink(&entry.path())?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: gc

    /// Where the result of ADD for a pod is kept, as libcni names it.
    fn cached(&self, list: &ConfigList, pod: &Pod) -> PathBuf {
        self.cache_dir.join("results").join(format!("{}-{}-{}", list.name, pod.container_id, pod.ifname))
    }

    fn cached_result(&self, list: &ConfigList, pod: &Pod) -> Option<Value> {
        let text = std::fs::read_to_string(self.cached(list, pod)).ok()?;
        serde_json::from_str::<Value>(&text).ok().map(|cached| cached["result"].clone())
    }

    // ANCHOR: exec
    /// Runs one plugin as the specification says: found by its type in the
    /// plugin directories; CNI_* in its environment; its configuration (the
    /// list's name and version added, and `prevResult`) on stdin; killed
    /// past the time limit. Its stdout, or its error JSON as an error.
    fn exec(
        &self,
        list: &ConfigList,
        plugin: &Value,
        command: &str,
        pod: &Pod,
        previous: Option<&Value>,
    ) -> Result<String> {
        let kind = plugin["type"].as_str().unwrap_or_default();
        let program = self
            .plugin_dirs
            .iter()
            .map(|dir| dir.join(kind))
            .find(|path| !kind.is_empty() && !kind.contains('/') && path.is_file())
            .ok_or_else(|| Error::new(format!("no plugin of type {kind:?} in {:?}", self.plugin_dirs)))?;
        let mut config = plugin.clone();
        config["name"] = json!(list.name);
        config["cniVersion"] = json!(list.version);
        if let Some(previous) = previous {
            config["prevResult"] = previous.clone();
        }
        let path =
            std::env::join_paths(&self.plugin_dirs).map_err(|e| Error::new(format!("CNI_PATH: {e}")))?;
        narrate!(
            "{command} {kind}: CNI_COMMAND={command} CNI_CONTAINERID={} CNI_NETNS={:?} CNI_IFNAME={} {}",
            pod.container_id,
            pod.netns,
            pod.ifname,
            program.display()
        );
        let mut child = Command::new(&program)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", pod.container_id)
            .env("CNI_NETNS", pod.netns)
            .env("CNI_IFNAME", pod.ifname)
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::new(format!("{} could not be started: {e}", program.display())))?;
        let mut stdin = child.stdin.take().ok_or_else(|| Error::new("no stdin for the plugin"))?;
        std::io::Write::write_all(&mut stdin, config.to_string().as_bytes())
            .map_err(|e| Error::new(format!("writing the plugin's config: {e}")))?;
        drop(stdin);
        let mut stdout = child.stdout.take().ok_or_else(|| Error::new("no stdout for the plugin"))?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        // Waited for in poll(2) on a pidfd, up to the time limit.
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let process =
            kernel::start_time(pid).and_then(|started| kernel::Process::open(pid, started).ok().flatten());
        if process.is_some_and(|process| !process.wait_for_end(TIME_LIMIT)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!(
                "the plugin {kind} did not finish {command} within {} s: killed",
                TIME_LIMIT.as_secs()
            )));
        }
        let status = child.wait().map_err(|e| Error::new(format!("waiting for {kind}: {e}")))?;
        let output = reader.join().unwrap_or_default();
        if !status.success() {
            let error: Value = serde_json::from_str(&output).unwrap_or(json!({"msg": output.trim()}));
            return Err(Error::new(format!(
                "the plugin {kind} refused {command} (code {}): {} {}",
                error["code"],
                error["msg"].as_str().unwrap_or(""),
                error["details"].as_str().unwrap_or("")
            )));
        }
        Ok(output)
    }
    // ANCHOR_END: exec
}
