//! Level 3's mistakes: what each looks like from outside, and the hint for
//! it. `cargo lab 3` shows the hint of the first one a scenario shows;
//! labs/03-cgroups/fixtures/ holds a wrong solution for each of several.

use crate::Mistake;
use crate::Symptom::{Lacks, Says};

pub const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "pids-not-limited",
        scenarios: &["pids"],
        shows_as: Lacks("sh: can't fork: Resource temporarily unavailable"),
        hint: "every fork succeeded: the group's pids controller was never told its limit (pids.max, the \
               same file under v1 and v2)",
    },
    Mistake {
        name: "refusals-miscounted",
        scenarios: &["pids"],
        shows_as: Lacks("pids: limit 4; forks refused: 1"),
        hint:
            "one fork was refused, as the shell says, but the count says otherwise: how many processes there \
               are now (pids.current) is not how often the limit said no; the kernel counts that as \
               \"max\" in pids.events",
    },
    Mistake {
        name: "cpu-not-limited",
        scenarios: &["cpu"],
        shows_as: Says("throttled: no"),
        hint: "the busy loop was never throttled, so its limit lets it have a whole CPU or more: a quota \
               is the CPU time allowed in each period, both in microseconds, and 0.2 CPU is 20000 of \
               every 100000 (v1: cpu.cfs_quota_us and cpu.cfs_period_us; v2: cpu.max, \"QUOTA PERIOD\")",
    },
    Mistake {
        name: "oom-kills-miscounted",
        scenarios: &["memory"],
        shows_as: Lacks("memory: limit 16 MiB; usage peaked at the limit; OOM kills: 1"),
        hint: "one process was killed, but the count says otherwise: hitting the limit (memory.failcnt, \
               or max in v2's memory.events) happens many times before the OOM killer acts once; the \
               kernel counts its kills as oom_kill, in memory.oom_control (v1) or memory.events (v2)",
    },
];
