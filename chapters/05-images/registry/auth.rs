//! Who the user is, for a registry that asks (its challenge is read in
//! `challenge.rs`): a user name and password, from the command line or
//! from a Docker-style `config.json`, whose `auths` map a registry to
//! `base64(user:password)`. Sent as Basic credentials, to the registry
//! itself or to its token server.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};

/// A user name and password for a registry.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A password is never printed, not even in a test's failure.
        write!(f, "Credentials {{ user: {:?} }}", self.user)
    }
}

impl Credentials {
    /// `USER:PASSWORD`, as `--user` takes it.
    pub fn parse(text: &str) -> Result<Credentials> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Ok(Credentials { user: user.to_string(), password: password.to_string() })
            }
            _ => {
                Err(Error::new("--user takes USER:PASSWORD, the user name and password separated by a colon"))
            }
        }
    }

    /// The credentials a Docker-style `config.json` keeps for `registry`
    /// (`auths` → the registry's address → `auth`, base64 of
    /// `user:password`, or `username` and `password`), if it has any.
    pub fn from_docker_config(file: &Path, registry: &str) -> Result<Option<Credentials>> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::new(format!("{} cannot be read: {e}", file.display()))),
        };
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::new(format!("{} is not valid JSON: {e}", file.display())))?;
        // Docker writes a registry as a host, or as a URL of it.
        let entry = config["auths"].as_object().and_then(|auths| {
            auths.iter().find_map(|(key, value)| {
                let host = key.trim_start_matches("http://").trim_start_matches("https://");
                (host.split('/').next() == Some(registry)).then_some(value)
            })
        });
        let helper = config["credHelpers"][registry].as_str().or(config["credsStore"].as_str());
        let Some(entry) = entry else {
            return match helper {
                Some(helper) => Err(Error::new(format!(
                    "{} keeps the credentials for {registry} in the helper docker-credential-{helper}, which \
                     podlab does not call: give them with --user USER:PASSWORD",
                    file.display()
                ))),
                None => Ok(None),
            };
        };
        if let Some(encoded) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    Error::new(format!(
                        "the auth of {registry} in {} is not base64 of USER:PASSWORD",
                        file.display()
                    ))
                })?;
            return Credentials::parse(&decoded).map(Some).map_err(|_| {
                Error::new(format!("the auth of {registry} in {} has no USER:PASSWORD in it", file.display()))
            });
        }
        match (entry["username"].as_str(), entry["password"].as_str()) {
            (Some(user), Some(password)) => {
                Ok(Some(Credentials { user: user.to_string(), password: password.to_string() }))
            }
            _ => Ok(None),
        }
    }

    /// Where Docker keeps its `config.json`: `$DOCKER_CONFIG`, or `~/.docker`.
    pub fn docker_config_file() -> Option<PathBuf> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
        };
        Some(dir.join("config.json"))
    }

    /// `Authorization`'s value for Basic authentication.
    pub(super) fn basic(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_credentials_are_found_by_registry() {
        let dir = std::env::temp_dir().join(format!("podlab-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        let encoded = base64::engine::general_purpose::STANDARD.encode("ann:s3cret:with:colons");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths": {{"http://127.0.0.1:5000/v2/": {{"auth": "{encoded}"}},
                   "127.0.0.1:6000": {{"username": "bob", "password": "pw"}}}},
                   "credHelpers": {{"127.0.0.1:7000": "pass"}}}}"#
            ),
        )
        .unwrap();
        let found = Credentials::from_docker_config(&file, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!((found.user.as_str(), found.password.as_str()), ("ann", "s3cret:with:colons"));
        assert_eq!(Credentials::from_docker_config(&file, "127.0.0.1:6000").unwrap().unwrap().user, "bob");
        assert!(Credentials::from_docker_config(&file, "127.0.0.1:8000").unwrap().is_none());
        let said = Credentials::from_docker_config(&file, "127.0.0.1:7000").unwrap_err().to_string();
        assert!(said.contains("docker-credential-pass"), "{said}");
        assert!(Credentials::from_docker_config(&dir.join("none.json"), "x").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
