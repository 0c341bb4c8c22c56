//! Level 1's mistakes: what each looks like from outside, and the hint for
//! it. `cargo lab 1` shows the hint of the first one a scenario shows;
//! labs/01-chroot/fixtures/ holds a wrong solution for each of several.

use crate::Mistake;
use crate::Symptom::{Hangs, Lacks, NotBefore, Says};

/// The scenarios in which the program gets as far as entering the jail.
const ENTERING: &[&str] = &["ls", "cd-up", "whoami", "escape", "mount-proc", "files"];

const NO_PASSWD: &str = "after chroot, whoami reads the rootfs's own etc/passwd (the host's is out of \
     reach): root's line has to be there, and root's group in etc/group";

const OUTSIDE: &str = "the command starts in a working directory outside the jail: chroot(2) changes \
     what \"/\" means and nothing else, so the working directory has to be moved inside once the root \
     has changed, not before";

pub const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "no-applet-links",
        scenarios: &["ls", "cd-up", "whoami", "mount-proc", "files", "quiet"],
        shows_as: Says("in the rootfs (looked in"),
        hint: "the command is not in the rootfs's bin: busybox is one program that answers to many \
               names, and it knows which by the name it was started under, so each applet needs a \
               name in bin that leads to busybox",
    },
    Mistake { name: "no-passwd", scenarios: &["whoami"], shows_as: Says("unknown"), hint: NO_PASSWD },
    Mistake { name: "no-passwd", scenarios: &["files"], shows_as: Says("UNKNOWN"), hint: NO_PASSWD },
    Mistake {
        name: "working-directory-outside",
        scenarios: &["cd-up"],
        shows_as: Says("(unreachable)"),
        hint: OUTSIDE,
    },
    Mistake {
        name: "working-directory-outside",
        scenarios: ENTERING,
        shows_as: NotBefore("chroot(\"/tmp/podlab-", "chdir(\"/\")"),
        hint: OUTSIDE,
    },
    Mistake {
        name: "tmp-mode",
        scenarios: &["files"],
        shows_as: Lacks("drwxrwxrwt root:root /tmp"),
        hint: "/tmp must be drwxrwxrwt (1777): everyone may write there, and the sticky bit keeps users \
               from removing each other's files. mkdir(2)'s mode passes through the umask (022 takes \
               the write bits of group and others away), so set the mode again once the directory is there",
    },
    Mistake {
        name: "dev-null",
        scenarios: &["files"],
        shows_as: Lacks("crw-rw-rw- root:root /dev/null"),
        hint: "/dev/null must be the character device 1, 3, which everyone may read and write; \
               mknod(2)'s mode passes through the umask too",
    },
    Mistake {
        name: "escape-stays-jailed",
        scenarios: &["escape"],
        shows_as: Says("still jailed"),
        hint: "break_out() ends where it began: after the chroot into a directory below, the working \
               directory must stay where it is, above the new root, since only from there can \"..\" \
               climb past it; a chdir into the new root closes the way out",
    },
    Mistake {
        name: "escape-never-ends",
        scenarios: &["escape"],
        shows_as: Hangs,
        hint: "break_out() never ends: the climb must go up one directory each time round, and stop \
               where \".\" and \"..\" are the same directory, which only the real root is",
    },
];
