//! An OCI image layout on disk: `oci-layout`, `index.json`, and every blob
//! under `blobs/sha256/`, named by the SHA-256 of its bytes. From the index
//! to the manifest for this machine's platform, then to the config and the
//! layers; every blob checked against its digest and size before use.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::kernel;

/// Docker's media types, which registries and `skopeo` still hand out beside
/// the OCI ones: the same things under other names.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The largest manifest, index or config read whole: they are small JSON
/// documents, and a hostile "manifest" of gigabytes must not be read in.
const JSON_LIMIT: u64 = 4 << 20;

/// An image layout directory.
pub struct Layout {
    dir: PathBuf,
}

/// How a layer's bytes are packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// One layer of an image: its blob, checked, and how it is packed.
pub struct Layer {
    pub descriptor: Descriptor,
    pub compression: Compression,
}

/// An image read off a layout: its manifest, config and layers in order.
pub struct Image {
    /// The manifest's own descriptor (its media type, digest and size).
    pub descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

/// The annotation that names an image in a layout's index.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl Layout {
    /// The layout at `dir`, made if there is none: a store that pulls add to.
    pub fn create(dir: &Path) -> Result<Layout> {
        if !dir.join("oci-layout").exists() {
            kernel::mkdir_all(&dir.join("blobs/sha256"))?;
            // Under the index's lock: two pulls may make the store at once.
            let _lock = kernel::lock_file(&dir.join("index.lock"))?;
            if !dir.join("oci-layout").exists() {
                kernel::write_file_atomically(
                    &dir.join("index.json"),
                    r#"{"schemaVersion":2,"manifests":[]}"#,
                )?;
                kernel::write_file_atomically(&dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
        }
        Layout::open(dir)
    }

    /// Whether the store has the blob (of the right size; its digest is
    /// checked whenever it is used).
    pub fn has(&self, descriptor: &Descriptor) -> bool {
        self.blob_path(descriptor)
            .ok()
            .and_then(|path| std::fs::metadata(path).ok())
            .is_some_and(|meta| meta.len() == descriptor.size())
    }

    /// A new file for a blob being received, under a temporary name.
    pub fn partial(&self, descriptor: &Descriptor) -> Result<(PathBuf, std::fs::File)> {
        let final_path = self.blob_path(descriptor)?;
        // Beside where it will go, named by its digest, our pid and a count
        // (two pulls in one process may receive the same blob at once).
        static RECEIVING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let count = RECEIVING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(".{}.partial.{}.{count}", descriptor.digest().digest(), std::process::id());
        let path = final_path.with_file_name(name);
        Ok((path.clone(), std::fs::File::from(kernel::create_file(&path)?)))
    }

    /// Gives a received and checked blob its name: a reader sees it whole or
    /// not at all, and two pulls of it at once both end with it stored once.
    pub fn settle(&self, partial: &Path, descriptor: &Descriptor) -> Result<()> {
        kernel::rename(partial, &self.blob_path(descriptor)?)
    }

    /// Stores a blob held in memory, once its bytes have its digest.
    pub fn put(&self, descriptor: &Descriptor, bytes: &[u8]) -> Result<()> {
        let found = format!("{:x}", Sha256::digest(bytes));
        if found != descriptor.digest().digest() || bytes.len() as u64 != descriptor.size() {
            return Err(Error::new(format!(
                "the bytes for {} are not its bytes: refusing them",
                descriptor.digest()
            )));
        }
        let path = self.blob_path(descriptor)?;
        let (partial, mut file) = self.partial(descriptor)?;
        std::io::Write::write_all(&mut file, bytes)
            .map_err(|e| Error::new(format!("storing {}: {e}", path.display())))?;
        self.settle(&partial, descriptor)
    }

    /// Names the image `descriptor` (a manifest) `name` in the index, in
    /// place of any image of that name.
    pub fn tag(&self, descriptor: &Descriptor, name: &str) -> Result<()> {
        self.rename(name, Some(descriptor)).map(drop)
    }

    /// The images the index names, by name, with their manifests' descriptors.
    pub fn names(&self) -> Result<Vec<(String, Descriptor)>> {
        let mut named: Vec<(String, Descriptor)> = self
            .index()?
            .manifests()
            .iter()
            .filter_map(|m| Some((m.annotations().as_ref()?.get(REF_NAME)?.clone(), m.clone())))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    /// Takes the name `name` off its image (`rmi`); its blobs stay until a
    /// garbage collection finds nothing else uses them. Whether it was there.
    pub fn untag(&self, name: &str) -> Result<bool> {
        self.rename(name, None)
    }

    /// Takes `name` off whatever image has it, and gives it to `to` if
    /// given: the index read, changed and written back under a lock, so
    /// that two pulls at once both get their names. Whether it was there.
    fn rename(&self, name: &str, to: Option<&Descriptor>) -> Result<bool> {
        let lock = kernel::lock_file(&self.dir.join("index.lock"))?;
        let mut index = self.index()?;
        let named = |m: &&Descriptor| {
            m.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) == Some(name)
        };
        let was_there = index.manifests().iter().any(|m| named(&m));
        let mut manifests: Vec<Descriptor> =
            index.manifests().iter().filter(|m| !named(m)).cloned().collect();
        if let Some(descriptor) = to {
            let mut descriptor = descriptor.clone();
            descriptor.set_annotations(Some(std::collections::HashMap::from([(
                REF_NAME.to_string(),
                name.to_string(),
            )])));
            manifests.push(descriptor);
        }
        index.set_manifests(manifests);
        let json = serde_json::to_string(&index).map_err(|e| Error::new(format!("an index: {e}")))?;
        kernel::write_file_atomically(&self.dir.join("index.json"), &json)?;
        drop(lock);
        Ok(was_there)
    }

    // ANCHOR: collect_garbage
    /// Removes the blobs no image of the index uses (what kubelet's image
    /// garbage collection does, once the images it no longer needs are
    /// untagged): every blob reachable from the index is kept, its
    /// manifests, their configs and layers; the rest goes. Under the
    /// index's lock, so that no pull names an image meanwhile. How many
    /// blobs went, and how many bytes.
    pub fn collect_garbage(&self) -> Result<(usize, u64)> {
        let lock = kernel::lock_file(&self.dir.join("index.lock"))?;
        let mut used = std::collections::HashSet::new();
        let mut reach = self.index()?.manifests().clone();
        while let Some(descriptor) = reach.pop() {
            if !used.insert(descriptor.digest().digest().to_string()) || !self.has(&descriptor) {
                continue;
            }
            if is_index(descriptor.media_type()) {
                reach
                    .extend(self.json::<ImageIndex>(&descriptor, "image index")?.manifests().iter().cloned());
            } else if is_manifest(descriptor.media_type()) {
                let manifest: ImageManifest = self.json(&descriptor, "image manifest")?;
                used.insert(manifest.config().digest().digest().to_string());
                used.extend(manifest.layers().iter().map(|layer| layer.digest().digest().to_string()));
            }
        }
        let blobs = self.dir.join("blobs/sha256");
        let (mut removed, mut bytes) = (0, 0);
        for entry in
            std::fs::read_dir(&blobs).map_err(|e| Error::new(format!("reading {}: {e}", blobs.display())))?
        {
            let entry = entry.map_err(|e| Error::new(format!("reading {}: {e}", blobs.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A blob being received (".HEX.partial.PID.N") is a pull's, not
            // garbage, while that pull runs.
            let receiver = name.strip_prefix('.').and_then(|n| n.split('.').nth(2)?.parse::<i32>().ok());
            let receiving =
                receiver.is_some_and(|pid| kernel::start_time(nix::unistd::Pid::from_raw(pid)).is_some());
            if receiving || used.contains(&name) {
                continue;
            }
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            kernel::unlink(&entry.path())?;
            removed += 1;
        }
        drop(lock);
        Ok((removed, bytes))
    }
    // ANCHOR_END: collect_garbage

    fn index(&self) -> Result<ImageIndex> {
        let file = self.dir.join("index.json");
        let text = std::fs::read(&file)
            .map_err(|e| Error::new(format!("{} cannot be read: {e}", file.display())))?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::new(format!("{} is not a valid image index: {e}", file.display())))
    }

    /// Opens the layout at `dir`, checking it is one.
    pub fn open(dir: &Path) -> Result<Layout> {
        let marker = dir.join("oci-layout");
        let text = std::fs::read_to_string(&marker).map_err(|e| {
            Error::new(format!("{} is not an OCI image layout (its oci-layout file: {e})", dir.display()))
        })?;
        let header: oci_spec::image::OciLayout = serde_json::from_str(&text)
            .map_err(|e| Error::new(format!("{} is not a valid oci-layout file: {e}", marker.display())))?;
        if header.image_layout_version() != "1.0.0" {
            return Err(Error::new(format!(
                "{} says imageLayoutVersion {:?}: podlab reads 1.0.0",
                marker.display(),
                header.image_layout_version()
            )));
        }
        Ok(Layout { dir: dir.to_path_buf() })
    }

    /// Where the blob a descriptor names is, once its digest is one we
    /// read (sha256, 64 hex digits: nothing that could name another path).
    fn blob_path(&self, descriptor: &Descriptor) -> Result<PathBuf> {
        let digest = descriptor.digest();
        let hex = digest.digest();
        let is_sha256 = digest.algorithm().to_string() == "sha256";
        if !is_sha256 || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(format!(
                "the digest {digest} is not a sha256 digest: podlab reads only those"
            )));
        }
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    /// Checks the blob a descriptor names: its size, then the SHA-256 of
    /// its bytes, read as a stream. Only then is it used.
    pub fn verify(&self, descriptor: &Descriptor) -> Result<PathBuf> {
        let path = self.blob_path(descriptor)?;
        let file = std::fs::File::open(&path).map_err(|e| {
            Error::new(format!("the blob {} is missing from the layout: {e}", descriptor.digest()))
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size != descriptor.size() {
            return Err(Error::new(format!(
                "the blob {} is {size} bytes, where its descriptor says {}: refusing it",
                descriptor.digest(),
                descriptor.size()
            )));
        }
        let mut hasher = Sha256::new();
        std::io::copy(&mut file.take(size), &mut hasher)
            .map_err(|e| Error::new(format!("reading the blob {}: {e}", descriptor.digest())))?;
        let found = format!("{:x}", hasher.finalize());
        if found != descriptor.digest().digest() {
            return Err(Error::new(format!(
                "the blob {} holds other bytes (their digest is sha256:{found}): refusing it",
                descriptor.digest()
            )));
        }
        Ok(path)
    }

    /// A JSON blob, checked, then parsed.
    fn json<T: serde::de::DeserializeOwned>(&self, descriptor: &Descriptor, what: &str) -> Result<T> {
        if descriptor.size() > JSON_LIMIT {
            return Err(Error::new(format!(
                "the {what} {} is {} bytes, more than the {JSON_LIMIT} podlab reads: refusing it",
                descriptor.digest(),
                descriptor.size()
            )));
        }
        let path = self.verify(descriptor)?;
        let text = std::fs::read(&path).map_err(|e| Error::new(format!("reading the {what}: {e}")))?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::new(format!("the {what} {} is not valid JSON for one: {e}", descriptor.digest()))
        })
    }

    /// The image this machine would run: the index's manifest for its
    /// platform (through an image index or a Docker manifest list), its
    /// config and its layers, each blob checked.
    pub fn image(&self) -> Result<Image> {
        self.image_named(None)
    }

    /// The image named `name` in the index (a layout that holds several, a
    /// store), or, with no name, the one the index holds for this platform.
    pub fn image_named(&self, name: Option<&str>) -> Result<Image> {
        let index_file = self.dir.join("index.json");
        let text = std::fs::read(&index_file)
            .map_err(|e| Error::new(format!("{} cannot be read: {e}", index_file.display())))?;
        let index: ImageIndex = serde_json::from_slice(&text)
            .map_err(|e| Error::new(format!("{} is not a valid image index: {e}", index_file.display())))?;
        let mut descriptor = match name {
            None => pick(index.manifests(), &index_file.display().to_string())?.clone(),
            Some(name) => index
                .manifests()
                .iter()
                .find(|m| {
                    m.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) == Some(name)
                })
                .ok_or_else(|| Error::new(format!("the store has no image named {name:?}: pull it first")))?
                .clone(),
        };
        // An index may point at another (a multi-platform image): follow it,
        // a few steps at most.
        for _ in 0..4 {
            if !is_index(descriptor.media_type()) {
                break;
            }
            let inner: ImageIndex = self.json(&descriptor, "image index")?;
            descriptor = pick(inner.manifests(), descriptor.digest().as_ref())?.clone();
        }
        if !is_manifest(descriptor.media_type()) {
            return Err(Error::new(format!(
                "{} is a {}, not an image manifest: podlab runs images",
                descriptor.digest(),
                descriptor.media_type()
            )));
        }
        let manifest: ImageManifest = self.json(&descriptor, "image manifest")?;
        let config: ImageConfiguration = self.json(manifest.config(), "image config")?;
        let mut layers = Vec::new();
        for layer in manifest.layers() {
            let compression = compression(layer.media_type())?;
            layers.push(Layer { descriptor: layer.clone(), compression });
        }
        if layers.len() != config.rootfs().diff_ids().len() {
            return Err(Error::new(format!(
                "the manifest lists {} layers and the config {} diff_ids: they must agree",
                layers.len(),
                config.rootfs().diff_ids().len()
            )));
        }
        Ok(Image { descriptor, manifest, config, layers })
    }

    /// A blob's bytes, once they are checked (a manifest to push).
    pub fn read(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let path = self.verify(descriptor)?;
        std::fs::read(&path).map_err(|e| Error::new(format!("reading {}: {e}", path.display())))
    }

    /// A layer's bytes, unpacked as its media type says, once its blob is
    /// checked.
    pub fn layer_reader(&self, layer: &Layer) -> Result<Box<dyn Read + Send>> {
        let path = self.verify(&layer.descriptor)?;
        let file =
            std::fs::File::open(&path).map_err(|e| Error::new(format!("opening {}: {e}", path.display())))?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        Ok(match layer.compression {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(ZstdFrames::Between(reader)),
        })
    }
}

/// The architecture this program runs on, as OCI names it.
pub(super) fn this_arch() -> Arch {
    match std::env::consts::ARCH {
        "aarch64" => Arch::ARM64,
        _ => Arch::Amd64,
    }
}

/// The manifest for this platform among `manifests`: one with no platform
/// when that is all there is, else the one for linux and this architecture.
pub(super) fn pick<'a>(manifests: &'a [Descriptor], whose: &str) -> Result<&'a Descriptor> {
    if let [only] = manifests {
        if only.platform().is_none() {
            return Ok(only);
        }
    }
    manifests
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == this_arch())
        })
        .ok_or_else(|| {
            Error::new(format!(
                "{whose} has no manifest for linux/{}: this machine cannot run any of its images",
                this_arch()
            ))
        })
}

fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex) || media_type.to_string() == DOCKER_MANIFEST_LIST
}

fn is_manifest(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest) || media_type.to_string() == DOCKER_MANIFEST
}

/// How a layer of this media type is packed; refused if it is not a layer.
fn compression(media_type: &MediaType) -> Result<Compression> {
    match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Ok(Compression::None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Ok(Compression::Gzip),
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Ok(Compression::Zstd),
        other if other.to_string() == DOCKER_LAYER_GZIP => Ok(Compression::Gzip),
        other if other.to_string() == DOCKER_LAYER => Ok(Compression::None),
        other => Err(Error::new(format!("{other} is not a layer's media type: refusing the image"))),
    }
}

/// A zstd stream's frames, decoded one after the other (a stream may hold
/// several, as a gzip stream may hold several members).
enum ZstdFrames<R: std::io::BufRead> {
    Between(R),
    InFrame(Box<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>),
    Failed,
}

impl<R: std::io::BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match std::mem::replace(self, ZstdFrames::Failed) {
                ZstdFrames::InFrame(mut frame) => {
                    let read = frame.read(buffer)?;
                    if read > 0 || buffer.is_empty() {
                        *self = ZstdFrames::InFrame(frame);
                        return Ok(read);
                    }
                    // This frame is done: on to the next, if the stream has one.
                    *self = ZstdFrames::Between(frame.into_inner());
                }
                ZstdFrames::Between(mut input) => {
                    if input.fill_buf()?.is_empty() {
                        *self = ZstdFrames::Between(input);
                        return Ok(0);
                    }
                    let frame =
                        ruzstd::decoding::StreamingDecoder::new(input).map_err(std::io::Error::other)?;
                    *self = ZstdFrames::InFrame(Box::new(frame));
                }
                ZstdFrames::Failed => return Err(std::io::Error::other("the zstd stream was damaged")),
            }
        }
    }
}
