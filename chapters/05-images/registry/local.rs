//! A registry on this machine, for the course's runs: Debian's
//! docker-registry on 127.0.0.1 with its storage in a directory of ours,
//! and beside it, when it wants tokens, a token server of ours.
//!
//! A token server is the other half of the dance the client does: given
//! `GET /token?service=S&scope=repository:NAME:ACTIONS` (and a user's
//! Basic credentials, if it wants a user), it answers with a JSON web token
//! that grants those actions, for that service, for ten minutes, signed
//! (RS256) by a key whose self-signed certificate the registry trusts. The
//! registry checks the signature, the service and the grants; it never
//! talks to the token server itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;

use super::Credentials;
use crate::error::{Error, Result};
use crate::narrate;

/// Who a local registry lets in.
pub enum Auth<'a> {
    Anonymous,
    /// Whoever brings a token from this token server.
    Tokens(&'a TokenServer),
    /// Basic authentication against an htpasswd file (bcrypt).
    Htpasswd(&'a Path),
}

/// docker-registry, on 127.0.0.1; stopped when dropped.
pub struct LocalRegistry {
    /// `127.0.0.1:PORT`.
    pub address: String,
    process: Child,
}

impl LocalRegistry {
    /// Starts docker-registry with its storage and configuration in `dir`,
    /// and waits until it listens.
    pub fn start(dir: &Path, auth: Auth) -> Result<LocalRegistry> {
        let address = format!("127.0.0.1:{}", free_port()?);
        let auth = match auth {
            Auth::Anonymous => String::new(),
            Auth::Tokens(tokens) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                tokens.realm,
                tokens.certificate.display()
            ),
            Auth::Htpasswd(file) => {
                format!("auth:\n  htpasswd:\n    realm: podlab\n    path: {}\n", file.display())
            }
        };
        let config = dir.join("registry.yml");
        let storage = dir.join("registry");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {address}\n{auth}",
                storage.display()
            ),
        )
        .map_err(|e| Error::new(format!("writing {}: {e}", config.display())))?;
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::new(format!(
                    "docker-registry could not be started ({e}): apt-get install docker-registry"
                ))
            })?;
        let registry = LocalRegistry { address, process };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(Error::new(format!(
                    "docker-registry did not listen on {} within 10 s",
                    registry.address
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        narrate!("started docker-registry on {}, its storage in {}", registry.address, storage.display());
        Ok(registry)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The service a local registry names itself in its challenges, and the
/// issuer it trusts tokens from.
const SERVICE: &str = "podlab-registry";
const ISSUER: &str = "podlab-token";

/// A token server on 127.0.0.1, serving from a thread of this process;
/// stopped when dropped.
pub struct TokenServer {
    /// Its URL, which the registry names in its challenges.
    pub realm: String,
    /// The certificate the registry trusts tokens by.
    pub certificate: PathBuf,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    /// Makes a key and its certificate in `dir` (openssl), and serves
    /// tokens: to anyone, or with `user`, only to that user.
    pub fn start(dir: &Path, user: Option<Credentials>) -> Result<TokenServer> {
        let (key, certificate) = (dir.join("token.key"), dir.join("token.crt"));
        let made = [("-keyout", key.as_path()), ("-out", certificate.as_path())];
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=podlab-token"],
            &made,
            None,
        )?;
        let der = openssl(&["x509", "-outform", "DER"], &[("-in", &certificate)], None)?;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| Error::new(format!("the token server cannot listen: {e}")))?;
        let realm = format!("http://{}/token", server.server_addr());
        let server = Arc::new(server);
        let serving = server.clone();
        let wanted = user.map(|user| user.basic());
        let thread = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let given = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                let answer = match (&wanted, given) {
                    (Some(wanted), given) if given.as_ref() != Some(wanted) => {
                        tiny_http::Response::from_string("who are you?").with_status_code(401)
                    }
                    _ => match token(&key, &x5c, request.url()) {
                        Ok(token) => tiny_http::Response::from_string(format!(r#"{{"token": "{token}"}}"#)),
                        Err(e) => tiny_http::Response::from_string(e.to_string()).with_status_code(500),
                    },
                };
                let _ = request.respond(answer);
            }
        });
        Ok(TokenServer { realm, certificate, server, thread: Some(thread) })
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A JSON web token granting what `url`'s scopes ask, for its service.
fn token(key: &Path, x5c: &str, url: &str) -> Result<String> {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let decoded = |value: &str| percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
    let (mut service, mut access) = (String::new(), Vec::new());
    for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        match name {
            "service" => service = decoded(value),
            "scope" => {
                // TYPE:NAME:ACTIONS; a name may hold a colon (a port).
                let scope = decoded(value);
                let Some((kind, rest)) = scope.split_once(':') else { continue };
                let Some((name, actions)) = rest.rsplit_once(':') else { continue };
                let actions: Vec<&str> = actions.split(',').collect();
                access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
            }
            _ => {}
        }
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "", "aud": service, "exp": now + 600, "nbf": now - 10, "iat": now,
        "jti": format!("{now}"), "access": access,
    });
    let signed = format!("{}.{}", encoded.encode(header.to_string()), encoded.encode(claims.to_string()));
    let signature = openssl(&["dgst", "-sha256"], &[("-sign", key)], Some(signed.as_bytes()))?;
    Ok(format!("{signed}.{}", encoded.encode(signature)))
}

/// Runs openssl with `args` and `paths`, `input` on its stdin; what it
/// wrote on stdout.
fn openssl(args: &[&str], paths: &[(&str, &Path)], input: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut command = Command::new("openssl");
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let started = |e: std::io::Error| {
        Error::new(format!("openssl could not be started ({e}): apt-get install openssl"))
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(started)?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        std::io::Write::write_all(&mut stdin, input).map_err(started)?;
    }
    let output = child.wait_with_output().map_err(started)?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(output.stdout)
}

/// A port no one listens on now.
fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| Error::new(format!("no free port on 127.0.0.1: {e}")))
}
