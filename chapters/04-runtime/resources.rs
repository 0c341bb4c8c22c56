//! The rest of linux.resources: what level 3 does not write (it writes the
//! memory limit, the pids limit and the CPU quota; cpu.shares and the
//! device rules have their own code). Each setting becomes a line written
//! to a file of the container's group, as runc writes it, under v1 or v2.
//! A setting the machine has no controller or file for is refused in one
//! sentence, rather than the container run without it.

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{has_controller, Cgroup, Version};
use crate::error::{Error, Result};
use crate::kernel;

/// One write to a file of the container's group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The controller whose tree has the file, by its v1 name ("blkio"
    /// stands for v2's "io").
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// The config's field it comes from, to name in a refusal.
    pub setting: &'static str,
}

fn write(
    controller: &'static str,
    file: impl Into<String>,
    value: impl ToString,
    setting: &'static str,
) -> Write {
    Write { controller, file: file.into(), value: value.to_string(), setting }
}

/// What each setting in linux.resources that this module handles becomes
/// on a machine of `version`; the config's fields this applies, for the
/// warning about the rest.
pub const APPLIED: [&str; 20] = [
    "cpu.cpus",
    "cpu.mems",
    "cpu.realtimeRuntime",
    "cpu.realtimePeriod",
    "memory.reservation",
    "memory.swap",
    "memory.swappiness",
    "memory.disableOOMKiller",
    "blockIO.weight",
    "blockIO.weightDevice",
    "blockIO.throttleReadBpsDevice",
    "blockIO.throttleWriteBpsDevice",
    "blockIO.throttleReadIOPSDevice",
    "blockIO.throttleWriteIOPSDevice",
    "hugepageLimits",
    "network.classID",
    "network.priorities",
    "unified",
    // Read by level 3 and by cpu.shares' code, named here so that the
    // warning about the rest leaves them out.
    "memory.limit",
    "cpu.shares",
];

// ANCHOR: writes
/// The writes the settings ask for, in runc's order, or a sentence saying
/// which one this machine cannot apply.
pub fn writes(resources: Option<&LinuxResources>, version: Version) -> Result<Vec<Write>> {
    let out = mapping(resources, version)?;
    for needed in &out {
        if !has_controller(version, needed.controller) {
            let name =
                if version == Version::V1 || needed.controller != "blkio" { needed.controller } else { "io" };
            return Err(Error::new(format!(
                "linux.resources.{}: it needs the {name} controller, which this machine's cgroup {} does not \
                 have: leave it out",
                needed.setting,
                version.name()
            )));
        }
    }
    Ok(out)
}

// ANCHOR_END: writes

