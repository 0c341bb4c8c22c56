//! Network devices, addresses and routes, by netlink: the messages `ip
//! link`, `ip addr` and `ip route` send, sent by us (rtnetlink builds and
//! parses them; each is told in plain words as it goes). A netlink socket
//! speaks for the network namespace of the thread that opened it, so work
//! in another namespace runs in a thread that joins it first
//! ([`in_network_namespace`]).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoPortData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};

use super::failed;
use crate::error::{Error, Result};
use crate::narrate;

/// A netlink connection to the kernel, in the network namespace of the
/// thread that opened it.
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

/// A route as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub destination: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub device: Option<String>,
}

impl Netlink {
    /// A connection (a NETLINK_ROUTE socket) in this thread's network
    /// namespace.
    pub fn open() -> Result<Netlink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::new(format!("a runtime for netlink: {e}")))?;
        let (connection, handle, _) = runtime
            .block_on(async { rtnetlink::new_connection() })
            .map_err(|e| Error::new(format!("socket(AF_NETLINK, NETLINK_ROUTE) failed: {e}")))?;
        runtime.spawn(connection);
        Ok(Netlink { runtime, handle })
    }

    fn run<T>(
        &self,
        told: &str,
        request: impl std::future::Future<Output = std::result::Result<T, rtnetlink::Error>>,
    ) -> Result<T> {
        narrate!("{told}");
        self.runtime.block_on(request).map_err(|e| Error::new(format!("{told}: {}", plain(&e))))
    }

    /// The index of the link `name`, if this namespace has one (looks only).
    pub fn index_of(&self, name: &str) -> Result<Option<u32>> {
        let mut request = self.handle.link().get().match_name(name.to_string()).execute();
        match self.runtime.block_on(request.try_next()) {
            Ok(link) => Ok(link.map(|link| link.header.index)),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -nix::libc::ENODEV => Ok(None),
            Err(e) => Err(Error::new(format!("RTM_GETLINK {name:?}: {}", plain(&e)))),
        }
    }

    fn index(&self, name: &str) -> Result<u32> {
        self.index_of(name)?.ok_or_else(|| Error::new(format!("there is no network device {name:?} here")))
    }

    /// RTM_NEWLINK of a bridge: a switch in software, its ports the links
    /// given to it (`ip link add NAME type bridge`).
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: make bridge {name:?}");
        self.run(&told, self.handle.link().add(LinkBridge::new(name).build()).execute())
    }

    /// RTM_NEWLINK of a veth pair: two devices, what goes in one comes out
    /// of the other (`ip link add NAME type veth peer name PEER`).
    pub fn add_veth(&self, name: &str, peer: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: make veth pair {name:?} <-> {peer:?}");
        self.run(&told, self.handle.link().add(LinkVeth::new(name, peer).build()).execute())
    }

    /// RTM_NEWLINK of a veth pair whose other end, `peer`, is made straight
    /// in the network namespace `netns` names (`ip link add NAME type veth
    /// peer name PEER netns NS`): one message, where making it here and
    /// moving it would cost the kernel a second wait for every CPU to let go
    /// of the device (synchronize_net), some 25 ms.
    pub fn add_veth_across(&self, name: &str, peer: &str, netns: &Path) -> Result<()> {
        let told = format!(
            "RTM_NEWLINK: make veth pair {name:?} <-> {peer:?}, {peer:?} in the network namespace {netns:?}"
        );
        let file = std::fs::File::open(netns).map_err(|e| Error::new(format!("opening {netns:?}: {e}")))?;
        let peer_message = LinkUnspec::new_with_name(peer).setns_by_fd(file.as_fd().as_raw_fd()).build();
        let message =
            LinkVeth::new(name, peer).set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message))).build();
        self.run(&told, self.handle.link().add(message).execute())
    }

    /// RTM_NEWLINK of a VXLAN device: Ethernet frames sent through it go
    /// out of `underlay` inside UDP packets (port 4789) from `local`
    /// (`ip link add NAME type vxlan id VNI local IP dev DEV dstport 4789`).
    pub fn add_vxlan(&self, name: &str, vni: u32, local: IpAddr, underlay: &str) -> Result<()> {
        let told =
            format!("RTM_NEWLINK: make vxlan {name:?} (VNI {vni}, from {local} over {underlay:?}, UDP 4789)");
        let underlay = self.index(underlay)?;
        let IpAddr::V4(local) = local else {
            return Err(Error::new("podlab's VXLAN devices speak IPv4"));
        };
        let message =
            LinkVxlan::new(name, vni).link(underlay).local(local).port(4789).learning(false).build();
        self.run(&told, self.handle.link().add(message).execute())
    }

    /// RTM_NEWLINK setting IFF_UP (`ip link set NAME up`).
    pub fn set_up(&self, name: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: set {name:?} up");
        let index = self.index(name)?;
        self.run(&told, self.handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute())
    }

    /// RTM_NEWLINK making `name` a port of `bridge` (`ip link set NAME master BRIDGE`).
    pub fn set_master(&self, name: &str, bridge: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: plug {name:?} into bridge {bridge:?}");
        let (index, bridge) = (self.index(name)?, self.index(bridge)?);
        let message = LinkUnspec::new_with_index(index).controller(bridge).build();
        self.run(&told, self.handle.link().set(message).execute())
    }

    /// The link `name` as RTM_GETLINK tells it (looks only).
    fn link(&self, name: &str) -> Result<LinkMessage> {
        let mut request = self.handle.link().get().match_name(name.to_string()).execute();
        self.runtime
            .block_on(request.try_next())
            .map_err(|e| Error::new(format!("RTM_GETLINK {name:?}: {}", plain(&e))))?
            .ok_or_else(|| Error::new(format!("there is no network device {name:?} here")))
    }

    /// RTM_NEWLINK setting IFF_PROMISC: the device takes in every frame it
    /// sees, not only those addressed to it (`ip link set NAME promisc on`).
    pub fn set_promiscuous(&self, name: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: set {name:?} promiscuous");
        let index = self.index(name)?;
        let message = LinkUnspec::new_with_index(index).promiscuous(true).build();
        self.run(&told, self.handle.link().set(message).execute())
    }

    /// RTM_NEWLINK of a bridge port's hairpin mode: its bridge may send a
    /// frame back out of the port it came in by (`ip link set NAME type
    /// bridge_slave hairpin on`).
    pub fn set_hairpin(&self, port: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: let bridge port {port:?} hairpin");
        let index = self.index(port)?;
        let message = LinkBridgePort::new(index).hairpin(true).build();
        // A port's settings are changed by RTM_NEWLINK itself (RTM_SETLINK
        // ignores them), as `ip` sends it.
        self.run(&told, self.handle.link().change(message).execute())
    }

    /// Whether `port` is a bridge port in hairpin mode (looks only).
    pub fn hairpins(&self, port: &str) -> Result<bool> {
        Ok(self.link(port)?.attributes.iter().any(|a| {
            matches!(a, LinkAttribute::LinkInfo(infos) if infos.iter().any(|i| matches!(i,
                LinkInfo::PortData(InfoPortData::BridgePort(port)) if port.contains(&InfoBridgePort::HairpinMode(true)))))
        }))
    }

    /// Whether the device `name` is promiscuous (looks only).
    pub fn is_promiscuous(&self, name: &str) -> Result<bool> {
        Ok(self.link(name)?.header.flags.contains(LinkFlags::Promisc))
    }

    /// RTM_NEWLINK setting the MTU (`ip link set NAME mtu N`).
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let told = format!("RTM_NEWLINK: set {name:?}'s MTU to {mtu}");
        let index = self.index(name)?;
        self.run(&told, self.handle.link().set(LinkUnspec::new_with_index(index).mtu(mtu).build()).execute())
    }

    /// RTM_NEWLINK moving `name` into the network namespace `netns` (a file
    /// that names one), where this namespace no longer sees it
    /// (`ip link set NAME netns NS`).
    pub fn move_to(&self, name: &str, netns: &Path) -> Result<()> {
        let told = format!("RTM_NEWLINK: move {name:?} into the network namespace {netns:?}");
        let index = self.index(name)?;
        let file = std::fs::File::open(netns).map_err(|e| Error::new(format!("opening {netns:?}: {e}")))?;
        let message = LinkUnspec::new_with_index(index).setns_by_fd(file.as_fd().as_raw_fd()).build();
        self.run(&told, self.handle.link().set(message).execute())
    }

    /// RTM_NEWLINK renaming a link (`ip link set NAME name NEW`); it must be down.
    pub fn rename(&self, name: &str, new: &str) -> Result<()> {
        let told = format!("RTM_NEWLINK: rename {name:?} to {new:?}");
        let index = self.index(name)?;
        self.run(
            &told,
            self.handle.link().set(LinkUnspec::new_with_index(index).name(new.to_string()).build()).execute(),
        )
    }

    /// RTM_DELLINK (`ip link del NAME`); a veth's peer goes with it.
    pub fn delete_link(&self, name: &str) -> Result<()> {
        let told = format!("RTM_DELLINK: remove {name:?}");
        let index = self.index(name)?;
        self.run(&told, self.handle.link().del(index).execute())
    }

    /// RTM_NEWADDR (`ip addr add IP/PREFIX dev NAME`): the kernel also adds
    /// the route to the address's subnet through `name`.
    pub fn add_address(&self, name: &str, address: IpAddr, prefix: u8) -> Result<()> {
        let told = format!("RTM_NEWADDR: give {name:?} the address {address}/{prefix}");
        let index = self.index(name)?;
        self.run(&told, self.handle.address().add(index, address, prefix).execute())
    }

    /// RTM_NEWROUTE (`ip route add DEST via GATEWAY [dev NAME]`): packets
    /// for `destination` (None: for anywhere, the default route) go to
    /// `gateway`, or out of `device` to a neighbour on its link. IPv4.
    pub fn add_route(
        &self,
        destination: Option<(Ipv4Addr, u8)>,
        gateway: Option<Ipv4Addr>,
        device: Option<&str>,
    ) -> Result<()> {
        let to = destination
            .map_or("anywhere (the default route)".to_string(), |(ip, prefix)| format!("{ip}/{prefix}"));
        let via = match (gateway, device) {
            (Some(gateway), Some(device)) => format!(" via {gateway} on {device:?}"),
            (Some(gateway), None) => format!(" via {gateway}"),
            (None, Some(device)) => format!(" out of {device:?}"),
            (None, None) => String::new(),
        };
        let told = format!("RTM_NEWROUTE: packets for {to} go{via}");
        let mut builder = RouteMessageBuilder::<Ipv4Addr>::new();
        if let Some((ip, prefix)) = destination {
            builder = builder.destination_prefix(ip, prefix);
        }
        if let Some(gateway) = gateway {
            builder = builder.gateway(gateway);
        }
        if let Some(device) = device {
            builder = builder.output_interface(self.index(device)?);
        }
        self.run(&told, self.handle.route().add(builder.build()).execute())
    }

    /// RTM_NEWROUTE of a route whose gateway is taken to be on `device`'s
    /// link even though no address of the device's covers it (`onlink`):
    /// how a VXLAN overlay names the other node's end as the next hop.
    pub fn add_onlink_route(
        &self,
        destination: (Ipv4Addr, u8),
        gateway: Ipv4Addr,
        device: &str,
    ) -> Result<()> {
        let (ip, prefix) = destination;
        let told = format!("RTM_NEWROUTE: packets for {ip}/{prefix} go via {gateway} on {device:?} (onlink)");
        let message = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(ip, prefix)
            .gateway(gateway)
            .output_interface(self.index(device)?)
            .onlink()
            .build();
        self.run(&told, self.handle.route().add(message).execute())
    }

    /// RTM_NEWNEIGH of a permanent ARP entry: `ip` has the hardware
    /// address `mac` on `device` (`ip neigh add IP lladdr MAC dev NAME
    /// nud permanent`), so the kernel never asks.
    pub fn add_neighbour(&self, device: &str, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
        let told = format!("RTM_NEWNEIGH: {ip} is {} on {device:?} (a permanent ARP entry)", mac_text(&mac));
        let request = self
            .handle
            .neighbours()
            .add(self.index(device)?, IpAddr::V4(ip))
            .link_layer_address(&mac)
            .state(netlink_packet_route::neighbour::NeighbourState::Permanent);
        self.run(&told, request.execute())
    }

    /// RTM_NEWNEIGH of a forwarding entry of a VXLAN device's own: frames
    /// for `mac` go inside UDP to `destination` (`bridge fdb append MAC
    /// dev NAME dst IP self permanent`).
    pub fn add_forwarding(&self, device: &str, mac: [u8; 6], destination: Ipv4Addr) -> Result<()> {
        let told = format!(
            "RTM_NEWNEIGH: frames for {} on {device:?} go to {destination} (a VXLAN forwarding entry)",
            mac_text(&mac)
        );
        let request = self
            .handle
            .neighbours()
            .add_bridge(self.index(device)?, &mac)
            .destination(IpAddr::V4(destination))
            .flags(netlink_packet_route::neighbour::NeighbourFlags::Own)
            .state(netlink_packet_route::neighbour::NeighbourState::Permanent);
        self.run(&told, request.execute())
    }

    /// The hardware (MAC) address of `name` (looks only).
    pub fn mac_of(&self, name: &str) -> Result<[u8; 6]> {
        self.link(name)?
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| Error::new(format!("{name:?} has no hardware address")))
    }

    /// The addresses of `name` (`ip addr show NAME`; looks only).
    pub fn addresses(&self, name: &str) -> Result<Vec<(IpAddr, u8)>> {
        let index = self.index(name)?;
        let request = self.handle.address().get().set_link_index_filter(index).execute();
        let messages: Vec<_> = self
            .runtime
            .block_on(request.try_collect())
            .map_err(|e| Error::new(format!("RTM_GETADDR {name:?}: {}", plain(&e))))?;
        Ok(messages
            .iter()
            .filter_map(|message| {
                message.attributes.iter().find_map(|attribute| match attribute {
                    AddressAttribute::Address(ip) => Some((*ip, message.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    }

    /// The names of this namespace's links (`ip link`; looks only).
    pub fn links(&self) -> Result<Vec<String>> {
        Ok(self.links_by_index()?.into_values().collect())
    }

    /// Every link's name, by its index.
    fn links_by_index(&self) -> Result<std::collections::HashMap<u32, String>> {
        let messages: Vec<_> = self
            .runtime
            .block_on(self.handle.link().get().execute().try_collect())
            .map_err(|e| Error::new(format!("RTM_GETLINK: {}", plain(&e))))?;
        Ok(messages
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some((m.header.index, name.clone())),
                    _ => None,
                })
            })
            .collect())
    }

    /// The IPv4 routes of the main table (`ip route`; looks only).
    pub fn routes(&self) -> Result<Vec<Route>> {
        let request = self.handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let messages: Vec<_> = self
            .runtime
            .block_on(request.try_collect())
            .map_err(|e| Error::new(format!("RTM_GETROUTE: {}", plain(&e))))?;
        let names = self.links_by_index()?;
        let address = |a: &RouteAddress| match a {
            RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
            RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        };
        Ok(messages
            .iter()
            .filter(|m| m.header.table == 254) // main
            .map(|m| {
                let mut route = Route { destination: None, gateway: None, device: None };
                for attribute in &m.attributes {
                    match attribute {
                        RouteAttribute::Destination(a) => {
                            route.destination = address(a).map(|ip| (ip, m.header.destination_prefix_length))
                        }
                        RouteAttribute::Gateway(a) => route.gateway = address(a),
                        RouteAttribute::Oif(index) => route.device = names.get(index).cloned(),
                        _ => {}
                    }
                }
                route
            })
            .collect())
    }
}

/// A MAC address as `ip` writes it.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A netlink error as a person reads it: the kernel's errno, named.
fn plain(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => {
            let errno = nix::errno::Errno::from_raw(-message.raw_code());
            format!("{} ({errno:?})", errno.desc())
        }
        other => other.to_string(),
    }
}

/// Runs `work` in the network namespace that the file `netns` names (a
/// /proc/PID/ns/net, or a file a namespace is bound to): in a thread of its
/// own, which joins it with setns(2), so that this thread stays where it is.
pub fn in_network_namespace<T: Send>(netns: &Path, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                super::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(Error::new("a thread working in a network namespace panicked")))
    })
}

