//! Level 3 lab: a container's limits, and what the kernel counted, for
//! cgroup v1 and v2.
//!
//! Write the two functions below; `cargo lab 3` checks them on the cgroup
//! version this machine has (`stat -fc %T /sys/fs/cgroup`: cgroup2fs is v2,
//! tmpfs is v1). Write into the group's files only with `kernel::write_file`:
//! each write narrates itself, and the narration is part of what is compared.
//! The sheet, labs/03-cgroups/README.md, says more.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use crate::error::Result;
use crate::kernel;

use super::{Cgroup, Limits, Usage, Version};

/// Writes each limit that is set into the cgroup's files.
pub fn write_limits(cgroup: &Cgroup, limits: &Limits) -> Result<()> {
    todo!(
        "for each limit that is Some, write it with kernel::write_file(&cgroup.file(controller, file), value): \
         v1: memory.limit_in_bytes (and memory.memsw.limit_in_bytes if it exists), pids.max, \
         cpu.cfs_period_us then cpu.cfs_quota_us; v2: memory.max (and memory.swap.max = 0 if it exists), \
         pids.max, cpu.max = \"QUOTA PERIOD\""
    )
}

/// Reads what the kernel counted for the group.
pub fn read_usage(cgroup: &Cgroup) -> Usage {
    todo!(
        "fill a Usage with cgroup.number(controller, file) and cgroup.keyed(controller, file, key): \
         v1: memory.max_usage_in_bytes, oom_kill in memory.oom_control, max in pids.events, \
         cpuacct.usage, nr_throttled in cpu.stat; v2: memory.peak, oom_kill in memory.events, max in \
         pids.events, usage_usec in cpu.stat (times 1000), nr_throttled in cpu.stat"
    )
}
