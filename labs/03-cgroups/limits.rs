//! Level 3 lab: a container's limits, and what the kernel counted, for
//! cgroup v1 and v2.
//!
//! Write the two functions below; `cargo lab 3` checks them on the cgroup
//! version this machine has (`stat -fc %T /sys/fs/cgroup`: cgroup2fs is v2,
//! tmpfs is v1), and `cargo lab hint 3` gives a hint when you are stuck.
//! Write into the group's files only with `kernel::write_file`: each write
//! narrates itself, and the check compares what your program does, and the
//! writes it makes, with the reference.
//! The sheet, labs/03-cgroups/README.md, says what each function must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use crate::error::Result;
use crate::kernel;

use super::{Cgroup, Limits, Usage, Version};

/// Writes each limit that is set into the cgroup's files.
pub fn write_limits(cgroup: &Cgroup, limits: &Limits) -> Result<()> {
    todo!(
        "hold the group to each limit that is set, under cgroup v1 and v2, with no swap beyond \
         the memory limit; `cargo lab hint 3` when stuck"
    )
}

/// Reads what the kernel counted for the group.
pub fn read_usage(cgroup: &Cgroup) -> Usage {
    todo!(
        "return what the kernel counted for the group, under cgroup v1 and v2, with None for \
         what this kernel does not count; `cargo lab hint 3` when stuck"
    )
}
