//! Layers onto a root filesystem, one after the other, as the image
//! specification says: each layer a tar of what changed, its whiteouts
//! deleting what a lower layer had.
//!
//! A layer comes from someone else, so every path in it is input. The
//! classic unpacker joins `root + entry.path()` and writes there; a layer
//! with `../../etc/cron.d/x`, or a symbolic link `x -> /etc` followed by an
//! entry `x/cron.d/y`, then writes on the host (the "zip slip" family of
//! CVEs, in Docker, containerd and many more). Here an entry's directory
//! is found inside the root by level 2's resolver, which never leaves it,
//! and the entry is made by one name in that directory's descriptor; paths
//! that climb out ("..") or start at "/" are refused outright.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::whiteouts::{self, Mark};
use crate::error::{Error, Result};
use crate::kernel::{Inside, Root};

/// How much a layer may unpack to: a few kilobytes of gzip can claim
/// gigabytes (a decompression bomb), and a tar millions of entries.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub bytes: u64,
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { bytes: 16 << 30, entries: 1_000_000 }
    }
}

/// What a layer's whiteouts do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete what they name, in a root that holds the layers below: one
    /// tree for the whole image.
    Apply,
    /// Keep them, as overlayfs marks them, in a directory that holds this
    /// layer alone (a snapshot): a whiteout becomes a character device
    /// 0:0 of the name it deletes, an opaque directory gets the xattr
    /// trusted.overlay.opaque = "y". Mounted over the layers below, the
    /// kernel then hides what they name.
    Overlay,
}

/// What one layer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub entries: usize,
    pub bytes: u64,
    pub whiteouts: usize,
}

