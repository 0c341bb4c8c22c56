//! The one seam between podlab and the kernel.
//!
//! Every call that changes the kernel's state goes through a function here,
//! and each one narrates itself before it acts. So "everything is narrated"
//! is a property of the design rather than a habit to keep, and a reader who
//! wants to know what a level really asks of Linux can read these files,
//! one a family of calls.
//!
//! Each function returns an [`Error`] naming the call that failed and why.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd;

use crate::error::{Error, Result};

mod files;
pub use files::*;
mod inside;
pub use inside::{Inside, Root};
mod mounts;
pub use mounts::*;
mod processes;
pub use processes::*;
mod namespaces;
pub use namespaces::*;
mod filters;
pub use filters::*;
mod capabilities;
pub use capabilities::*;
mod terminals;
pub use terminals::*;
mod netlink;
pub use netlink::*;
mod packets;
pub use packets::*;
mod nftables;
pub use nftables::*;

fn failed(call: String, errno: Errno) -> Error {
    Error::new(format!("{call} failed: {} ({errno:?})", errno.desc()))
}

fn io_failed(call: String, error: std::io::Error) -> Error {
    match error.raw_os_error() {
        Some(code) => failed(call, Errno::from_raw(code)),
        None => Error::new(format!("{call} failed: {error}")),
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::new(format!("the path {path:?} contains a NUL byte")))
}

/// Refuses to go on without root, saying which privilege the level needs.
pub fn require_root(needs: &str) -> Result<()> {
    if unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "this needs root ({needs}): run it again with sudo, or as root in the course VM"
        )))
    }
}

/// The names of the flags set in a bitflags value, joined by "|", as C
/// writes them (`MS_REC|MS_PRIVATE`); "0" when none is set.
fn flag_names<F: bitflags::Flags>(flags: F) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}
