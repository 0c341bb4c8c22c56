//! Snapshots: each layer unpacked once, into a directory of its own, and
//! shared by every container of every image that has it. A container's
//! root is an overlay mount of those directories, read-only, under a
//! directory of its own that takes its writes. The second container of an
//! image starts without unpacking anything.

use std::path::{Path, PathBuf};

use super::layout::{Image, Layout};
use super::unpack::{Applied, Limits, Whiteouts};
use crate::error::{Error, Result};
use crate::kernel::{self, Root};

/// Where layers are kept: `<dir>/layers/<diff_id's hex>/`, each complete
/// once it has its name (it is unpacked under a temporary one, then
/// renamed).
pub struct Store {
    dir: PathBuf,
}

/// A layer in the store, and whether this call unpacked it.
pub struct Snapshot {
    pub dir: PathBuf,
    pub unpacked: Option<Applied>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        kernel::mkdir_all(&dir.join("layers"))?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    // ANCHOR: prepare
    /// The image's layers in the store, bottom first: those it has are
    /// used as they are, the others unpacked, each into a directory of its
    /// own, whiteouts kept as overlayfs marks them.
    pub fn prepare(&self, layout: &Layout, image: &Image, limits: &Limits) -> Result<Vec<Snapshot>> {
        let mut snapshots = Vec::new();
        for (number, diff_id) in image.config.rootfs().diff_ids().iter().enumerate() {
            let hex = diff_id
                .strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            let hex =
                hex.ok_or_else(|| Error::new(format!("the diff_id {diff_id:?} is not a sha256 digest")))?;
            let dir = self.dir.join("layers").join(hex);
            if dir.is_dir() {
                snapshots.push(Snapshot { dir, unpacked: None });
                continue;
            }
            // Unpacked under a name of its own, then renamed: another
            // container unpacking the same layer at once loses the race
            // harmlessly, and a layer half unpacked never has the name.
            let making = self.dir.join("layers").join(format!("{hex}.{}", std::process::id()));
            kernel::mkdir(&making, 0o755)?;
            let root = Root::open(&making)?;
            let applied = super::apply_checked(layout, image, number, &root, limits, Whiteouts::Overlay)
                .inspect_err(|_| drop(kernel::remove_dir_all(&making)))?;
            if kernel::rename(&making, &dir).is_err() && dir.is_dir() {
                kernel::remove_dir_all(&making)?;
            }
            snapshots.push(Snapshot { dir, unpacked: Some(applied) });
        }
        Ok(snapshots)
    }
    // ANCHOR_END: prepare
}

// ANCHOR: mount_overlay
/// Mounts at `target` the overlay of `layers` (bottom first), read-only,
/// with `upper` taking the container's writes (`work` is overlayfs's own
/// scratch space, on the same file system as `upper`).
pub fn mount_overlay(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    // overlayfs lists the lower directories top first.
    let lower: Vec<String> = layers.iter().rev().map(|dir| escaped(dir)).collect::<Result<_>>()?;
    let data =
        format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), escaped(upper)?, escaped(work)?);
    kernel::mount(
        Some(Path::new("overlay")),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(&data),
    )
}
// ANCHOR_END: mount_overlay

/// A path as overlayfs's options take it: ':' and ',' separate them, so a
/// path holding one is refused rather than misread.
fn escaped(path: &Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| Error::new(format!("{} is not UTF-8", path.display())))?;
    if text.contains([':', ',', '\\']) {
        return Err(Error::new(format!(
            "{text:?} holds ':', ',' or '\\\\', which overlayfs's options cannot take"
        )));
    }
    Ok(text.to_string())
}
