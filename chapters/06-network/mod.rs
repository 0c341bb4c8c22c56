//! Level 6: networks for containers.
//!
//! Kubernetes asks one thing of a node's network: every pod has an IP
//! address of its own, and every pod reaches every other, on any node,
//! without NAT. On one node that is a bridge (a switch in software) with
//! the node's pod subnet, and for each pod a veth pair, a cable with one
//! end in the pod's network namespace (its `eth0`) and the other plugged
//! into the bridge. Between nodes it is routes: each node sends the other
//! nodes' pod subnets to them. Everything here is netlink messages, sent by
//! the kernel seam and told in plain words; no `ip` is run.

// The lab swaps the reference `allocate` and `plug` for the student's files (`--features lab-06`).
#[cfg_attr(not(feature = "lab-06"), path = "allocate.rs")]
#[cfg_attr(feature = "lab-06", path = "../../labs/06-network/allocate.rs")]
pub mod allocate;
pub mod cni;
pub mod ipam;
#[cfg_attr(not(feature = "lab-06"), path = "plug.rs")]
#[cfg_attr(feature = "lab-06", path = "../../labs/06-network/plug.rs")]
pub mod plug;
pub mod runner;

use crate::scenario::{same_everywhere, Level, Scenario};

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::kernel::{self, in_network_namespace, Netlink};
pub use ipam::{Ipam, Subnet};

/// Level 6's example and the runs of it that its tests record and its lab
/// replays.
pub const LEVEL: Level = Level {
    number: 6,
    name: "network",
    example: "06-network",
    feature: "lab-06",
    lab_files: &["labs/06-network/plug.rs", "labs/06-network/allocate.rs"],
    workspace: None,
    variant: same_everywhere,
    scenarios: &[
        Scenario {
            name: "one-node",
            args: &["one-node"],
            then: &[],
            files: &[],
            shows: "a bridge with the node's pod subnet, a veth pair for each pod, an address and a default \
                    route in each; pod one says hello to pod two over TCP, and sees its own address",
            hint: "Network::attach(): the pod's end of the veth is its eth0, with an address and a default \
                   route through the bridge's; the node's end is plugged into the bridge",
            alongside: None,
        },
        Scenario {
            name: "two-nodes",
            args: &["two-nodes"],
            then: &[],
            files: &[],
            shows: "two nodes joined by a wire, each routing the other's pod subnet to it; pods on the two \
                    nodes say hello to each other over TCP, with no NAT between them",
            hint: "join_nodes(): each node needs a route to the other's pod subnet through the wire, and \
                   ip_forward on",
            alongside: None,
        },
        Scenario {
            name: "leftovers",
            args: &["leftovers"],
            then: &[],
            files: &[],
            shows: "three pods networked through the CNI plugin by the runner; two vanish with no DEL and \
                    their addresses stay taken; GC, told the one still valid, frees the others",
            hint: "cni.rs collect_garbage(): every reservation whose owner is not a valid attachment goes",
            alongside: None,
        },
        Scenario {
            name: "two-nodes-vxlan",
            args: &["two-nodes", "--mode", "vxlan"],
            then: &[],
            files: &[],
            shows:
                "the same through an overlay: each node's VXLAN device, an ARP and a forwarding entry for \
                    the other's; on the wire, the pods' packets inside UDP between the nodes",
            hint:
                "join_by_vxlan(): a route onlink via the other node's VXLAN address, that address's MAC, and \
                   where frames for that MAC go",
            alongside: None,
        },
    ],
};

/// A network of pods on one node: its bridge and the subnet it hands
/// addresses out of, kept in `state`.
pub struct Network {
    pub bridge: String,
    pub subnet: Subnet,
    pub mtu: u32,
    /// Where its addresses are kept (one directory a network, named as the
    /// network is).
    pub state: PathBuf,
    pub options: Options,
}