// ANCHOR: apply_layer
/// Applies one layer (a tar stream) onto `root`.
pub fn apply_layer(root: &Root, layer: impl Read, limits: &Limits, whiteouts: Whiteouts) -> Result<Applied> {
    let mut archive = tar::Archive::new(layer);
    let mut applied = Applied::default();
    // What this layer made: an opaque directory deletes only the lower
    // layers' entries, whatever order the tar gives its own in.
    let mut made: HashSet<PathBuf> = HashSet::new();
    // Directories' times are set last: making an entry in one changes it.
    let mut directory_times: Vec<(PathBuf, String, i64)> = Vec::new();
    let entries = archive.entries().map_err(damaged)?;
    for entry in entries {
        let mut entry = entry.map_err(damaged)?;
        applied.entries += 1;
        if applied.entries > limits.entries {
            return Err(Error::new(format!(
                "the layer has more than {} entries: refusing it (raise the limit if it is meant)",
                limits.entries
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let path = relative_path(&raw)?;
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue; // "./": the root itself, which the image does not own
        };
        let parent_path = path.parent().unwrap_or(Path::new(""));
        let mark = whiteouts::mark_of(&name)?;
        if mark != Mark::Entry {
            applied.whiteouts += 1;
            match whiteouts {
                Whiteouts::Overlay => {
                    whiteouts::keep_for_overlay(&root.make_dirs(parent_path)?, mark)?;
                    made.insert(path);
                }
                // Nothing to delete where a lower layer had nothing.
                Whiteouts::Apply => {
                    if let Some(parent) = root.find(parent_path)? {
                        whiteouts::apply(&parent, mark, |name| made.contains(&parent_path.join(name)))?;
                    }
                }
            }
            continue;
        }
        let parent = root.make_dirs(parent_path)?;
        let header = entry.header().clone();
        let mode = header.mode().map_err(damaged)? & 0o7777;
        let (uid, gid) = (header.uid().map_err(damaged)? as u32, header.gid().map_err(damaged)? as u32);
        let mtime = header.mtime().map_err(damaged)? as i64;
        match header.entry_type() {
            EntryType::Directory => {
                parent.directory(&name, mode)?;
                directory_times.push((parent_path.to_path_buf(), name.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut file = parent.create(&name, mode)?;
                let left = limits.bytes.saturating_sub(applied.bytes);
                let copied = std::io::copy(&mut (&mut entry).take(left + 1), &mut file).map_err(damaged)?;
                applied.bytes += copied;
                if copied > left {
                    return Err(Error::new(format!(
                        "the layer unpacks to more than {} bytes (a decompression bomb?): refusing it",
                        limits.bytes
                    )));
                }
                file.flush().map_err(damaged)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| missing_target(&path))?;
                let target = std::str::from_utf8(&target).map_err(|_| not_utf8(&path))?.to_string();
                parent.remove(&name)?;
                parent.symlink(Path::new(&target), &name)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| missing_target(&path))?;
                let target = relative_path(&target)?;
                let linked = existing(root, &target)?.ok_or_else(|| {
                    Error::new(format!(
                        "the layer's hard link {path:?} points at {target:?}, which the root does not have: \
                         refusing the layer"
                    ))
                })?;
                parent.hardlink(&name, &linked)?;
                // A hard link shares its target's owner, mode and times.
                made.insert(path);
                continue;
            }
            kind @ (EntryType::Char | EntryType::Block | EntryType::Fifo) => {
                let (major, minor) = (
                    header.device_major().map_err(damaged)?.unwrap_or(0),
                    header.device_minor().map_err(damaged)?.unwrap_or(0),
                );
                let kind = match kind {
                    EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                // Made as the image says: whether the container may open a
                // device is the device rules' to decide, not the file's.
                parent.remove(&name)?;
                parent.mknod(&name, kind, major.into(), minor.into(), mode)?;
            }
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => {
                continue;
            }
            other => {
                return Err(Error::new(format!(
                    "the layer's entry {path:?} is of a kind podlab does not unpack ({other:?}): refusing the layer"
                )))
            }
        }
        set_owner_mode_xattrs(&parent, &name, &mut entry, uid, gid, mode)?;
        if header.entry_type() != EntryType::Directory {
            parent.set_time(&name, mtime)?;
        }
        made.insert(path);
    }
    for (parent_path, name, mtime) in directory_times.into_iter().rev() {
        if let Some(parent) = root.find(&parent_path)? {
            parent.set_time(&name, mtime)?;
        }
    }
    Ok(applied)
}
// ANCHOR_END: apply_layer

/// An entry's owner, then its mode (changing the owner clears the setuid
/// and setgid bits, so the mode comes after), then its extended attributes
/// (pax records SCHILY.xattr.*).
fn set_owner_mode_xattrs<R: Read>(
    parent: &Inside,
    name: &str,
    entry: &mut tar::Entry<R>,
    uid: u32,
    gid: u32,
    mode: u32,
) -> Result<()> {
    parent.chown(name, uid, gid)?;
    let made = parent.entry(name)?.ok_or_else(|| Error::new(format!("{name:?} vanished as it was made")))?;
    if entry.header().entry_type() != EntryType::Symlink {
        made.set_mode(mode)?;
    }
    if let Some(extensions) = entry.pax_extensions().map_err(damaged)? {
        for extension in extensions {
            let extension = extension.map_err(damaged)?;
            let Ok(key) = extension.key() else { continue };
            if let Some(attribute) = key.strip_prefix("SCHILY.xattr.") {
                parent.set_xattr(name, attribute, extension.value_bytes())?;
            }
        }
    }
    Ok(())
}

/// An entry's path, relative to the root, as a layer must give it: no "/"
/// in front, nothing that climbs ("..").
fn relative_path(raw: &[u8]) -> Result<PathBuf> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| not_utf8(Path::new(&String::from_utf8_lossy(raw).into_owned())))?;
    if text.starts_with('/') {
        return Err(Error::new(format!(
            "the layer's entry {text:?} is an absolute path, where a layer holds paths relative to the root: \
             refusing the layer"
        )));
    }
    let mut path = PathBuf::new();
    for part in text.split('/').filter(|part| !part.is_empty() && *part != ".") {
        if part == ".." {
            return Err(Error::new(format!(
                "the layer's entry {text:?} climbs out of the root with \"..\": refusing the layer"
            )));
        }
        path.push(part);
    }
    Ok(path)
}

/// The file at `path` in the root, its last piece not followed if a link
/// (a hard link to a symbolic link links the link).
fn existing(root: &Root, path: &Path) -> Result<Option<Inside>> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return Ok(None) };
    match root.find(parent)? {
        Some(dir) => dir.entry(&name.to_string_lossy()),
        None => Ok(None),
    }
}

fn damaged(error: std::io::Error) -> Error {
    Error::new(format!("the layer is damaged (a truncated or corrupt archive?): {error}"))
}

fn missing_target(path: &Path) -> Error {
    Error::new(format!("the layer's link {path:?} has no target: refusing the layer"))
}

fn not_utf8(path: &Path) -> Error {
    Error::new(format!(
        "the layer's entry {path:?} has a name that is not UTF-8: podlab unpacks UTF-8 names only"
    ))
}
