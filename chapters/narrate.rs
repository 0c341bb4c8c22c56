//! Narration: every call that changes the kernel's state is told on stderr,
//! one line each, in a fixed form such as `  > chroot("/tmp/podlab-x/rootfs")`.
//!
//! stdout stays the program's own output, so the two can be read apart;
//! tests capture both, and the book shows what they captured. Calls that only
//! look (stat, read) are not told: they change nothing.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
static DEPTH: AtomicUsize = AtomicUsize::new(1);

/// `--quiet`: tell nothing.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Called in a child right after fork: its lines are indented one step more,
/// so a reader sees which process made which call.
pub fn enter_child() {
    DEPTH.fetch_add(1, Ordering::Relaxed);
}

/// Prints one narration line. Use the [`narrate!`](crate::narrate!) macro.
pub fn line(call: fmt::Arguments) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let indent = "  ".repeat(DEPTH.load(Ordering::Relaxed));
    // One write per line, so that lines from a parent and its child never
    // interleave mid-line on a shared stderr.
    let text = format!("{indent}> {call}\n");
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// `narrate!("chroot({:?})", path)` tells one kernel-level call.
#[macro_export]
macro_rules! narrate {
    ($($call:tt)*) => {
        $crate::narrate::line(format_args!($($call)*))
    };
}