/// The writes for a machine of `version`, whatever controllers it has.
fn mapping(resources: Option<&LinuxResources>, version: Version) -> Result<Vec<Write>> {
    let Some(resources) = resources else { return Ok(Vec::new()) };
    let v1 = version == Version::V1;
    let refuse = |setting: &str, why: &str| Err(Error::new(format!("linux.resources.{setting}: {why}")));
    let only_v1 = "cgroup v2 has no such setting, and this machine's cgroups are v2: leave it out";
    let mut out = Vec::new();

    if let Some(cpu) = resources.cpu() {
        if let Some(cpus) = cpu.cpus().as_ref().filter(|c| !c.is_empty()) {
            out.push(write("cpuset", "cpuset.cpus", cpus, "cpu.cpus"));
        }
        if let Some(mems) = cpu.mems().as_ref().filter(|m| !m.is_empty()) {
            out.push(write("cpuset", "cpuset.mems", mems, "cpu.mems"));
        }
        if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
            if !v1 {
                return refuse("cpu.realtimeRuntime", only_v1);
            }
            // The period first: a runtime longer than the old period is refused.
            if let Some(period) = cpu.realtime_period() {
                out.push(write("cpu", "cpu.rt_period_us", period, "cpu.realtimePeriod"));
            }
            if let Some(runtime) = cpu.realtime_runtime() {
                out.push(write("cpu", "cpu.rt_runtime_us", runtime, "cpu.realtimeRuntime"));
            }
        }
    }

    if let Some(memory) = resources.memory() {
        if let Some(reservation) = memory.reservation().filter(|r| *r != 0) {
            let (file, value) = match (v1, reservation) {
                (true, r) => ("memory.soft_limit_in_bytes", r.to_string()),
                (false, -1) => ("memory.low", "max".to_string()),
                (false, r) => ("memory.low", r.to_string()),
            };
            out.push(write("memory", file, value, "memory.reservation"));
        }
        if let Some(swap) = memory.swap().filter(|s| *s != 0) {
            if v1 {
                out.push(write("memory", "memory.memsw.limit_in_bytes", swap, "memory.swap"));
            } else {
                // v1's swap is memory plus swap; v2's file takes swap alone.
                let value = match (swap, memory.limit().filter(|l| *l > 0)) {
                    (-1, _) => "max".to_string(),
                    (swap, Some(limit)) if swap >= limit => (swap - limit).to_string(),
                    _ => {
                        return refuse(
                            "memory.swap",
                            "under cgroup v2 it needs memory.limit too, at most as large: give both",
                        )
                    }
                };
                out.push(write("memory", "memory.swap.max", value, "memory.swap"));
            }
        }
        if let Some(swappiness) = memory.swappiness() {
            if !v1 {
                return refuse("memory.swappiness", only_v1);
            }
            if swappiness > 100 {
                return refuse("memory.swappiness", "it is a number from 0 to 100");
            }
            out.push(write("memory", "memory.swappiness", swappiness, "memory.swappiness"));
        }
        if memory.disable_oom_killer() == Some(true) {
            if !v1 {
                return refuse("memory.disableOOMKiller", only_v1);
            }
            out.push(write("memory", "memory.oom_control", 1, "memory.disableOOMKiller"));
        }
    }

    if let Some(io) = resources.block_io() {
        if let Some(weight) = io.weight() {
            if !(10..=1000).contains(&weight) {
                return refuse("blockIO.weight", "it is a number from 10 to 1000");
            }
            let file = if v1 { "blkio.weight" } else { "io.weight" };
            // v2's weights go from 1 to 10000: scaled as runc scales them.
            let value = if v1 { weight.to_string() } else { format!("default {}", v2_weight(weight)) };
            out.push(write("blkio", file, value, "blockIO.weight"));
        }
        for device in io.weight_device().iter().flatten() {
            let Some(weight) = device.weight() else { continue };
            let (file, value) = if v1 {
                ("blkio.weight_device", weight.to_string())
            } else {
                ("io.weight", v2_weight(weight).to_string())
            };
            let line = format!("{}:{} {value}", device.major(), device.minor());
            out.push(write("blkio", file, line, "blockIO.weightDevice"));
        }
        let throttles = [
            (
                io.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "rbps",
                "blockIO.throttleReadBpsDevice",
            ),
            (
                io.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "wbps",
                "blockIO.throttleWriteBpsDevice",
            ),
            (
                io.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "riops",
                "blockIO.throttleReadIOPSDevice",
            ),
            (
                io.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "wiops",
                "blockIO.throttleWriteIOPSDevice",
            ),
        ];
        for (devices, v1_file, v2_key, setting) in throttles {
            for device in devices.iter().flatten() {
                let (major, minor, rate) = (device.major(), device.minor(), device.rate());
                let (file, line) = if v1 {
                    (v1_file, format!("{major}:{minor} {rate}"))
                } else {
                    ("io.max", format!("{major}:{minor} {v2_key}={rate}"))
                };
                out.push(write("blkio", file, line, setting));
            }
        }
    }

    for limit in resources.hugepage_limits().iter().flatten() {
        let size = limit.page_size();
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return refuse("hugepageLimits", &format!("{size:?} is not a page size such as 2MB"));
        }
        let file = if v1 { format!("hugetlb.{size}.limit_in_bytes") } else { format!("hugetlb.{size}.max") };
        out.push(write("hugetlb", file, limit.limit(), "hugepageLimits"));
    }

    if let Some(network) = resources.network() {
        let asked =
            network.class_id().is_some() || network.priorities().as_ref().is_some_and(|p| !p.is_empty());
        if asked && !v1 {
            return refuse("network", "cgroup v2 has no net_cls or net_prio controller: leave it out");
        }
        if let Some(class) = network.class_id() {
            out.push(write("net_cls", "net_cls.classid", class, "network.classID"));
        }
        for priority in network.priorities().iter().flatten() {
            let line = format!("{} {}", priority.name(), priority.priority());
            out.push(write("net_prio", "net_prio.ifpriomap", line, "network.priorities"));
        }
    }

    if let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) {
        if v1 {
            return refuse(
                "unified",
                "it names cgroup v2 files, and this machine's cgroups are v1: leave it out",
            );
        }
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for key in keys {
            // A file of the group itself, never a path out of it.
            let Some(controller) = key.split_once('.').map(|(c, _)| c).filter(|_| !key.contains('/')) else {
                return refuse("unified", &format!("{key:?} is not the name of a cgroup v2 file"));
            };
            let controller = match controller {
                "io" => "blkio",
                "cpu" => "cpu",
                "cpuset" => "cpuset",
                "memory" => "memory",
                "pids" => "pids",
                "hugetlb" => "hugetlb",
                _ => {
                    return refuse(
                        "unified",
                        &format!("{key:?} is not a file of a controller podlab enables"),
                    )
                }
            };
            out.push(write(controller, key.as_str(), &unified[key], "unified"));
        }
    }

    Ok(out)
}