/// A network namespace of its own, bound to the file `at` (made; as `ip
/// netns add` binds one to /run/netns/NAME), so that it lives on with no
/// process in it. [`remove_network_namespace`] undoes it.
pub fn new_network_namespace(at: &Path) -> Result<()> {
    narrate!("unshare(CLONE_NEWNET) in a thread, and mount(\"/proc/thread-self/ns/net\", {at:?}, MS_BIND): a network namespace of its own");
    std::fs::File::create(at).map_err(|e| Error::new(format!("creating {at:?}: {e}")))?;
    let bound = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| failed("unshare(CLONE_NEWNET)".to_string(), e))?;
                let own = PathBuf::from("/proc/thread-self/ns/net");
                nix::mount::mount(Some(&own), at, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| failed(format!("mount({own:?}, {at:?}, MS_BIND)"), e))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::new("the thread making a network namespace panicked")))
    });
    if bound.is_err() {
        let _ = std::fs::remove_file(at);
    }
    bound
}

/// Unbinds the network namespace bound to `at`, and removes the file: the
/// namespace ends once no process is in it.
pub fn remove_network_namespace(at: &Path) -> Result<()> {
    narrate!("umount2({at:?}, MNT_DETACH), unlink({at:?}): the network namespace goes once nothing holds it");
    nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| failed(format!("umount2({at:?})"), e))?;
    std::fs::remove_file(at).map_err(|e| Error::new(format!("removing {at:?}: {e}")))
}