/// What the reference bridge plugin lets a network ask for beyond the
/// basics; each is off unless asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The bridge may send a frame back out of the port it came in by, so
    /// a pod reaches itself through an address that leads out of it (a
    /// service's, once kube-proxy sends it back): `hairpinMode`.
    pub hairpin: bool,
    /// The bridge takes in every frame, not only those addressed to it:
    /// `promiscMode`.
    pub promiscuous: bool,
    /// What pods send beyond the pod network leaves with the node's
    /// address (the rest of the world has no route back to pods'
    /// addresses): `ipMasq`.
    pub masquerade: bool,
}

/// What a pod got: its address and the way out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The veth's end on the node, plugged into the bridge.
    pub host_veth: String,
}

impl Network {
    /// The bridge, made in this thread's network namespace (the node's) if
    /// it has none: up, with the subnet's gateway address, so that it is
    /// the pods' way out.
    pub fn ensure_bridge(&self, netlink: &Netlink) -> Result<()> {
        if netlink.index_of(&self.bridge)?.is_none() {
            netlink.add_bridge(&self.bridge)?;
            netlink.set_mtu(&self.bridge, self.mtu)?;
            netlink.add_address(&self.bridge, IpAddr::V4(self.subnet.gateway()), self.subnet.prefix)?;
            netlink.set_up(&self.bridge)?;
        }
        if self.options.promiscuous {
            netlink.set_promiscuous(&self.bridge)?;
        }
        Ok(())
    }