/// A blkio weight (10 to 1000) as v2's io.weight (1 to 10000), as runc
/// converts it.
fn v2_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// Writes them into the container's group. A file the group lacks (swap
/// not accounted, a page size this machine does not have, no real-time
/// scheduling of groups) is refused by name.
pub fn apply(cgroup: &Cgroup, writes: &[Write]) -> Result<()> {
    for one in writes {
        let file = cgroup.file(one.controller, &one.file);
        if !file.exists() {
            return Err(Error::new(format!(
                "linux.resources.{}: this kernel's {} controller has no file {}: leave the setting out",
                one.setting, one.controller, one.file
            )));
        }
        kernel::write_file(&file, &one.value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    /// Only the mapping: whether this machine has the controllers is
    /// another question, which `writes` asks after it.
    fn files(json: serde_json::Value, version: Version) -> Vec<(String, String)> {
        let mut found = Vec::new();
        match mapping(Some(&resources(json)), version) {
            Ok(list) => found.extend(list.into_iter().map(|w| (w.file, w.value))),
            Err(error) => found.push(("refused".into(), error.to_string())),
        }
        found
    }

    #[test]
    fn block_io_is_written_as_runc_writes_it() {
        let config = serde_json::json!({"blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]
        }});
        assert_eq!(v2_weight(500), 4950);
        assert_eq!(v2_weight(10), 1);
        assert_eq!(v2_weight(1000), 10000);
        let v2 = files(config.clone(), Version::V2);
        assert_eq!(
            v2,
            [("io.weight".into(), "default 4950".into()), ("io.max".into(), "8:0 rbps=1048576".into())]
        );
        let v1 = files(config, Version::V1);
        assert_eq!(
            v1,
            [
                ("blkio.weight".into(), "500".into()),
                ("blkio.throttle.read_bps_device".into(), "8:0 1048576".into())
            ]
        );
    }

    #[test]
    fn what_a_version_has_no_file_for_is_refused_in_a_sentence() {
        for (json, phrase) in [
            (serde_json::json!({"memory": {"swappiness": 10}}), "cgroup v2 has no such setting"),
            (serde_json::json!({"memory": {"disableOOMKiller": true}}), "cgroup v2 has no such setting"),
            (serde_json::json!({"cpu": {"realtimeRuntime": 1000}}), "cgroup v2 has no such setting"),
            (serde_json::json!({"network": {"classID": 1048577}}), "no net_cls or net_prio"),
            (serde_json::json!({"memory": {"swap": 100}}), "it needs memory.limit too"),
            (serde_json::json!({"unified": {"../../escape": "1"}}), "is not the name of a cgroup v2 file"),
        ] {
            let error = mapping(Some(&resources(json.clone())), Version::V2).unwrap_err().to_string();
            assert!(error.contains(phrase), "{json}: {error}");
        }
        let error =
            mapping(Some(&resources(serde_json::json!({"unified": {"memory.high": "1"}}))), Version::V1);
        assert!(error.unwrap_err().to_string().contains("this machine's cgroups are v1"));
    }
}
