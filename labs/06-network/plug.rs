//! Level 6 lab, part 1: a pod's cable, the netlink steps that give a pod
//! its interface, its address and its way out, and plug the other end into
//! the node's bridge.
//!
//! Write the two functions below; `cargo lab 6` checks them (with
//! allocate.rs), and `cargo lab hint 6` gives a hint when you are stuck.
//! Send netlink messages only through the `Netlink` you are given: each
//! message is told in plain words as it goes. The sheet,
//! labs/06-network/README.md, says what each function must achieve.

// Until you have written them, the parameters and imports go unused.
#![allow(unused_variables, unused_imports)]

use std::net::IpAddr;
use std::path::Path;

use super::Attachment;
use crate::error::Result;
use crate::kernel::Netlink;

/// The pod's half, run in the pod's network namespace (`pod` speaks for
/// it): a veth pair, `ifname` here and `attachment.host_veth` made straight
/// in the node's namespace (the file `node` names); then `ifname`'s MTU and
/// address; `ifname` and `lo` up; and a default route via the gateway.
pub fn plug_pod(pod: &Netlink, attachment: &Attachment, ifname: &str, mtu: u32, node: &Path) -> Result<()> {
    todo!("give the pod its end of the cable, its address and its way out; `cargo lab hint 6` when stuck")
}

/// The node's half: the veth's end `host` gets the same MTU, is plugged
/// into `bridge`, and goes up.
pub fn plug_node(node: &Netlink, host: &str, bridge: &str, mtu: u32) -> Result<()> {
    todo!("plug the node's end of the cable into the bridge; `cargo lab hint 6` when stuck")
}