    /// The network's name: its state directory's.
    pub fn name(&self) -> String {
        self.state.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// What names a pod's interface (its [`holder`]) on this network in
    /// the node's shared records, its masquerade rule's comment: the
    /// network's name first.
    fn owner_on_node(&self, holder: &str) -> String {
        format!("{}: {holder}", self.name())
    }

    // ANCHOR: attach
    /// Gives the pod whose network namespace `netns` names an interface
    /// `ifname` on this network: an address, a veth pair whose one end is
    /// `ifname` in the pod and the other is plugged into the bridge on the
    /// node, and a default route through the bridge. Run in the node's
    /// network namespace. Undone if any step fails.
    pub fn attach(&self, id: &str, netns: &Path, ifname: &str) -> Result<Attachment> {
        let ipam = Ipam::open(&self.state, self.subnet)?;
        let owner = holder(id, ifname);
        let address = ipam.allocate(&owner)?;
        let attachment = Attachment {
            address,
            prefix: self.subnet.prefix,
            gateway: self.subnet.gateway(),
            host_veth: host_veth_name(id, ifname),
        };
        self.plug(&attachment, netns, ifname)
            .and_then(|()| self.let_out(&attachment, id, ifname))
            .inspect_err(|_| {
                let _ = self.unmasquerade(id, ifname);
                let _ = self.unplug(&attachment.host_veth, netns, ifname);
                let _ = ipam.release(&owner);
            })?;
        Ok(attachment)
    }
    // ANCHOR_END: attach

    fn plug(&self, attachment: &Attachment, netns: &Path, ifname: &str) -> Result<()> {
        let node = Netlink::open()?;
        self.ensure_bridge(&node)?;
        // The node's namespace (this thread's), as the pod's side names it
        // to make the veth's other end here.
        let here = PathBuf::from(format!("/proc/self/task/{}/ns/net", nix::unistd::gettid()));
        let (host, mtu) = (attachment.host_veth.as_str(), self.mtu);
        in_network_namespace(netns, || {
            let pod = Netlink::open()?;
            if pod.index_of(ifname)?.is_some() {
                return Err(Error::new(format!(
                    "the pod's network namespace has an interface {ifname:?} already"
                )));
            }
            plug::plug_pod(&pod, attachment, ifname, mtu, &here)
        })?;
        plug::plug_node(&node, host, &self.bridge, mtu)?;
        if self.options.hairpin {
            node.set_hairpin(host)?;
        }
        Ok(())
    }

    // ANCHOR: let_out
    /// The node forwards its pods' packets (ip_forward, as the reference
    /// plugin turns it on for a network whose bridge is the gateway) and,
    /// if the network masquerades, a rule makes the pod's packets leaving
    /// the pod network leave with the node's address.
    fn let_out(&self, attachment: &Attachment, id: &str, ifname: &str) -> Result<()> {
        let forwarding = Path::new("/proc/sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(forwarding).map_or(true, |on| on.trim() != "1") {
            kernel::write_file(forwarding, "1")?;
        }
        if !self.options.masquerade {
            return Ok(());
        }
        let subnet = (self.subnet.network, self.subnet.prefix);
        kernel::Nftables::open()?.masquerade(
            attachment.address,
            subnet,
            &self.owner_on_node(&holder(id, ifname)),
        )
    }
    // ANCHOR_END: let_out

    fn unmasquerade(&self, id: &str, ifname: &str) -> Result<()> {
        match self.options.masquerade {
            true => kernel::Nftables::open()?.unmasquerade(&self.owner_on_node(&holder(id, ifname))),
            false => Ok(()),
        }
    }

    /// Takes the pod's interface away and frees its address. Whatever is
    /// already gone is no error: the pod's namespace may have vanished
    /// (and its veth with it), or a first detach done half its work.
    pub fn detach(&self, id: &str, netns: &Path, ifname: &str) -> Result<()> {
        self.unmasquerade(id, ifname)?;
        self.unplug(&host_veth_name(id, ifname), netns, ifname)?;
        Ipam::open(&self.state, self.subnet)?.release(&holder(id, ifname))?;
        Ok(())
    }

    /// Frees what no pod in `valid` (their [`holder`]s) holds: addresses,
    /// the node's ends of their veths, their masquerade rules. What CNI
    /// 1.1's GC asks after a crash left pods that were never detached.
    pub fn collect_garbage(&self, valid: &[String]) -> Result<()> {
        let ipam = Ipam::open(&self.state, self.subnet)?;
        let node = Netlink::open()?;
        for (_, owner) in ipam.reservations()? {
            if valid.contains(&owner) {
                continue;
            }
            ipam.release(&owner)?;
            let (id, ifname) = owner.split_once(' ').unwrap_or((owner.as_str(), ""));
            let host = host_veth_name(id, ifname);
            if node.index_of(&host)?.is_some() {
                node.delete_link(&host)?;
            }
        }
        if self.options.masquerade {
            let ours = self.owner_on_node("");
            let valid: Vec<String> = valid.iter().map(|holder| self.owner_on_node(holder)).collect();
            kernel::Nftables::open()?
                .unmasquerade_where(|owner| owner.starts_with(&ours) && !valid.iter().any(|v| v == owner))?;
        }
        Ok(())
    }

    fn unplug(&self, host: &str, netns: &Path, ifname: &str) -> Result<()> {
        if netns.exists() {
            in_network_namespace(netns, || {
                let pod = Netlink::open()?;
                match pod.index_of(ifname)? {
                    Some(_) => pod.delete_link(ifname),
                    None => Ok(()),
                }
            })?;
        }
        // The pair goes as one; the node's end is left only if the pod's
        // end never made it there.
        let node = Netlink::open()?;
        if node.index_of(host)?.is_some() {
            node.delete_link(host)?;
        }
        Ok(())
    }
}

/// Who holds an address, as host-local writes it in the address's file:
/// the container's id and its interface's name, `ID IFNAME`.
pub fn holder(id: &str, ifname: &str) -> String {
    format!("{id} {ifname}")
}

/// The name of a pod's veth end on the node: "veth" and 8 hex digits of
/// the pod's id and interface, so that a later detach finds it without any
/// record (an interface name has at most 15 bytes).
pub fn host_veth_name(id: &str, ifname: &str) -> String {
    let hash = Sha256::digest(holder(id, ifname).as_bytes());
    format!("veth{:08x}", u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]))
}

/// How the nodes carry each other's pods' packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Each node routes the other's pod subnet to it, its next hop on a
    /// link they share (flannel's host-gw).
    Routes,
    /// Each node sends the other's pods' packets inside UDP to it, through a
    /// VXLAN device: an overlay, for nodes that share no link (flannel's vxlan).
    Vxlan,
}

