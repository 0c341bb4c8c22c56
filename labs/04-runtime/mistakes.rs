//! Level 4's mistakes: what each looks like from outside, and the hint for
//! it. `cargo lab 4` shows the hint of the first one a scenario shows;
//! labs/04-runtime/fixtures/ holds a wrong solution for each of several.

use crate::Mistake;
use crate::Symptom::{Lacks, NoneAfter, Says};

/// The scenarios that make a container's mounts.
const MOUNTING: &[&str] = &["run", "lifecycle", "pause", "hooks", "mounts", "resources", "seccomp"];

const NOTHING_WRITTEN: &str =
    "start found the FIFO closed with nothing in it, which is how a container that \
     died before its program tells it: the container's side has to write to the FIFO once its open \
     returns, and keep it open until execve closes it";

pub const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "flags-as-data",
        scenarios: MOUNTING,
        shows_as: Says(") failed: Invalid argument (EINVAL)"),
        hint: "a mount was refused: options such as nosuid, nodev, noexec and strictatime are flags of \
               mount(2) itself, for every file system, and proc or tmpfs refuse them as data; data is \
               only what no flag stands for (mode=, size=, ...)",
    },
    Mistake {
        name: "fifo-kept",
        scenarios: MOUNTING,
        shows_as: NoneAfter("open(\"/tmp/podlab-[id]/state/", "unlink("),
        hint: "the container runs, but `state` still calls it created: a runtime tells a created container \
               by its exec.fifo, so start has to take the FIFO's name away (holding the FIFO itself by a \
               handle) before it lets the process go; a second start then finds nothing to open",
    },
    Mistake {
        name: "nothing-written",
        scenarios: &["lifecycle", "pause", "hooks", "run", "mounts", "resources", "seccomp"],
        shows_as: Says("ended before it could start"),
        hint: NOTHING_WRITTEN,
    },
    Mistake {
        name: "read-only-ignored",
        scenarios: &["mounts"],
        shows_as: Lacks("sh: can't create /data/note: Read-only file system"),
        hint: "the container wrote to a mount its config calls ro: \"ro\" is a flag of mount(2) \
               (MS_RDONLY), not data, and a bind mount takes it only when remounted",
    },
];
