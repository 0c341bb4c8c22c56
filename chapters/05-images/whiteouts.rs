//! Whiteouts: how a layer, a tar of what changed, says that something was
//! deleted. A tar cannot hold "no file here", so the image specification
//! names a mark instead: an empty file `.wh.NAME` deletes NAME of a lower
//! layer, and `.wh..wh..opq` in a directory deletes everything lower layers
//! had in it (the directory was replaced). Applied in a tree that holds the
//! layers below, a mark deletes; kept in a snapshot for overlayfs, it
//! becomes overlayfs's own mark, which the kernel reads when it mounts.

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

// ANCHOR: mark_of
/// Reads an entry's name (the last piece of its path). A whiteout that
/// names no entry (`.wh.`, `.wh..`, a whiteout of a whiteout) is refused:
/// it could only be an attack on the unpacker.
pub fn mark_of(name: &str) -> Result<Mark<'_>> {
    if name == OPAQUE {
        return Ok(Mark::Opaque);
    }
    let Some(deleted) = name.strip_prefix(WHITEOUT) else {
        return Ok(Mark::Entry);
    };
    if deleted.is_empty() || deleted == "." || deleted == ".." || deleted.starts_with(WHITEOUT) {
        return Err(Error::new(format!("the layer's whiteout {name:?} names no entry: refusing the layer")));
    }
    Ok(Mark::Whiteout(deleted))
}
// ANCHOR_END: mark_of

// ANCHOR: apply
/// Applies a mark in `dir`, a directory of a tree that holds the layers
/// below: a whiteout deletes its name, the opaque mark every entry of
/// `dir` that this layer did not make itself (`made_here`: a layer's own
/// entries may come before its mark in the tar, and stay).
pub fn apply(dir: &Inside, mark: Mark, made_here: impl Fn(&str) -> bool) -> Result<()> {
    match mark {
        Mark::Entry => Ok(()),
        Mark::Whiteout(deleted) => dir.remove(deleted).map(drop),
        Mark::Opaque => {
            for name in dir.names()? {
                if !made_here(&name) {
                    dir.remove(&name)?;
                }
            }
            Ok(())
        }
    }
}
// ANCHOR_END: apply

// ANCHOR: keep_for_overlay
/// Keeps a mark as overlayfs writes its own, in `dir`, a directory of a
/// snapshot that holds this layer alone: a whiteout becomes a character
/// device 0:0 of the name it deletes, the opaque mark the attribute
/// `trusted.overlay.opaque` = "y" on the directory. Mounted over the layers
/// below, the kernel then hides what they name.
pub fn keep_for_overlay(dir: &Inside, mark: Mark) -> Result<()> {
    match mark {
        Mark::Entry => Ok(()),
        Mark::Whiteout(deleted) => {
            dir.remove(deleted)?;
            dir.mknod(deleted, SFlag::S_IFCHR, 0, 0, 0o000)
        }
        Mark::Opaque => dir.set_own_xattr("trusted.overlay.opaque", b"y"),
    }
}
// ANCHOR_END: keep_for_overlay
