//! Level 5: images.
//!
//! Level 4 ran a bundle someone made by hand. Here the root filesystem
//! comes from an image: an index that points at a manifest, which points at
//! a config and at layers, each layer a tar of what changed since the one
//! below it, every piece a blob named by the SHA-256 of its bytes. This
//! level reads an image laid out on disk (OCI's image layout), checks every
//! blob against its digest, and unpacks the layers in order into a root
//! filesystem, whiteouts and all, without ever writing outside it.

pub mod build;
pub mod bundle;
// The lab swaps the reference `challenge` for the student's file (`--features lab-05`).
#[cfg_attr(not(feature = "lab-05"), path = "challenge.rs")]
#[cfg_attr(feature = "lab-05", path = "../../labs/05-images/challenge.rs")]
pub mod challenge;
pub mod layout;
pub mod registry;
pub mod snapshots;
pub mod unpack;
// The lab swaps the reference `whiteouts` for the student's file (`--features lab-05`).
#[cfg_attr(not(feature = "lab-05"), path = "whiteouts.rs")]
#[cfg_attr(feature = "lab-05", path = "../../labs/05-images/whiteouts.rs")]
pub mod whiteouts;

use std::io::Read;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::kernel::Root;
use crate::narrate;

pub use layout::{Image, Layout};

use crate::scenario::{same_everywhere, Level, Scenario, Workspace};
use registry::local;

/// Level 5's example and the runs of it that its tests record and its lab
/// replays.
pub const LEVEL: Level = Level {
    number: 5,
    name: "images",
    example: "05-images",
    feature: "lab-05",
    lab_files: &["labs/05-images/whiteouts.rs", "labs/05-images/challenge.rs"],
    workspace: Some(Workspace { prepare: prepare_workspace, clean: clean_workspace }),
    variant: same_everywhere,
    scenarios: &[
        Scenario {
            name: "unpack",
            args: &["unpack", "image", "rootfs"],
            then: &[&["tree", "rootfs", "etc", "srv", "bin/setuid-demo", "bin/sh", "tmp"]],
            files: &[],
            shows: "three layers applied in order: layer 2's whiteout deletes /etc/motd, layer 3's opaque \
                    /srv hides layer 1's; modes (setuid, sticky) and owners kept",
            hint: "apply_layer(): a .wh.NAME entry deletes NAME; .wh..wh..opq empties its directory of \
                   what lower layers put there",
            alongside: None,
        },
        Scenario {
            name: "snapshots",
            args: &["snapshot", "image", "--store", "store"],
            then: &[&["snapshot", "image", "--store", "store"]],
            files: &[],
            shows: "each layer unpacked once into a snapshot of its own, whiteouts kept as overlayfs \
                    marks them; the second time, nothing is unpacked",
            hint: "Store::prepare(): a layer whose directory exists is used as it is",
            alongside: None,
        },
        Scenario {
            name: "run",
            args: &[
                "run",
                "image",
                "--store",
                "store",
                "--",
                "sh",
                "-c",
                "cat /etc/hostname; ls -A /etc; echo /srv/*; id -u; echo $HOME",
            ],
            then: &[],
            files: &[],
            shows: "the image run with level 4's runtime: its layers unpacked into the store, an overlay of \
                    them as the root, the config made from the image's; all removed after",
            hint:
                "bundle::config(): the process comes from the image's Entrypoint, Cmd, Env, WorkingDir, User",
            alongside: None,
        },
        Scenario {
            name: "pull",
            args: &["pull", "{registry}/podlab/demo:1", "--store", "store", "--at-once", "1"],
            then: &[&["run", "{registry}/podlab/demo:1", "--store", "store", "--", "cat", "/etc/hostname"]],
            files: &[],
            shows:
                "a registry that wants a token: its 401 answered with a token for the scope it names, then \
                    the manifest and every blob fetched and checked; the image run from the store",
            hint: "challenge.rs: read_challenge() reads the realm, service and scope out of the 401's \
                   WWW-Authenticate; token_url() asks the realm for that service and scope",
            alongside: None,
        },
        Scenario {
            name: "push",
            args: &["push", "demo", "{registry}/students/demo:1", "--store", "image"],
            then: &[&["images", "--store", "image"]],
            files: &[],
            shows: "a push: a token for pull and push on the new repository, every blob uploaded, then the \
                    manifest; the store names the image by its new name too",
            hint:
                "challenge.rs: a push's scope is \"repository:NAME:pull,push\", a quoted value with a comma",
            alongside: None,
        },
        Scenario {
            name: "escape",
            args: &["build", "--escape", "hostile"],
            then: &[&["unpack", "hostile", "rootfs"]],
            files: &[],
            shows: "a layer whose entry climbs out of the root with \"..\": refused in a sentence, the \
                    half-made rootfs removed, nothing written outside",
            hint: "relative_path(): refuse \"..\" and absolute paths before anything is made",
            alongside: None,
        },
    ],
};