impl Mode {
    /// The pods' MTU: an overlay packs each frame with 50 bytes of headers
    /// of its own (outer Ethernet, IP, UDP and VXLAN), which a 1500-byte
    /// wire must carry.
    pub fn pod_mtu(self) -> u32 {
        match self {
            Mode::Routes => 1500,
            Mode::Vxlan => 1450,
        }
    }
}

/// The VXLAN device of each node, as flannel names it.
pub const VXLAN_DEVICE: &str = "flannel.1";

// ANCHOR: join_nodes
/// Joins two nodes (their network namespaces) by a wire, a veth pair
/// `wire0` (address `a`) and `wire1` (address `b`) on a /30 of their own;
/// both forward packets that are not theirs (ip_forward). Then each sends
/// the other's pod subnet to it, as `mode` says.
pub fn join_nodes(
    a: &Path,
    b: &Path,
    wire: (Ipv4Addr, Ipv4Addr),
    subnets: (Subnet, Subnet),
    mode: Mode,
) -> Result<()> {
    in_network_namespace(a, || {
        let node = Netlink::open()?;
        node.add_veth("wire0", "wire1")?;
        node.move_to("wire1", b)
    })?;
    let nodes = [(a, "wire0", wire.0, subnets.0), (b, "wire1", wire.1, subnets.1)];
    for (netns, device, address, _) in nodes {
        in_network_namespace(netns, || {
            let node = Netlink::open()?;
            node.add_address(device, IpAddr::V4(address), 30)?;
            node.set_up(device)?;
            node.set_up("lo")?;
            kernel::write_file(Path::new("/proc/sys/net/ipv4/ip_forward"), "1")
        })?;
    }
    match mode {
        Mode::Routes => {
            for ((netns, ..), (_, _, next_hop, theirs)) in [(nodes[0], nodes[1]), (nodes[1], nodes[0])] {
                in_network_namespace(netns, || {
                    Netlink::open()?.add_route(Some((theirs.network, theirs.prefix)), Some(next_hop), None)
                })?;
            }
            Ok(())
        }
        Mode::Vxlan => join_by_vxlan(&nodes),
    }
}
// ANCHOR_END: join_nodes

// ANCHOR: join_by_vxlan
/// The overlay: on each node a VXLAN device (VNI 1, UDP 4789 over the
/// wire) with the address `SUBNET.0/32`. Each node then knows three things
/// of the other, as flannel writes them: a route to its pod subnet via its
/// VXLAN device's address, taken to be on the device's link (onlink); that
/// address's MAC (a permanent ARP entry); and where frames for that MAC go,
/// the other node's address on the wire (a forwarding entry).
fn join_by_vxlan(nodes: &[(&Path, &str, Ipv4Addr, Subnet); 2]) -> Result<()> {
    let mut macs = Vec::new();
    for (netns, device, address, ours) in nodes {
        macs.push(in_network_namespace(netns, || {
            let node = Netlink::open()?;
            node.add_vxlan(VXLAN_DEVICE, 1, IpAddr::V4(*address), device)?;
            node.add_address(VXLAN_DEVICE, IpAddr::V4(ours.network), 32)?;
            node.set_up(VXLAN_DEVICE)?;
            node.mac_of(VXLAN_DEVICE)
        })?);
    }
    for (this, other) in [(0, 1), (1, 0)] {
        let (netns, ..) = nodes[this];
        let (_, _, their_wire, theirs) = nodes[other];
        in_network_namespace(netns, || {
            let node = Netlink::open()?;
            node.add_neighbour(VXLAN_DEVICE, theirs.network, macs[other])?;
            node.add_forwarding(VXLAN_DEVICE, macs[other], their_wire)?;
            node.add_onlink_route((theirs.network, theirs.prefix), theirs.network, VXLAN_DEVICE)
        })?;
    }
    Ok(())
}
// ANCHOR_END: join_by_vxlan

