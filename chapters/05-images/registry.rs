//! Pulling an image from a registry, as the OCI distribution specification
//! says: the manifest by name (with the media types we read in `Accept`),
//! a manifest for this platform if it is an index, then the config and the
//! layers by digest, each checked as it arrives and stored only if it is
//! what its digest says. The store is an OCI layout shared by every pull:
//! a blob it has is not fetched again.
//!
//! The HTTP client (ureq) sends requests; the protocol's steps are ours,
//! each request told as it is made: a 401's challenge answered with a
//! token (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`), a
//! redirect followed by hand (a blob is often served from elsewhere, and
//! the registry's token must not go with it).

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest as _, Sha256};

use super::layout::{self, Layout};
use crate::error::{Error, Result};
use crate::narrate;

/// The manifest media types a pull accepts, OCI's and Docker's.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The most redirects one request follows.
const MOST_REDIRECTS: usize = 5;

/// `[REGISTRY/]NAME[:TAG|@DIGEST]`, as `docker pull` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    /// A tag, or a digest (`sha256:...`).
    pub reference: String,
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(text: &str) -> Result<Reference> {
        let (rest, reference) = match text.rsplit_once('@') {
            Some((rest, digest)) => (rest, digest.to_string()),
            None => match text.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
                Some((rest, tag)) => (rest, tag.to_string()),
                None => (text, "latest".to_string()),
            },
        };
        // The first part names a registry if it looks like a host.
        let (registry, repository) = match rest.split_once('/') {
            Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => {
                (host.to_string(), path.to_string())
            }
            _ if rest.contains('/') => ("registry-1.docker.io".to_string(), rest.to_string()),
            _ => ("registry-1.docker.io".to_string(), format!("library/{rest}")),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        };
        if !valid(&repository) || repository.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(Error::new(format!(
                "{text:?} names no repository: use [REGISTRY/]NAME[:TAG|@DIGEST]"
            )));
        }
        if reference.is_empty() || reference.contains('/') {
            return Err(Error::new(format!("{text:?} has no tag or digest after its name")));
        }
        Ok(Reference { registry, repository, reference })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let separator = if self.reference.starts_with("sha256:") { '@' } else { ':' };
        write!(f, "{}/{}{separator}{}", self.registry, self.repository, self.reference)
    }
}

/// A client of one repository on one registry.
struct Client {
    agent: ureq::Agent,
    base: String,
    repository: String,
    /// `Authorization`'s value, once a token was fetched.
    authorization: Option<String>,
}