/// Each scenario starts with the demo image in `image/`. One that names
/// `{registry}` gets a registry too, on 127.0.0.1, whose tokens come from a
/// token server; the demo image is in it as podlab/demo:1, and its address
/// in `.registry`.
fn prepare_workspace(dir: &Path, scenario: &Scenario) -> std::io::Result<()> {
    crate::narrate::set_quiet(true);
    let failed = |e: Error| std::io::Error::other(e.to_string());
    build::demo_image(&dir.join("image")).map_err(failed)?;
    let names_registry = std::iter::once(scenario.args)
        .chain(scenario.then.iter().copied())
        .any(|args| args.iter().any(|arg| arg.contains("{registry}")));
    if !names_registry {
        return Ok(());
    }
    let tokens = local::TokenServer::start(dir, None).map_err(failed)?;
    let served = local::LocalRegistry::start(dir, local::Auth::Tokens(&tokens)).map_err(failed)?;
    let reference: registry::Reference =
        format!("{}/podlab/demo:1", served.address).parse().map_err(failed)?;
    // Pushed from a copy, so that the scenario's own store names nothing more.
    let copy = dir.join(".pushed");
    build::demo_image(&copy).map_err(failed)?;
    registry::push(&copy, build::TAG, &reference, &registry::Options::default()).map_err(failed)?;
    crate::kernel::remove_dir_all(&copy).map_err(failed)?;
    std::fs::write(dir.join(".registry"), &served.address)?;
    SERVED.lock().unwrap_or_else(|e| e.into_inner()).push((dir.to_path_buf(), served, tokens));
    Ok(())
}

/// The registries the scenarios' workspaces started, by workspace.
type Served = (std::path::PathBuf, local::LocalRegistry, local::TokenServer);
static SERVED: std::sync::Mutex<Vec<Served>> = std::sync::Mutex::new(Vec::new());

/// Stops the registry a scenario's workspace started, if any.
fn clean_workspace(dir: &Path) {
    SERVED.lock().unwrap_or_else(|e| e.into_inner()).retain(|(served, _, _)| served != dir);
}
pub use unpack::{Applied, Limits, Whiteouts};

// ANCHOR: unpack
/// Unpacks the image in the layout at `layout` into `rootfs`, an empty
/// directory: each layer's blob checked against its digest, then applied
/// on top of the ones before, its uncompressed bytes checked against the
/// config's diff_id.
pub fn unpack(layout: &Path, rootfs: &Path, limits: &Limits) -> Result<Vec<Applied>> {
    unpack_named(layout, None, rootfs, limits)
}

/// [`unpack`] of the image named `name` in the layout (a store holding
/// several), or of its only one.
pub fn unpack_named(
    layout: &Path,
    name: Option<&str>,
    rootfs: &Path,
    limits: &Limits,
) -> Result<Vec<Applied>> {
    let layout = Layout::open(layout)?;
    let image = layout.image_named(name)?;
    let root = Root::open(rootfs)?;
    (0..image.layers.len())
        .map(|number| apply_checked(&layout, &image, number, &root, limits, Whiteouts::Apply))
        .collect()
}
// ANCHOR_END: unpack

/// Applies layer `number` of `image` onto `root`, told as one line: its
/// blob checked first, its tar's digest checked against the config's
/// diff_id as it is read.
fn apply_checked(
    layout: &Layout,
    image: &Image,
    number: usize,
    root: &Root,
    limits: &Limits,
    whiteouts: Whiteouts,
) -> Result<Applied> {
    let layer = &image.layers[number];
    let mut reader = Hashing::new(ReadAhead::start(layout.layer_reader(layer)?));
    let done = narrate::folded(
        || unpack::apply_layer(root, &mut reader, limits, whiteouts),
        |done: &Applied| {
            format!(
                "unpacked layer {} ({}): {} entries, {} whiteouts",
                number + 1,
                kind(layer),
                done.entries,
                done.whiteouts
            )
        },
    )?;
    // The tar's end may leave padding unread: read it all, for the digest.
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| Error::new(format!("the layer is damaged: {e}")))?;
    let found = format!("sha256:{}", reader.hex());
    let expected = &image.config.rootfs().diff_ids()[number];
    if &found != expected {
        return Err(Error::new(format!(
            "layer {} unpacks to other bytes than the config's diff_id says ({found}, not {expected}): refusing \
             the image",
            number + 1
        )));
    }
    Ok(done)
}

/// How a layer is packed, in a word.
pub fn kind(layer: &layout::Layer) -> &'static str {
    match layer.compression {
        layout::Compression::Gzip => "tar+gzip",
        layout::Compression::Zstd => "tar+zstd",
        layout::Compression::None => "tar",
    }
}

/// A reader fed by a thread of its own that reads ahead (decompresses a
/// layer) while this one hashes the tar and makes its files: the two run
/// on two cores. At most [`ReadAhead::CHUNKS`] chunks wait between them.
struct ReadAhead {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: std::io::Cursor<Vec<u8>>,
}

impl ReadAhead {
    const CHUNKS: usize = 16;
    const CHUNK: usize = 256 << 10;

    fn start(mut inner: Box<dyn Read + Send>) -> ReadAhead {
        let (sender, chunks) = std::sync::mpsc::sync_channel(Self::CHUNKS);
        std::thread::spawn(move || loop {
            let mut chunk = vec![0u8; Self::CHUNK];
            let read = match inner.read(&mut chunk) {
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = sender.send(Err(e));
                    return;
                }
            };
            chunk.truncate(read);
            // An empty chunk is the end; a reader that went away ends it too.
            if sender.send(Ok(chunk)).is_err() || read == 0 {
                return;
            }
        });
        ReadAhead { chunks, chunk: std::io::Cursor::new(Vec::new()) }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let read = self.chunk.read(buffer)?;
            if read > 0 || buffer.is_empty() {
                return Ok(read);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(0),
                Ok(Ok(chunk)) => self.chunk = std::io::Cursor::new(chunk),
                Ok(Err(e)) => return Err(e),
                // The thread ended without a word: the end was told before.
                Err(_) => return Ok(0),
            }
        }
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing { inner, hasher: Sha256::new() }
    }

    fn hex(&self) -> String {
        format!("{:x}", self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        Ok(read)
    }
}
