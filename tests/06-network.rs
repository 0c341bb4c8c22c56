//! Level 6: a pod's network, made by netlink in network namespaces the
//! tests make (a node's, a pod's), never in the machine's own; read back by
//! netlink, and proven by real TCP connections between pods.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use podlab::kernel::{in_network_namespace, Capture, Netlink};
use podlab::network::{
    host_veth_name, join_nodes, read_vxlan, say_hello, Ipam, Mode, Namespaces, Network, Subnet,
};

scenario_tests!(podlab::network::LEVEL;
    one_node_scenario => "one-node",
    two_nodes_scenario => "two-nodes",
    two_nodes_vxlan_scenario => "two-nodes-vxlan",
    leftovers_scenario => "leftovers",
);

fn needs_root(test: &str) -> bool {
    common::can_run(
        test,
        (!nix::unistd::geteuid().is_root())
            .then(|| "it makes network namespaces, which needs root".to_string()),
    )
}

fn network(namespaces: &Namespaces, subnet: &str) -> Network {
    Network {
        bridge: "cni0".to_string(),
        subnet: subnet.parse().unwrap(),
        mtu: 1500,
        state: namespaces.dir.join(format!("ipam-{}", subnet.replace('/', "-"))),
        options: Default::default(),
    }
}

/// The IPv4 addresses of a list (a link also has an IPv6 link-local one).
fn ipv4(addresses: Vec<(IpAddr, u8)>) -> Vec<(IpAddr, u8)> {
    addresses.into_iter().filter(|(ip, _)| ip.is_ipv4()).collect()
}

/// A pod gets `eth0` with the subnet's next address, `lo` up, and a default
/// route through the bridge's address; the node gets the bridge and the
/// veth's other end plugged into it. Detached, all of it is gone, and a
/// second detach is no error.
#[test]
fn a_pod_gets_an_address_a_veth_and_a_default_route() {
    if !needs_root("a_pod_gets_an_address_a_veth_and_a_default_route") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let pod = namespaces.make("pod").unwrap();
    let network = network(&namespaces, "10.244.1.0/24");
    let attached = in_network_namespace(&node, || network.attach("pod-1", &pod, "eth0")).unwrap();
    assert_eq!(attached.address, Ipv4Addr::new(10, 244, 1, 2));
    assert_eq!(attached.gateway, Ipv4Addr::new(10, 244, 1, 1));
    in_network_namespace(&pod, || {
        let netlink = Netlink::open()?;
        let mut links = netlink.links()?;
        links.sort();
        assert_eq!(links, ["eth0", "lo"]);
        assert_eq!(ipv4(netlink.addresses("eth0")?), [(IpAddr::V4(attached.address), 24)]);
        let routes = netlink.routes()?;
        let default = routes.iter().find(|r| r.destination.is_none()).expect("a default route");
        assert_eq!(default.gateway, Some(IpAddr::V4(attached.gateway)));
        Ok(())
    })
    .unwrap();
    in_network_namespace(&node, || {
        let netlink = Netlink::open()?;
        assert_eq!(ipv4(netlink.addresses("cni0")?), [(IpAddr::V4(attached.gateway), 24)]);
        assert!(netlink.links()?.contains(&attached.host_veth));
        assert_eq!(attached.host_veth, host_veth_name("pod-1", "eth0"));
        Ok(())
    })
    .unwrap();
    // Attaching twice is refused, and nothing of the second try stays.
    let said =
        in_network_namespace(&node, || network.attach("pod-1b", &pod, "eth0")).unwrap_err().to_string();
    assert!(said.contains("has an interface \"eth0\" already"), "{said}");

    in_network_namespace(&node, || network.detach("pod-1", &pod, "eth0")).unwrap();
    in_network_namespace(&node, || network.detach("pod-1", &pod, "eth0")).unwrap();
    let left = in_network_namespace(&pod, || Netlink::open()?.links()).unwrap();
    assert_eq!(left, ["lo"]);
    in_network_namespace(&node, || {
        let links = Netlink::open()?.links()?;
        assert!(!links.iter().any(|l| l.starts_with("veth")), "{links:?}");
        Ok(())
    })
    .unwrap();
    assert!(Ipam::open(&network.state, network.subnet).unwrap().reservations().unwrap().is_empty());
}

/// Two pods on one node talk over TCP through the bridge, each seeing the
/// other's own address (no NAT).
#[test]
fn two_pods_on_one_node_talk_through_the_bridge() {
    if !needs_root("two_pods_on_one_node_talk_through_the_bridge") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let (one, two) = (namespaces.make("one").unwrap(), namespaces.make("two").unwrap());
    let network = network(&namespaces, "10.244.1.0/24");
    let a = in_network_namespace(&node, || network.attach("one", &one, "eth0")).unwrap();
    let b = in_network_namespace(&node, || network.attach("two", &two, "eth0")).unwrap();
    assert_ne!(a.address, b.address);
    assert_eq!(say_hello(&one, &two, b.address).unwrap(), format!("heard \"hello\" from {}", a.address));
}

