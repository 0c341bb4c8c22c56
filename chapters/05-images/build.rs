//! A small image made here, offline, from Debian's busybox-static: what the
//! tests, the tour and the lab unpack. Three layers, made to exercise what
//! an unpacker must get right:
//!
//! 1. (gzip) busybox and a few of its commands as links, /etc's users and a
//!    motd, /srv/old, a setuid file, a hard link, /tmp with its sticky bit;
//! 2. (plain tar) a whiteout that deletes layer 1's /etc/motd, and a new
//!    /etc/hostname;
//! 3. (gzip) an opaque /srv: layer 1's /srv/old is gone, /srv/new is there.

use std::io::Write;
use std::path::Path;

use oci_spec::image::{
    DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::kernel;

/// Every entry's time: the image is the same bytes, whenever it is made.
const MTIME: u64 = 1_700_000_000;
/// The commands layer 1 links to busybox.
const COMMANDS: [&str; 12] =
    ["sh", "ls", "cat", "echo", "id", "stat", "sleep", "true", "uname", "mkdir", "rm", "touch"];
/// The tag the image is known by in the layout (umoci's `--image DIR:TAG`).
pub const TAG: &str = "demo";

/// One entry of a layer to make.
pub enum Item {
    Dir(&'static str, u32),
    File(&'static str, u32, Vec<u8>),
    Symlink(String, &'static str),
    Hardlink(&'static str, &'static str),
}

/// Makes the image as an OCI layout in `dir` (which must not exist yet),
/// tagged [`TAG`].
pub fn demo_image(dir: &Path) -> Result<()> {
    let busybox = std::fs::read(crate::chroot::BUSYBOX).map_err(|e| {
        Error::new(format!(
            "cannot read {}: {e}; install busybox-static (apt-get install busybox-static)",
            crate::chroot::BUSYBOX
        ))
    })?;
    kernel::mkdir(dir, 0o755)?;
    let mut first = vec![
        Item::Dir("bin", 0o755),
        Item::File("bin/busybox", 0o755, busybox),
        Item::Hardlink("bin/busybox.hardlink", "bin/busybox"),
        Item::Dir("etc", 0o755),
        Item::File(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
        ),
        Item::File("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n".to_vec()),
        Item::File("etc/motd", 0o644, b"layer 1's motd, which layer 2 deletes\n".to_vec()),
        Item::Dir("srv", 0o755),
        Item::Dir("srv/old", 0o755),
        Item::File("srv/old/data", 0o640, b"layer 1's data, which layer 3's opaque /srv hides\n".to_vec()),
        Item::File("bin/setuid-demo", 0o4755, b"#!/bin/sh\nid\n".to_vec()),
        Item::Dir("tmp", 0o1777),
        Item::Dir("root", 0o700),
    ];
    for command in COMMANDS {
        first.push(Item::Symlink(format!("bin/{command}"), "busybox"));
    }
    let second = vec![
        Item::Dir("etc", 0o755),
        Item::File("etc/.wh.motd", 0o644, Vec::new()),
        Item::File("etc/hostname", 0o644, b"podlab-image\n".to_vec()),
    ];
    // The opaque mark after the layer's own entries in its directory, as
    // tars may give it: it hides only what lower layers put there.
    let third = vec![
        Item::Dir("srv", 0o755),
        Item::Dir("srv/new", 0o755),
        Item::File("srv/new/data", 0o644, b"layer 3's data\n".to_vec()),
        Item::File("srv/.wh..wh..opq", 0o644, Vec::new()),
    ];
    let mut layers = Vec::new();
    for (items, gzip) in [(first, true), (second, false), (third, true)] {
        layers.push(LayerBlob::of_tar(layer_tar(&items)?, gzip)?);
    }
    write_layout(dir, &layers)
}

/// A hostile image: one layer whose one entry, `../../../../escaped`,
/// climbs out of the root. What an unpacker must refuse.
pub fn escaping_image(dir: &Path) -> Result<()> {
    kernel::mkdir(dir, 0o755)?;
    let mut header = tar::Header::new_old();
    let name = b"../../../../escaped";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    let data = b"written outside the root\n";
    header.set_size(data.len() as u64);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    write_layout(dir, &[LayerBlob::of_tar(tar, false)?])
}

/// A layer as it goes in a layout: its bytes (packed), their media type,
/// and the digest of the tar inside (the config's diff_id).
pub struct LayerBlob {
    pub bytes: Vec<u8>,
    pub media_type: MediaType,
    pub diff_id: String,
}

impl LayerBlob {
    /// A layer from a tar, gzip-compressed or not.
    pub fn of_tar(tar: Vec<u8>, gzip: bool) -> Result<LayerBlob> {
        let diff_id = format!("sha256:{}", sha256(&tar));
        if !gzip {
            return Ok(LayerBlob { bytes: tar, media_type: MediaType::ImageLayer, diff_id });
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&tar).map_err(io("compressing a layer"))?;
        let bytes = encoder.finish().map_err(io("compressing a layer"))?;
        Ok(LayerBlob { bytes, media_type: MediaType::ImageLayerGzip, diff_id })
    }
}

/// Writes an OCI layout of one image, tagged [`TAG`], for this machine's
/// platform, into `dir` (made if missing): its layers, a config running
/// /bin/sh, a manifest, the index.
pub fn write_layout(dir: &Path, layers: &[LayerBlob]) -> Result<()> {
    kernel::mkdir_all(&dir.join("blobs/sha256"))?;
    let mut descriptors = Vec::new();
    for layer in layers {
        descriptors.push(put_blob(dir, &layer.bytes, layer.media_type.clone())?);
    }
    let diff_ids: Vec<String> = layers.iter().map(|layer| layer.diff_id.clone()).collect();
    let platform = PlatformBuilder::default()
        .architecture(super::layout::this_arch())
        .os(Os::Linux)
        .build()
        .map_err(built)?;
    let settings = oci_spec::image::ConfigBuilder::default()
        .env(vec!["PATH=/bin".to_string()])
        .cmd(vec!["/bin/sh".to_string()])
        .working_dir("/".to_string())
        .build()
        .map_err(built)?;
    let config = ImageConfigurationBuilder::default()
        .architecture(super::layout::this_arch())
        .os(Os::Linux)
        .config(settings)
        .rootfs(RootFsBuilder::default().typ("layers").diff_ids(diff_ids).build().map_err(built)?)
        .build()
        .map_err(built)?;
    let config = put_blob(dir, config.to_string().map_err(built)?.as_bytes(), MediaType::ImageConfig)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(descriptors)
        .build()
        .map_err(built)?;
    let mut manifest =
        put_blob(dir, manifest.to_string().map_err(built)?.as_bytes(), MediaType::ImageManifest)?;
    manifest.set_platform(Some(platform));
    let name =
        std::collections::HashMap::from([("org.opencontainers.image.ref.name".to_string(), TAG.to_string())]);
    manifest.set_annotations(Some(name));
    let index =
        ImageIndexBuilder::default().schema_version(2u32).manifests(vec![manifest]).build().map_err(built)?;
    kernel::write_file(&dir.join("index.json"), &index.to_string().map_err(built)?)?;
    kernel::write_file(&dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
}

/// A layer's tar, its entries owned by root, at [`MTIME`].
pub fn layer_tar(items: &[Item]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        let added = match item {
            Item::Dir(path, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())
            }
            Item::File(path, mode, bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, path, bytes.as_slice())
            }
            Item::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path, target)
            }
            Item::Hardlink(path, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_link(&mut header, path, target)
            }
        };
        added.map_err(io("making a layer"))?;
    }
    tar.into_inner().map_err(io("making a layer"))
}

/// Stores `bytes` as a blob named by their digest; its descriptor.
pub fn put_blob(dir: &Path, bytes: &[u8], media_type: MediaType) -> Result<oci_spec::image::Descriptor> {
    let hex = sha256(bytes);
    kernel::write_bytes(&dir.join("blobs/sha256").join(&hex), bytes)?;
    let digest: oci_spec::image::Digest =
        format!("sha256:{hex}").parse().map_err(|e| Error::new(format!("a digest: {e}")))?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(bytes.len() as u64)
        .build()
        .map_err(built)
}

/// The SHA-256 of `bytes`, as lowercase hex: how blobs are named.
pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn built(error: impl std::fmt::Display) -> Error {
    Error::new(format!("making the image's JSON: {error}"))
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::new(format!("{what}: {e}"))
}
