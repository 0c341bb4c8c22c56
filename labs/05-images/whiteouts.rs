//! Level 5 lab: whiteouts, the marks by which a layer deletes what a lower
//! layer had.
//!
//! Write the three functions below; `cargo lab 5` checks them, and
//! `cargo lab hint 5` gives a hint when you are stuck. Call the kernel only
//! through the directory handles you are given (`Inside`): each call
//! narrates itself, and never leaves the root filesystem.
//! The sheet, labs/05-images/README.md, says what each function must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use nix::sys::stat::SFlag;

use crate::error::{Error, Result};
use crate::kernel::Inside;

/// The prefix of a whiteout: `.wh.NAME` deletes NAME of a lower layer.
const WHITEOUT: &str = ".wh.";
/// Deletes everything a lower layer had in its directory.
const OPAQUE: &str = ".wh..wh..opq";

/// What a layer's entry is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark<'a> {
    /// An ordinary entry, made as it is.
    Entry,
    /// `.wh.NAME`: NAME, from a lower layer, is deleted.
    Whiteout(&'a str),
    /// `.wh..wh..opq`: what lower layers had in this directory is deleted.
    Opaque,
}

/// Reads an entry's name (the last piece of its path). A whiteout that
/// names no entry (`.wh.`, `.wh..`, a whiteout of a whiteout) is refused.
pub fn mark_of(name: &str) -> Result<Mark<'_>> {
    todo!("tell a whiteout, the opaque mark and an ordinary entry apart by the name; `cargo lab hint 5` when stuck")
}

/// Applies a mark in `dir`, a directory of a tree that holds the layers
/// below: a whiteout deletes its name, the opaque mark every entry of
/// `dir` that this layer did not make itself (`made_here`).
pub fn apply(dir: &Inside, mark: Mark, made_here: impl Fn(&str) -> bool) -> Result<()> {
    todo!("delete what the mark names in dir; `cargo lab hint 5` when stuck")
}

/// Keeps a mark as overlayfs writes its own, in `dir`, a directory of a
/// snapshot that holds this layer alone: a whiteout becomes a character
/// device 0:0 of the name it deletes, the opaque mark the attribute
/// `trusted.overlay.opaque` = "y" on the directory.
pub fn keep_for_overlay(dir: &Inside, mark: Mark) -> Result<()> {
    todo!("write the mark as overlayfs reads it; `cargo lab hint 5` when stuck")
}
