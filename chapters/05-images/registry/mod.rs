//! A registry, as the OCI distribution specification has it: images by
//! name under `/v2/NAME/`, manifests by tag or digest, blobs by digest.
//! `pull` reads an image from one into a store; `push` writes one from a
//! store into it. Every request is told as it is made; a 401 is answered
//! (`auth`), a redirect followed by hand (a blob is often served from
//! elsewhere, and the registry's credentials must not go with it).
//!
//! The HTTP client (ureq) sends requests; the protocol's steps are ours.

mod auth;
pub mod local;
mod progress;
mod pull;
mod push;

pub use super::challenge::Challenge;
use super::challenge::{read_challenge, token_url};
pub use auth::Credentials;
pub use progress::Show;
pub use pull::pull;
pub use push::{push, Pushed};

use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::narrate;

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

/// What a pull or a push is given besides the image.
#[derive(Clone, Debug)]
pub struct Options {
    /// Who the user is, for a registry that asks.
    pub credentials: Option<Credentials>,
    /// How progress is shown.
    pub show: Show,
    /// How many blobs a pull fetches at once.
    pub at_once: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { credentials: None, show: Show::Nothing, at_once: 3 }
    }
}

/// What a request carries.
enum Payload<'a> {
    Empty,
    Bytes {
        bytes: &'a [u8],
        media_type: &'a str,
    },
    /// A blob in the store, uploaded as `meter` shows.
    Blob {
        path: &'a Path,
        size: u64,
        meter: &'a progress::Meter,
    },
}

/// A client of one repository on one registry.
#[derive(Clone)]
struct Client {
    agent: ureq::Agent,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    /// `Authorization`'s value, once the registry asked for one.
    authorization: Option<String>,
    /// Scopes a token is asked for beside the challenge's: pulling from
    /// the repository a blob is mounted from.
    more_scopes: Vec<String>,
}