/// Pods on two nodes (two network namespaces joined by a wire) talk over
/// TCP, each way: by routes (each node routes the other's pod subnet to
/// it), and by an overlay (VXLAN), where the frames on the wire are UDP
/// packets between the nodes that carry the pods' own packets.
#[test]
fn pods_on_two_nodes_talk_through_routes_and_through_vxlan() {
    if !needs_root("pods_on_two_nodes_talk_through_routes_and_through_vxlan") {
        return;
    }
    for mode in [Mode::Routes, Mode::Vxlan] {
        let mut namespaces = Namespaces::new().unwrap();
        let (node1, node2) = (namespaces.make("node1").unwrap(), namespaces.make("node2").unwrap());
        let (pod1, pod2) = (namespaces.make("pod1").unwrap(), namespaces.make("pod2").unwrap());
        let (mut net1, mut net2) =
            (network(&namespaces, "10.244.1.0/24"), network(&namespaces, "10.244.2.0/24"));
        (net1.mtu, net2.mtu) = (mode.pod_mtu(), mode.pod_mtu());
        let a = in_network_namespace(&node1, || net1.attach("pod1", &pod1, "eth0")).unwrap();
        let b = in_network_namespace(&node2, || net2.attach("pod2", &pod2, "eth0")).unwrap();
        let wire = (Ipv4Addr::new(172, 31, 254, 1), Ipv4Addr::new(172, 31, 254, 2));
        join_nodes(&node1, &node2, wire, (net1.subnet, net2.subnet), mode).unwrap();
        let capture = in_network_namespace(&node1, || {
            let index = Netlink::open()?.index_of("wire0")?.unwrap();
            Capture::start("wire0", index)
        })
        .unwrap();
        assert_eq!(
            say_hello(&pod1, &pod2, b.address).unwrap(),
            format!("heard \"hello\" from {}", a.address)
        );
        assert_eq!(
            say_hello(&pod2, &pod1, a.address).unwrap(),
            format!("heard \"hello\" from {}", b.address)
        );
        let frames = capture.frames(std::time::Duration::from_secs(2));
        let overlaid: Vec<String> = frames.iter().filter_map(|f| read_vxlan(f)).collect();
        match mode {
            Mode::Routes => assert!(overlaid.is_empty(), "{overlaid:?}"),
            Mode::Vxlan => assert_eq!(
                overlaid.first().map(String::as_str),
                Some(
                    "outside: 172.31.254.1 -> 172.31.254.2, UDP to port 4789, VXLAN VNI 1; inside: 10.244.1.2 -> \
                     10.244.2.2, TCP to port 7000"
                ),
                "{} frames",
                frames.len()
            ),
        }
    }
}

/// 50 allocations at once from one network's state get 50 addresses, all
/// different; released, none is left. An exhausted range says so.
#[test]
fn parallel_allocations_never_collide() {
    let scratch = common::Scratch::new("ipam");
    let subnet: Subnet = "10.244.3.0/24".parse().unwrap();
    let state = scratch.path().join("state");
    let mut given: Vec<Ipv4Addr> = std::thread::scope(|scope| {
        let all: Vec<_> = (0..50)
            .map(|n| {
                let state = &state;
                scope.spawn(move || {
                    Ipam::open(state, subnet).unwrap().allocate(&format!("pod-{n} eth0")).unwrap()
                })
            })
            .collect();
        all.into_iter().map(|t| t.join().unwrap()).collect()
    });
    given.sort();
    given.dedup();
    assert_eq!(given.len(), 50);
    assert!(given.iter().all(|a| subnet.contains(*a) && *a != subnet.gateway() && *a != subnet.network));
    let ipam = Ipam::open(&state, subnet).unwrap();
    assert_eq!(
        ipam.allocate("pod-7 eth0").unwrap(),
        ipam.held_by("pod-7 eth0").unwrap().unwrap(),
        "asked again"
    );
    for n in 0..50 {
        assert!(ipam.release(&format!("pod-{n} eth0")).unwrap().is_some());
    }
    assert!(ipam.release("pod-0 eth0").unwrap().is_none(), "released twice");
    assert!(ipam.reservations().unwrap().is_empty());

    let small: Subnet = "10.244.4.0/30".parse().unwrap();
    let tiny = Ipam::open(&scratch.path().join("tiny"), small).unwrap();
    assert_eq!(tiny.allocate("a eth0").unwrap(), Ipv4Addr::new(10, 244, 4, 2));
    let said = tiny.allocate("b eth0").unwrap_err().to_string();
    assert!(said.contains("exhausted"), "{said}");
    assert!("10.244.4.0".parse::<Subnet>().unwrap_err().to_string().contains("not a subnet"));
}
