//! A registry's challenge, and the request that answers it. A registry that
//! wants to know who asks answers 401 with a `WWW-Authenticate` header
//! (RFC 7235): a scheme, then `key="value"` parameters, the values quoted
//! and free to hold commas. `Bearer realm="...",service="...",scope="..."`
//! sends the client to a token server (the realm) for a token that grants
//! the scope: its URL carries the service and each scope as query
//! parameters, percent-encoded, as docker's token protocol says.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::error::{Error, Result};

/// What a 401's `WWW-Authenticate` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    /// A user name and password with every request.
    Basic,
    /// A token from `realm`, for `service`, granting `scope`.
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

// ANCHOR: read_challenge
/// Reads `Basic realm="x"` or `Bearer realm="x",service="y",scope="z"`.
/// Values are quoted and may hold commas (`scope="repository:a:pull,push"`)
/// and escaped quotes (`\"`); the scheme and the keys are case-insensitive.
pub fn read_challenge(header: &str) -> Result<Challenge> {
    let (scheme, parameters) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let parameters = parameters_of(parameters);
    let field = |name: &str| {
        parameters.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    };
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => Ok(Challenge::Bearer {
            realm: field("realm").filter(|realm| !realm.is_empty()).ok_or_else(|| {
                Error::new(format!("the challenge {header:?} names no realm to ask for a token"))
            })?,
            service: field("service"),
            scope: field("scope"),
        }),
        _ => Err(Error::new(format!("the registry wants {header:?}: podlab answers Basic and Bearer only"))),
    }
}

/// `key="value", key=value` pairs; a quoted value may hold commas and `\"`.
fn parameters_of(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            return pairs;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            }
        }
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
}
// ANCHOR_END: read_challenge

// ANCHOR: token_url
/// The URL that asks the token server at `realm` for a token: the service
/// and each scope as query parameters (`?service=...&scope=...&scope=...`),
/// each value percent-encoded.
pub fn token_url(realm: &str, service: Option<&str>, scopes: &[&str]) -> String {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = service {
        query.push(("service", service));
    }
    for scope in scopes {
        query.push(("scope", scope));
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(key, value)| format!("{key}={}", utf8_percent_encode(value, NON_ALPHANUMERIC)))
        .collect();
    if pairs.is_empty() {
        realm.to_string()
    } else {
        format!("{realm}?{}", pairs.join("&"))
    }
}
// ANCHOR_END: token_url

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_with_commas_in_their_values() {
        let challenge = read_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="registry",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            challenge,
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("registry".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(read_challenge(r#"Basic realm="Registry Realm""#).unwrap(), Challenge::Basic);
        assert!(read_challenge(r#"Bearer service="x""#).unwrap_err().to_string().contains("no realm"));
        assert!(read_challenge("Negotiate").unwrap_err().to_string().contains("Basic and Bearer only"));
    }

    #[test]
    fn token_urls_carry_the_service_and_every_scope_encoded() {
        assert_eq!(
            token_url("http://t/token", Some("reg"), &["repository:a/b:pull,push", "repository:c:pull"]),
            "http://t/token?service=reg&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Ac%3Apull"
        );
        assert_eq!(token_url("http://t/token", None, &[]), "http://t/token");
    }
}
