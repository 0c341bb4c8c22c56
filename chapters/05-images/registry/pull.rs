//! Pulling: the manifest by name (with the media types we read in
//! `Accept`), the manifest for this platform if it is an index, then the
//! config and the layers by digest, each checked as it arrives and stored
//! only if it is what its digest says. The store is an OCI layout shared by
//! every pull: a blob it has is not fetched again.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest as _, Sha256};

use super::progress::{Meter, Progress};
use super::{header, Client, Options, Payload, Reference};
use crate::error::{Error, Result};
use crate::images::layout::{self, Layout};
use crate::narrate;

/// The manifest media types a pull accepts, OCI's and Docker's.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The most a manifest may weigh when read whole.
const MANIFEST_LIMIT: u64 = 4 << 20;

// ANCHOR: pull
/// Pulls the image `reference` names into the store (an OCI layout, made
/// if missing), under that name. Returns how many blobs it fetched (0 for
/// an image the store has whole).
pub fn pull(reference: &Reference, store: &Path, options: &Options) -> Result<usize> {
    let layout = Layout::create(store)?;
    let mut client = Client::new(reference, options.credentials.clone())?;
    let (mut descriptor, mut bytes) = manifest(&mut client, &reference.reference)?;
    // An index (a multi-platform image): the manifest for this platform.
    if is_index(&descriptor) {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::new(format!("the image index of {reference} is not valid: {e}")))?;
        let chosen = layout::pick(index.manifests(), &reference.to_string())?.clone();
        (descriptor, bytes) = manifest(&mut client, chosen.digest().as_ref())?;
        descriptor.set_platform(chosen.platform().clone());
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::new(format!("the manifest of {reference} is not valid: {e}")))?;
    // The blobs the store lacks (a layer may be listed twice: fetched once).
    let mut missing: Vec<&Descriptor> = Vec::new();
    for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
        if !layout.has(blob) && !missing.iter().any(|m| m.digest() == blob.digest()) {
            missing.push(blob);
        }
    }
    fetch_blobs(&client, &layout, &missing, options.at_once, &Progress::new(options.show))?;
    // The manifest last: a store names only images it has whole.
    layout.put(&descriptor, &bytes)?;
    layout.tag(&descriptor, &reference.to_string())?;
    Ok(missing.len())
}
// ANCHOR_END: pull

/// The manifest (or index) `reference` names: its descriptor, made from
/// what came (media type, digest of the bytes, size), and its bytes. Asked
/// by digest, the bytes must have it.
fn manifest(client: &mut Client, reference: &str) -> Result<(Descriptor, Vec<u8>)> {
    let mut response =
        client.expect("GET", &format!("manifests/{reference}"), Some(ACCEPT), &Payload::Empty, &[200])?;
    let media_type = header(&response, "content-type").unwrap_or_default();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MANIFEST_LIMIT)
        .read_to_vec()
        .map_err(|e| Error::new(format!("reading the manifest {reference}: {e}")))?;
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    if reference.starts_with("sha256:") && digest != reference {
        return Err(Error::new(format!(
            "the registry answered {reference} with other bytes ({digest}): refusing them"
        )));
    }
    let digest: oci_spec::image::Digest = digest.parse().map_err(|e| Error::new(format!("a digest: {e}")))?;
    let descriptor = oci_spec::image::DescriptorBuilder::default()
        .media_type(MediaType::from(media_type.split(';').next().unwrap_or_default().trim()))
        .digest(digest)
        .size(bytes.len() as u64)
        .build()
        .map_err(|e| Error::new(format!("a descriptor: {e}")))?;
    Ok((descriptor, bytes))
}

fn is_index(descriptor: &Descriptor) -> bool {
    let media_type = descriptor.media_type().to_string();
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Fetches `blobs` into the store, `at_once` at a time (docker's default is
/// 3), each on a client of its own. After a failure no new blob is begun;
/// the first failure, in the manifest's order, is the one told.
fn fetch_blobs(
    client: &Client,
    layout: &Layout,
    blobs: &[&Descriptor],
    at_once: usize,
    progress: &Progress,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut outcomes: Vec<(usize, Result<()>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..at_once.clamp(1, blobs.len().max(1)))
            .map(|_| {
                let mut client = client.clone();
                let (next, failed) = (&next, &failed);
                scope.spawn(move || {
                    let mut outcomes = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let number = next.fetch_add(1, Ordering::Relaxed);
                        let Some(blob) = blobs.get(number) else { break };
                        let meter = progress.blob("fetched", blob);
                        let outcome = fetch_blob(&mut client, layout, blob, &meter);
                        failed.fetch_or(outcome.is_err(), Ordering::Relaxed);
                        meter.done(outcome.is_err().then_some("failed"));
                        outcomes.push((number, outcome));
                    }
                    outcomes
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("a fetching thread panicked")).collect()
    });
    outcomes.sort_by_key(|(number, _)| *number);
    outcomes.into_iter().try_for_each(|(_, outcome)| outcome)
}

// ANCHOR: fetch_blob
/// Fetches a blob into the store: streamed to a temporary file while it is
/// hashed, and renamed to its digest only if the bytes have it and are as
/// many as the descriptor says. A blob cut short or changed on the way is
/// removed, never stored.
fn fetch_blob(client: &mut Client, layout: &Layout, blob: &Descriptor, meter: &Meter) -> Result<()> {
    let mut response =
        client.expect("GET", &format!("blobs/{}", blob.digest()), None, &Payload::Empty, &[200])?;
    let (partial, file) = layout.partial(blob)?;
    let stored = (|| {
        let mut file = std::io::BufWriter::new(file);
        let mut hasher = Sha256::new();
        let mut reader = response.body_mut().with_config().limit(blob.size() + 1).reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let read = reader.read(&mut buffer).map_err(|e| {
                // The limit is one byte past the blob's size: past it, the
                // registry sends more than the blob.
                let longer = e.get_ref().and_then(|inner| inner.downcast_ref::<ureq::Error>());
                match longer {
                    Some(ureq::Error::BodyExceedsLimit(_)) => Error::new(format!(
                        "the blob {} came with more than the {} bytes it should be: refusing it",
                        blob.digest(),
                        blob.size()
                    )),
                    _ => Error::new(format!("receiving {}: {e}", blob.digest())),
                }
            })?;
            if read == 0 {
                break;
            }
            size += read as u64;
            meter.advance(read as u64);
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])
                .map_err(|e| Error::new(format!("storing {}: {e}", blob.digest())))?;
        }
        file.flush().map_err(|e| Error::new(format!("storing {}: {e}", blob.digest())))?;
        let found = format!("{:x}", hasher.finalize());
        if size != blob.size() || found != blob.digest().digest() {
            return Err(Error::new(format!(
                "the blob {} came as {size} bytes with digest sha256:{found}, not the {} bytes it should be: \
                 refusing it",
                blob.digest(),
                blob.size()
            )));
        }
        narrate!("checked {}: {size} bytes, which hash to it", blob.digest());
        layout.settle(&partial, blob)
    })();
    if stored.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    stored
}
// ANCHOR_END: fetch_blob
