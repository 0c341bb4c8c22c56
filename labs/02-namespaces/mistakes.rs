//! Level 2's mistakes: what each looks like from outside, and the hint for
//! it. `cargo lab 2` shows the hint of the first one a scenario shows;
//! labs/02-namespaces/fixtures/ holds a wrong solution for each of several.

use crate::Mistake;
use crate::Symptom::{Lacks, NoneAfter, NotBefore, Reversed, Says};

/// The scenarios that switch to the rootfs with pivot_root.
const PIVOTING: &[&str] = &["pid", "mount", "escape", "ipc", "user", "all"];

const OLD_ROOT_KEPT: &str = "the host's whole file tree is still in the container: pivot_root(2) does not \
     remove the old root, it moves it (here, onto the new root itself, or onto the directory you gave), \
     and it stays there, reachable, until it is detached";

const ROOT_BEFORE_BIND: &str = "the container has no /proc of its own (ps shows no process): was it \
     mounted underneath? A descriptor holds the directory it was opened on, of the mount that was there \
     then: a root opened before the rootfs is bound onto itself holds the directory under the bind, and \
     mounts made through it are hidden once the bind is on top. Open the root after the bind";

pub const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "mounts-shared",
        scenarios: PIVOTING,
        shows_as: NotBefore("mount(none, \"/\", none, MS_REC|MS_", "pivot_root("),
        hint: "the new mount namespace began as a copy of the host's, and its mounts may still be shared \
               with the host's (systemd makes them so): a mount made in here would appear out there, and \
               pivot_root refuses shared mounts. Change the propagation of every mount, from \"/\" down, \
               before anything else",
    },
    Mistake {
        name: "rootfs-not-a-mount",
        scenarios: &["pid", "mount", "escape", "ipc", "user", "all", "join"],
        shows_as: Says("pivot_root("),
        hint: "pivot_root(2) wants the new root to be a mount point, not just a directory: make the rootfs \
               one by mounting it onto itself (a bind mount) before the switch",
    },
    Mistake {
        name: "root-before-bind",
        scenarios: PIVOTING,
        shows_as: Reversed(
            "mount(\"/tmp/podlab-[id]/rootfs\", \"/tmp/podlab-[id]/rootfs\"",
            "open(\"/tmp/podlab-[id]/rootfs\", O_PATH|O_DIRECTORY",
        ),
        hint: ROOT_BEFORE_BIND,
    },
    Mistake {
        name: "old-root-kept",
        scenarios: PIVOTING,
        shows_as: NoneAfter("pivot_root(", "umount2("),
        hint: OLD_ROOT_KEPT,
    },
    Mistake {
        name: "no-gid-map",
        scenarios: &["user"],
        shows_as: Says("setresgid"),
        hint:
            "inside a new user namespace no id means anything until it is mapped: the group ids need a map \
               of their own (gid_map), written like the user ids' one, or becoming group 0 fails",
    },
    Mistake {
        name: "join-order",
        scenarios: &["join"],
        shows_as: Says("/ns/"),
        hint: "a namespace file could not be opened: once the mount namespace is joined, /proc is the \
               container's, where the process's pid means another process or none. Join the mount \
               namespace last (and the user namespace, which grants the right to join the rest, first): \
               keep the order the kinds come in",
    },
    Mistake {
        name: "old-root-kept",
        scenarios: &["join"],
        shows_as: Lacks("PID   COMMAND"),
        hint: OLD_ROOT_KEPT,
    },
    Mistake {
        name: "root-before-bind",
        scenarios: &["join"],
        shows_as: Lacks("    1 sleep"),
        hint: ROOT_BEFORE_BIND,
    },
];