impl Client {
    fn new(reference: &Reference, credentials: Option<Credentials>) -> Result<Client> {
        // podlab speaks plain HTTP, which only a registry on this machine
        // should be asked for: the course's registries are on 127.0.0.1.
        let host = reference.registry.rsplit_once(':').map_or(reference.registry.as_str(), |(host, _)| host);
        if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
            return Err(Error::new(format!(
                "{} is not on this machine, and podlab speaks plain HTTP only: use a registry on \
                 127.0.0.1 (the tests and the tour start one)",
                reference.registry
            )));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(300)))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{}", reference.registry),
            repository: reference.repository.clone(),
            credentials,
            authorization: None,
            more_scopes: Vec::new(),
        })
    }

    /// `path` under `/v2/NAME/`, or a URL the registry gave (an upload's).
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/v2/{}/{path}", self.base, self.repository)
        }
    }

    // ANCHOR: send
    /// One request, told as it is made. A 401 is answered once, as its
    /// challenge asks; GET and HEAD follow redirects, without the
    /// registry's credentials if they lead to another host. The response,
    /// whatever its status otherwise.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        accept: Option<&str>,
        payload: &Payload,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut url = self.url(path);
        let mut answered_challenge = false;
        let mut redirects = 0;
        loop {
            let same_host = url.starts_with(&self.base);
            let mut request = ureq::http::Request::builder().method(method).uri(&url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let (true, Some(value)) = (same_host, &self.authorization) {
                request = request.header("Authorization", value);
            }
            let body = match payload {
                Payload::Empty => {
                    request = request.header("Content-Length", "0");
                    ureq::SendBody::none()
                }
                Payload::Bytes { bytes, media_type } => {
                    request =
                        request.header("Content-Type", *media_type).header("Content-Length", bytes.len());
                    ureq::SendBody::from_owned_reader(std::io::Cursor::new(bytes.to_vec()))
                }
                Payload::Blob { path, size, meter } => {
                    let file = std::fs::File::open(path)
                        .map_err(|e| Error::new(format!("{} cannot be read: {e}", path.display())))?;
                    request = request
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Length", *size);
                    let meter = (*meter).clone();
                    ureq::SendBody::from_owned_reader(progress::Metered { inner: file, meter })
                }
            };
            let request = request.body(body).map_err(|e| Error::new(format!("{method} {url}: {e}")))?;
            let response = self
                .agent
                .run(request)
                .map_err(|e| Error::new(format!("{method} {} failed: {e}", shown(&url))))?;
            let status = response.status().as_u16();
            // A challenge and a redirect are told with what they ask.
            let told = match status {
                401 => header(&response, "www-authenticate").map(|c| format!(", WWW-Authenticate: {c}")),
                301..=308 => header(&response, "location").map(|l| format!(", Location: {}", shown(&l))),
                _ => None,
            };
            narrate!("{method} {} = {status}{}", shown(&url), told.unwrap_or_default());
            match status {
                401 if !answered_challenge && same_host => {
                    let challenge = header(&response, "www-authenticate").ok_or_else(|| {
                        Error::new(format!(
                            "{} answered 401 without saying how to authenticate (no WWW-Authenticate)",
                            shown(&url)
                        ))
                    })?;
                    self.answer(&read_challenge(&challenge)?)?;
                    answered_challenge = true;
                }
                301 | 302 | 303 | 307 | 308 if method == "GET" || method == "HEAD" => {
                    redirects += 1;
                    if redirects > MOST_REDIRECTS {
                        return Err(Error::new(format!(
                            "{} redirects more than {MOST_REDIRECTS} times: a loop?",
                            shown(&url)
                        )));
                    }
                    let location = header(&response, "location").ok_or_else(|| {
                        Error::new(format!("{} redirects ({status}) without a Location", shown(&url)))
                    })?;
                    url = absolute(&url, &location);
                }
                _ => return Ok(response),
            }
        }
    }
    // ANCHOR_END: send

    /// As [`send`](Client::send), and a status other than `expected` is
    /// told as the registry's refusal.
    fn expect(
        &mut self,
        method: &str,
        path: &str,
        accept: Option<&str>,
        payload: &Payload,
        expected: &[u16],
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let response = self.send(method, path, accept, payload)?;
        if expected.contains(&response.status().as_u16()) {
            return Ok(response);
        }
        Err(self.refusal(method, &self.url(path), response))
    }

    /// A status we did not want, in a sentence: the registry's own error
    /// codes (`{"errors": [{"code", "message"}]}`) and what to do.
    fn refusal(&self, method: &str, url: &str, mut response: ureq::http::Response<ureq::Body>) -> Error {
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
        let errors: Vec<String> = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|e| {
                format!("{}: {}", e["code"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or(""))
            })
            .collect();
        let said = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
        // A registry says in its challenge why it refused a token.
        let challenge = header(&response, "www-authenticate").unwrap_or_default();
        let why = challenge.split("error=\"").nth(1).and_then(|rest| rest.split('"').next());
        let said = match why {
            Some(why) => format!("{said} (the token: {why})"),
            None => said,
        };
        let what_to_do = match status {
            401 if why.is_some() => ": the token server gave a token that does not grant what was asked",
            401 if self.credentials.is_some() => ": are the user name and password right?",
            401 => ": give a user name and password (--user USER:PASSWORD, or a Docker config.json)",
            403 => ": the user may not do this here",
            404 => ": is the name or tag right?",
            _ => "",
        };
        Error::new(format!("{method} {} answered {status}{said}{what_to_do}", shown(url)))
    }

    /// Answers a challenge: Basic with the credentials; Bearer with a token
    /// from its realm, for its scope (and those of blobs mounted), asked
    /// for with the credentials if there are any, anonymously if not.
    fn answer(&mut self, challenge: &Challenge) -> Result<()> {
        let (realm, service, scope) = match challenge {
            Challenge::Basic => {
                let credentials = self.credentials.as_ref().ok_or_else(|| {
                    Error::new(format!(
                        "{} asks for a user name and password: give them with --user USER:PASSWORD or in a \
                         Docker config.json",
                        self.base
                    ))
                })?;
                self.authorization = Some(credentials.basic());
                return Ok(());
            }
            Challenge::Bearer { realm, service, scope } => (realm, service, scope),
        };
        // A challenge may name several scopes, space-separated.
        let mut scopes: Vec<&str> = scope.iter().flat_map(|s| s.split_whitespace()).collect();
        for more in &self.more_scopes {
            if !scopes.contains(&more.as_str()) {
                scopes.push(more);
            }
        }
        let mut url = token_url(realm, service.as_deref(), &scopes);
        if let Some(credentials) = &self.credentials {
            let user =
                percent_encoding::utf8_percent_encode(&credentials.user, percent_encoding::NON_ALPHANUMERIC);
            url += &format!("{}account={user}", if url.contains('?') { '&' } else { '?' });
        }
        let mut request = self.agent.get(&url);
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic());
        }
        let mut response = request
            .call()
            .map_err(|e| Error::new(format!("GET {} (for a token) failed: {e}", shown(&url))))?;
        let status = response.status().as_u16();
        narrate!(
            "GET {} = {status} (a token{})",
            shown(&url),
            if self.credentials.is_some() { ", as the user" } else { "" }
        );
        if status != 200 {
            let hint = if status == 401 { ": are the user name and password right?" } else { "" };
            return Err(Error::new(format!("the token server {} answered {status}{hint}", shown(&url))));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| Error::new(format!("reading the token server's answer: {e}")))?;
        let body: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::new(format!("the token server's answer is not JSON: {e}")))?;
        let token = body["token"].as_str().or(body["access_token"].as_str());
        let token = token.ok_or_else(|| Error::new("the token server's answer has no token"))?;
        self.authorization = Some(format!("Bearer {token}"));
        Ok(())
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

/// A URL as narration shows it: percent-decoded, and without an upload's
/// state (a long opaque value the registry hands back and forth).
fn shown(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else { return url.to_string() };
    let kept: Vec<&str> = query.split('&').filter(|pair| !pair.starts_with("_state=")).collect();
    let url = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
    percent_encoding::percent_decode_str(&url).decode_utf8_lossy().into_owned()
}
