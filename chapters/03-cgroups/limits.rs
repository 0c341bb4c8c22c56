//! The two pieces of level 3 that the lab asks you to write: writing a
//! container's limits, and reading back what the kernel counted, each for
//! cgroup v1 and v2.

use crate::error::Result;
use crate::kernel;

use super::{Cgroup, Limits, Usage, Version};

// ANCHOR: write_limits
/// Writes each limit that is set into the cgroup's files.
pub fn write_limits(cgroup: &Cgroup, limits: &Limits) -> Result<()> {
    match cgroup.version {
        Version::V1 => {
            if let Some(bytes) = limits.memory {
                kernel::write_file(&cgroup.file("memory", "memory.limit_in_bytes"), &bytes.to_string())?;
                // Memory plus swap: the same, so the group cannot swap instead
                // of meeting its limit. Only where swap is accounted.
                let with_swap = cgroup.file("memory", "memory.memsw.limit_in_bytes");
                if with_swap.exists() {
                    kernel::write_file(&with_swap, &bytes.to_string())?;
                }
            }
            if let Some(count) = limits.pids {
                kernel::write_file(&cgroup.file("pids", "pids.max"), &count.to_string())?;
            }
            if let Some(cpu) = limits.cpu {
                kernel::write_file(&cgroup.file("cpu", "cpu.cfs_period_us"), &cpu.period_us.to_string())?;
                kernel::write_file(&cgroup.file("cpu", "cpu.cfs_quota_us"), &cpu.quota_us.to_string())?;
            }
        }
        Version::V2 => {
            if let Some(bytes) = limits.memory {
                kernel::write_file(&cgroup.file("memory", "memory.max"), &bytes.to_string())?;
                let swap = cgroup.file("memory", "memory.swap.max");
                if swap.exists() {
                    kernel::write_file(&swap, "0")?;
                }
            }
            if let Some(count) = limits.pids {
                kernel::write_file(&cgroup.file("pids", "pids.max"), &count.to_string())?;
            }
            if let Some(cpu) = limits.cpu {
                // One file: "quota period", in microseconds.
                let max = format!("{} {}", cpu.quota_us, cpu.period_us);
                kernel::write_file(&cgroup.file("cpu", "cpu.max"), &max)?;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: write_limits

// ANCHOR: read_usage
/// Reads what the kernel counted for the group. A counter this kernel does
/// not keep is None.
pub fn read_usage(cgroup: &Cgroup) -> Usage {
    match cgroup.version {
        Version::V1 => Usage {
            memory_peak: cgroup.number("memory", "memory.max_usage_in_bytes"),
            oom_kills: cgroup.keyed("memory", "memory.oom_control", "oom_kill"),
            forks_refused: cgroup.keyed("pids", "pids.events", "max"),
            cpu_nanoseconds: cgroup.number("cpuacct", "cpuacct.usage"),
            cpu_throttled: cgroup.keyed("cpu", "cpu.stat", "nr_throttled"),
        },
        Version::V2 => Usage {
            memory_peak: cgroup.number("memory", "memory.peak"),
            oom_kills: cgroup.keyed("memory", "memory.events", "oom_kill"),
            forks_refused: cgroup.keyed("pids", "pids.events", "max"),
            cpu_nanoseconds: cgroup.keyed("cpu", "cpu.stat", "usage_usec").map(|us| us * 1000),
            cpu_throttled: cgroup.keyed("cpu", "cpu.stat", "nr_throttled"),
        },
    }
}
// ANCHOR_END: read_usage