impl Client {
    fn new(reference: &Reference) -> Result<Client> {
        // podlab speaks plain HTTP, which only a registry on this machine
        // should be asked for: the course's registries are on 127.0.0.1.
        let host = reference.registry.split(':').next().unwrap_or_default();
        if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
            return Err(Error::new(format!(
                "{} is not on this machine, and podlab speaks plain HTTP only: pull from a registry on \
                 127.0.0.1 (the tests and the tour start one)",
                reference.registry
            )));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{}", reference.registry),
            repository: reference.repository.clone(),
            authorization: None,
        })
    }

    /// GET of `path` (under /v2/NAME/), told; a 401 answered once with a
    /// token, redirects followed by hand. The response, if it is 200.
    fn get(&mut self, path: &str, accept: Option<&str>) -> Result<ureq::http::Response<ureq::Body>> {
        let mut url = format!("{}/v2/{}/{path}", self.base, self.repository);
        let mut authorized_retry = false;
        let mut redirects = 0;
        loop {
            let same_host = url.starts_with(&self.base);
            let mut request = self.agent.get(&url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            // The token is the registry's: never sent to another host.
            if let (true, Some(value)) = (same_host, &self.authorization) {
                request = request.header("Authorization", value);
            }
            let response = request.call().map_err(|e| Error::new(format!("GET {url} failed: {e}")))?;
            let status = response.status().as_u16();
            narrate!("GET {} = {status}", shown(&url));
            match status {
                200 => return Ok(response),
                401 if !authorized_retry && same_host => {
                    let challenge = header(&response, "www-authenticate").ok_or_else(|| {
                        Error::new(format!(
                            "{url} answered 401 without saying how to authenticate (no WWW-Authenticate)"
                        ))
                    })?;
                    self.authorization = Some(self.token(&challenge)?);
                    authorized_retry = true;
                }
                301 | 302 | 303 | 307 | 308 => {
                    redirects += 1;
                    if redirects > MOST_REDIRECTS {
                        return Err(Error::new(format!(
                            "{url} redirects more than {MOST_REDIRECTS} times: a loop?"
                        )));
                    }
                    let location = header(&response, "location").ok_or_else(|| {
                        Error::new(format!("{url} redirects ({status}) without a Location"))
                    })?;
                    url = absolute(&url, &location);
                }
                404 => return Err(Error::new(format!("{url}: not found (404): is the name or tag right?"))),
                _ => return Err(Error::new(format!("{url} answered {status}"))),
            }
        }
    }

    /// Answers a Bearer challenge: asks its realm for a token for its
    /// service and scope, anonymously. The value for `Authorization`.
    fn token(&self, challenge: &str) -> Result<String> {
        let Some(parameters) = challenge.strip_prefix("Bearer ") else {
            return Err(Error::new(format!(
                "the registry wants {challenge:?}: podlab answers Bearer challenges only (so far anonymously)"
            )));
        };
        let field = |name: &str| -> Option<String> {
            parameters.split(',').find_map(|part| {
                let (key, value) = part.trim().split_once('=')?;
                (key == name).then(|| value.trim_matches('"').to_string())
            })
        };
        let realm =
            field("realm").ok_or_else(|| Error::new(format!("the challenge {challenge:?} has no realm")))?;
        let mut query = Vec::new();
        for name in ["service", "scope"] {
            if let Some(value) = field(name) {
                query.push(format!("{name}={}", value.replace(' ', "%20")));
            }
        }
        let url = if query.is_empty() { realm } else { format!("{realm}?{}", query.join("&")) };
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| Error::new(format!("GET {url} (for a token) failed: {e}")))?;
        let status = response.status().as_u16();
        narrate!("GET {} = {status} (a token)", shown(&url));
        if status != 200 {
            return Err(Error::new(format!("the token server {url} answered {status}")));
        }
        let body: serde_json::Value = serde_json::from_str(
            &response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .map_err(|e| Error::new(format!("{e}")))?,
        )
        .map_err(|e| Error::new(format!("the token server's answer is not JSON: {e}")))?;
        let token = body["token"].as_str().or(body["access_token"].as_str());
        let token = token.ok_or_else(|| Error::new("the token server's answer has no token"))?;
        Ok(format!("Bearer {token}"))
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from)
}

/// A Location, made absolute against the URL it answers.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin: String = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    format!("{origin}{location}")
}

/// A URL as narration shows it: without its query (tokens ride there).
fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The most a manifest may weigh when read whole.
const MANIFEST_LIMIT: u64 = 4 << 20;

// ANCHOR: pull
/// Pulls the image `reference` names into the store (an OCI layout, made
/// if missing), under that name. Returns how many blobs it fetched (0 for
/// an image the store has whole).
pub fn pull(reference: &Reference, store: &Path) -> Result<usize> {
    let layout = Layout::create(store)?;
    let mut client = Client::new(reference)?;
    let mut fetched = 0;
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
    for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
        if !layout.has(blob) {
            fetch_blob(&mut client, &layout, blob)?;
            fetched += 1;
        }
    }
    layout.put(&descriptor, &bytes)?;
    layout.tag(&descriptor, &reference.to_string())?;
    Ok(fetched)
}
// ANCHOR_END: pull

/// The manifest (or index) `reference` names: its descriptor, made from
/// what came (media type, digest of the bytes, size), and its bytes. Asked
/// by digest, the bytes must have it.
fn manifest(client: &mut Client, reference: &str) -> Result<(Descriptor, Vec<u8>)> {
    let mut response = client.get(&format!("manifests/{reference}"), Some(ACCEPT))?;
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

// ANCHOR: fetch_blob
/// Fetches a blob into the store: streamed to a temporary file while it is
/// hashed, and renamed to its digest only if the bytes have it and are as
/// many as the descriptor says. A blob cut short or changed on the way is
/// removed, never stored.
fn fetch_blob(client: &mut Client, layout: &Layout, blob: &Descriptor) -> Result<()> {
    let mut response = client.get(&format!("blobs/{}", blob.digest()), None)?;
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
