//! Level 5 lab, part 2: a registry's challenge, and the request for a token
//! that answers it.
//!
//! Write the two functions below; `cargo lab 5` checks them (with
//! whiteouts.rs), and `cargo lab hint 5` gives a hint when you are stuck.
//! The sheet, labs/05-images/README.md, says what each must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

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

/// Reads `Basic realm="x"` or `Bearer realm="x",service="y",scope="z"`.
/// Values are quoted and may hold commas (`scope="repository:a:pull,push"`)
/// and escaped quotes (`\"`); the scheme and the keys are case-insensitive.
pub fn read_challenge(header: &str) -> Result<Challenge> {
    todo!("read the scheme and the key=\"value\" parameters of a WWW-Authenticate header; `cargo lab hint 5` when stuck")
}

/// The URL that asks the token server at `realm` for a token: the service
/// and each scope as query parameters (`?service=...&scope=...&scope=...`),
/// each value percent-encoded.
pub fn token_url(realm: &str, service: Option<&str>, scopes: &[&str]) -> String {
    todo!("build the token request's URL from the realm, the service and the scopes; `cargo lab hint 5` when stuck")
}
