//! A pod's cable: the netlink steps that give a pod its interface, its
//! address and its way out, in the pod's network namespace, and plug the
//! other end into the node's bridge. The course's `net-script.sh` ADD
//! section, message by message.

use std::net::IpAddr;
use std::path::Path;

use super::Attachment;
use crate::error::Result;
use crate::kernel::Netlink;

// ANCHOR: plug_pod
/// The pod's half, run in the pod's network namespace (`pod` speaks for
/// it): a veth pair, `ifname` here and `attachment.host_veth` made straight
/// in the node's namespace (the file `node` names); then `ifname`'s MTU and
/// address; `ifname` and `lo` up; and a default route via the gateway.
pub fn plug_pod(pod: &Netlink, attachment: &Attachment, ifname: &str, mtu: u32, node: &Path) -> Result<()> {
    pod.add_veth_across(ifname, &attachment.host_veth, node)?;
    pod.set_mtu(ifname, mtu)?;
    pod.add_address(ifname, IpAddr::V4(attachment.address), attachment.prefix)?;
    pod.set_up(ifname)?;
    pod.set_up("lo")?;
    pod.add_route(None, Some(attachment.gateway), None)
}
// ANCHOR_END: plug_pod

// ANCHOR: plug_node
/// The node's half: the veth's end `host` gets the same MTU, is plugged
/// into `bridge`, and goes up.
pub fn plug_node(node: &Netlink, host: &str, bridge: &str, mtu: u32) -> Result<()> {
    node.set_mtu(host, mtu)?;
    node.set_master(host, bridge)?;
    node.set_up(host)
}
// ANCHOR_END: plug_node