/// What a frame seen on the wire holds, if it is a VXLAN packet carrying
/// an IPv4 packet: its outer addresses, its VNI, and the inner addresses
/// and protocol, as a line. (Ethernet, IPv4, UDP to 4789, an 8-byte VXLAN
/// header, then the pod's own Ethernet frame.)
pub fn read_vxlan(frame: &[u8]) -> Option<String> {
    let ipv4 = |packet: &[u8]| -> Option<(Ipv4Addr, Ipv4Addr, u8, usize)> {
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return None;
        }
        let header = usize::from(packet[0] & 0x0f) * 4;
        let address = |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
        Some((address(12), address(16), packet[9], header))
    };
    let outer = frame.get(14..).filter(|_| frame.get(12..14) == Some(&[0x08, 0x00]))?;
    let (source, destination, protocol, header) = ipv4(outer)?;
    let udp = outer.get(header..).filter(|_| protocol == 17)?;
    if udp.get(2..4)? != 4789u16.to_be_bytes() {
        return None;
    }
    let vxlan = udp.get(8..16)?;
    let vni = u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]);
    let inner_frame = udp.get(16..)?;
    let inner = inner_frame.get(14..).filter(|_| inner_frame.get(12..14) == Some(&[0x08, 0x00]))?;
    let (inner_source, inner_destination, inner_protocol, inner_header) = ipv4(inner)?;
    let what = match inner_protocol {
        6 => {
            let port = inner.get(inner_header + 2..inner_header + 4)?;
            format!("TCP to port {}", u16::from_be_bytes([port[0], port[1]]))
        }
        1 => "ICMP".to_string(),
        other => format!("protocol {other}"),
    };
    Some(format!(
        "outside: {source} -> {destination}, UDP to port 4789, VXLAN VNI {vni}; inside: {inner_source} -> \
         {inner_destination}, {what}"
    ))
}

// ANCHOR: say_hello
/// A real TCP connection from the pod whose network namespace is `from` to
/// a server in `to`, listening on `address`: the client says hello, the
/// server answers what it heard and from which address. What it answered.
pub fn say_hello(from: &Path, to: &Path, address: Ipv4Addr) -> Result<String> {
    use std::io::{BufRead, BufReader, Write};
    let failed = |what: &str, e: std::io::Error| Error::new(format!("{what}: {e}"));
    // A socket belongs to the namespace it was made in, whichever thread
    // uses it later.
    let listener = in_network_namespace(to, || {
        std::net::TcpListener::bind((address, 7000))
            .map_err(|e| failed(&format!("listening on {address}:7000"), e))
    })?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (stream, peer) = listener.accept()?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        (&stream).write_all(format!("heard {:?} from {}\n", line.trim(), peer.ip()).as_bytes())
    });
    let stream = in_network_namespace(from, || {
        std::net::TcpStream::connect_timeout(&(address, 7000).into(), std::time::Duration::from_secs(5))
            .map_err(|e| failed(&format!("connecting to {address}:7000"), e))
    })?;
    (&stream).write_all(b"hello\n").map_err(|e| failed("sending", e))?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(|e| failed("receiving", e))?;
    server.join().map_err(|_| Error::new("the server thread panicked"))?.map_err(|e| failed("serving", e))?;
    Ok(reply.trim().to_string())
}
// ANCHOR_END: say_hello

/// Network namespaces bound to files in a directory of their own, each
/// removed (unbound) when this is dropped, and the directory with them.
pub struct Namespaces {
    pub dir: PathBuf,
    made: Vec<PathBuf>,
}

impl Namespaces {
    pub fn new() -> Result<Namespaces> {
        Ok(Namespaces { dir: kernel::mkdtemp("podlab-")?, made: Vec::new() })
    }

    /// A new network namespace, bound to `dir/name`.
    pub fn make(&mut self, name: &str) -> Result<PathBuf> {
        let at = self.dir.join(name);
        kernel::new_network_namespace(&at)?;
        self.made.push(at.clone());
        Ok(at)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for at in self.made.drain(..).rev() {
            let _ = kernel::remove_network_namespace(&at);
        }
        let _ = kernel::remove_dir_all(&self.dir);
    }
}
