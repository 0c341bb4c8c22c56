//! Pushing: the layers and the config first, each only if the registry
//! lacks it (`HEAD`), mounted from another repository of the registry that
//! has it (no bytes sent), or uploaded (`POST` to open an upload, `PUT` of
//! the bytes with their digest, which the registry checks); the manifest
//! last, so the registry never names an image it does not have whole.

use std::path::Path;

use oci_spec::image::Descriptor;

use super::progress::Progress;
use super::{absolute, header, shown, Client, Options, Payload, Reference};
use crate::error::{Error, Result};
use crate::images::layout::Layout;

/// What a push did with the image's blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Sent, byte by byte.
    pub uploaded: usize,
    /// Taken from another repository of the registry: no bytes sent.
    pub mounted: usize,
    /// There already.
    pub present: usize,
}

// ANCHOR: push
/// Pushes the image the store names `name` to the registry as `to`. The
/// store then names it `to` too: a later push to another repository of
/// that registry mounts its blobs from there.
pub fn push(store: &Path, name: &str, to: &Reference, options: &Options) -> Result<Pushed> {
    let layout = Layout::open(store)?;
    let image = layout.image_named(Some(name))?;
    let manifest = layout.read(&image.descriptor)?;
    let mut client = Client::new(to, options.credentials.clone())?;
    let progress = Progress::new(options.show);
    let mut pushed = Pushed::default();
    let mut blobs: Vec<&Descriptor> = Vec::new();
    for blob in image.manifest.layers().iter().chain([image.manifest.config()]) {
        if !blobs.iter().any(|b| b.digest() == blob.digest()) {
            blobs.push(blob);
        }
    }
    for blob in blobs {
        let digest = blob.digest().to_string();
        let there = client.expect("HEAD", &format!("blobs/{digest}"), None, &Payload::Empty, &[200, 404])?;
        if there.status() == 200 {
            pushed.present += 1;
            continue;
        }
        let meter = progress.blob("uploaded", blob);
        // A repository of this registry the store knows has the blob: the
        // registry links it from there (the token must let us pull it).
        let opened = match mount_source(&layout, to, blob)? {
            Some(from) => {
                client.more_scopes = vec![format!("repository:{from}:pull")];
                let path = format!("blobs/uploads/?mount={digest}&from={from}");
                client.expect("POST", &path, None, &Payload::Empty, &[201, 202])?
            }
            None => client.expect("POST", "blobs/uploads/", None, &Payload::Empty, &[202])?,
        };
        if opened.status() == 201 {
            meter.done(Some("mounted"));
            pushed.mounted += 1;
            continue;
        }
        let location = header(&opened, "location")
            .ok_or_else(|| Error::new("the registry opened an upload without saying where (no Location)"))?;
        let location = absolute(&client.url("blobs/uploads/"), &location);
        let separator = if location.contains('?') { '&' } else { '?' };
        let encoded = percent_encoding::utf8_percent_encode(&digest, percent_encoding::NON_ALPHANUMERIC);
        let bytes = Payload::Blob { path: &layout.verify(blob)?, size: blob.size(), meter: &meter };
        client.expect("PUT", &format!("{location}{separator}digest={encoded}"), None, &bytes, &[201])?;
        meter.done(None);
        pushed.uploaded += 1;
    }
    let media_type = image.descriptor.media_type().to_string();
    let payload = Payload::Bytes { bytes: &manifest, media_type: &media_type };
    let put = client.expect("PUT", &format!("manifests/{}", to.reference), None, &payload, &[201])?;
    // The registry names what it stored by its digest: it must be ours.
    if let Some(digest) = header(&put, "docker-content-digest") {
        if digest != image.descriptor.digest().to_string() {
            return Err(Error::new(format!(
                "{} stored the manifest as {digest}, not as {}: it changed it",
                shown(&client.url("manifests/")),
                image.descriptor.digest()
            )));
        }
    }
    layout.tag(&image.descriptor, &to.to_string())?;
    Ok(pushed)
}
// ANCHOR_END: push

/// Another repository of `to`'s registry that, as the store's names say,
/// has `blob`.
fn mount_source(layout: &Layout, to: &Reference, blob: &Descriptor) -> Result<Option<String>> {
    for (name, _) in layout.names()? {
        let Ok(known) = name.parse::<Reference>() else { continue };
        if known.registry != to.registry || known.repository == to.repository {
            continue;
        }
        let image = layout.image_named(Some(&name))?;
        let has = |d: &Descriptor| d.digest() == blob.digest();
        if has(image.manifest.config()) || image.manifest.layers().iter().any(has) {
            return Ok(Some(known.repository));
        }
    }
    Ok(None)
}
