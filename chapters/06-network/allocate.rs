//! Which address a pod gets: the search host-local does, over a subnet's
//! addresses, for one that is free.

use std::net::Ipv4Addr;

use super::Subnet;
use crate::error::Result;

// ANCHOR: next_free
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
    // Addresses are numbered from the network's own (0). The usable ones
    // run from FIRST to the one before the broadcast; the search begins
    // after the last one given, and goes round once.
    const FIRST: u32 = 2;
    let count = subnet.size() - 1 - FIRST;
    let number = |address: Ipv4Addr| u32::from(address) - u32::from(subnet.network);
    let start = last.filter(|l| subnet.contains(*l)).map_or(FIRST, |l| number(l) + 1);
    for step in 0..count {
        let address = subnet.nth(FIRST + (start.saturating_sub(FIRST) + step) % count);
        if take(address)? {
            return Ok(Some(address));
        }
    }
    Ok(None)
}
// ANCHOR_END: next_free
