//! Level 6 lab, part 2: which address a pod gets, the search host-local
//! does over a subnet's addresses for one that is free.
//!
//! Write the function below; `cargo lab 6` checks it (with plug.rs). The
//! sheet, labs/06-network/README.md, says what it must achieve.

// Until you have written it, the parameters and imports go unused.
#![allow(unused_variables, unused_imports, unused_mut)]

use std::net::Ipv4Addr;

use super::Subnet;
use crate::error::Result;

/// The next address of `subnet` to give: the first after `last` (the last
/// one given, if any) that `take` manages to take, going round the subnet
/// once. Never the network's own address (the first), the gateway's (the
/// second, which the bridge has) or the broadcast (the last). `take` makes
/// the address's file with O_EXCL: false if another pod has it. None if
/// every address is taken.
pub fn next_free(
    subnet: Subnet,
    last: Option<Ipv4Addr>,
    mut take: impl FnMut(Ipv4Addr) -> Result<bool>,
) -> Result<Option<Ipv4Addr>> {
    todo!("find the next free address after the last one given; `cargo lab hint 6` when stuck")
}
