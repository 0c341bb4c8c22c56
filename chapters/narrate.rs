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
static VERBOSE: AtomicBool = AtomicBool::new(false);
static FOLDING: AtomicBool = AtomicBool::new(false);
static DEPTH: AtomicUsize = AtomicUsize::new(1);

/// Where a line goes when not straight to stderr (past progress bars).
type Printer = Box<dyn Fn(&str) + Send + Sync>;
static PRINTER: std::sync::RwLock<Option<Printer>> = std::sync::RwLock::new(None);

/// Sends narration through `printer` (which must still end on stderr),
/// as progress bars need, or straight to stderr again with `None`.
pub fn set_printer(printer: Option<Printer>) {
    *PRINTER.write().unwrap_or_else(|e| e.into_inner()) = printer;
}

/// `--quiet`: tell nothing.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// `--verbose`: tell the calls of a lower level's set-up too, which
/// [`folded`] otherwise tells in one line.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Runs `work`, a lower level's set-up (level 1's rootfs, under level 2),
/// told as the one line that `summary` makes of what it made, so that a
/// level's narration is about that level; with `--verbose`, call by call.
pub fn folded<T, E>(work: impl FnOnce() -> Result<T, E>, summary: impl FnOnce(&T) -> String) -> Result<T, E> {
    if VERBOSE.load(Ordering::Relaxed) {
        return work();
    }
    FOLDING.store(true, Ordering::Relaxed);
    let made = work();
    FOLDING.store(false, Ordering::Relaxed);
    if let Ok(made) = &made {
        line(format_args!("{}", summary(made)));
    }
    made
}

/// Called in a child right after fork: its lines are indented one step more,
/// so a reader sees which process made which call.
pub fn enter_child() {
    DEPTH.fetch_add(1, Ordering::Relaxed);
}

/// Prints one narration line. Use the [`narrate!`](crate::narrate!) macro.
pub fn line(call: fmt::Arguments) {
    if QUIET.load(Ordering::Relaxed) || FOLDING.load(Ordering::Relaxed) {
        return;
    }
    let indent = "  ".repeat(DEPTH.load(Ordering::Relaxed));
    // One write per line, so that lines from a parent and its child never
    // interleave mid-line on a shared stderr.
    let text = format!("{indent}> {call}\n");
    match &*PRINTER.read().unwrap_or_else(|e| e.into_inner()) {
        Some(printer) => printer(&text),
        None => drop(std::io::stderr().write_all(text.as_bytes())),
    }
}

/// `narrate!("chroot({:?})", path)` tells one kernel-level call.
#[macro_export]
macro_rules! narrate {
    ($($call:tt)*) => {
        $crate::narrate::line(format_args!($($call)*))
    };
}
