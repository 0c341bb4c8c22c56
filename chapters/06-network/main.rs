//! `cargo run --example 06-network -- COMMAND`

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use podlab::error::{finish, Result};
use podlab::kernel::{self, in_network_namespace, Capture, Netlink};
use podlab::narrate;
use podlab::network::{
    join_nodes, read_vxlan, runner, say_hello, Attachment, Ipam, Mode, Namespaces, Network,
};

/// Level 6: networks for containers. Every pod gets an address of its own
/// and reaches every other pod, on any node, without NAT. On a node: a
/// bridge with the node's pod subnet, and for each pod a veth pair, one end
/// the pod's eth0, the other plugged into the bridge. Between nodes:
/// routes. Each run makes network namespaces of its own that play the
/// nodes and the pods (never touching this machine's network), proves the
/// path with a real TCP connection, and removes everything.
#[derive(Parser)]
#[command(
    name = "06-network",
    after_help = "Examples (as root):\n  \
        cargo run --example 06-network -- one-node\n  \
        cargo run --example 06-network -- two-nodes\n  \
        cargo run --example 06-network -- two-nodes --mode vxlan\n  \
        cargo run --example 06-network -- leftovers\n\n\
        Compare with ip(8), in a namespace of your own: unshare -n sh -c 'ip link add br0 type bridge; ip -d link'"
)]
struct Args {
    #[command(subcommand)]
    command: Command,

    /// Tell nothing of the netlink messages sent, only the results.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// One node, two pods on its bridge; pod one says hello to pod two.
    OneNode,
    /// What a node that dies leaves behind, and CNI 1.1's GC that frees it:
    /// three pods get networks through our CNI plugin (this program, run as
    /// a runtime runs a plugin, under the name podlab-cni); two of them
    /// vanish with no DEL; GC, told the one still valid, frees the rest.
    Leftovers,
    /// Two nodes joined by a wire; a pod on node 1 says hello to a pod on
    /// node 2, and back.
    TwoNodes {
        /// routes: each node routes the other's pod subnet to it (flannel's
        /// host-gw); vxlan: inside UDP, through an overlay (flannel's vxlan),
        /// and the first frame of it on the wire is shown.
        #[arg(long, value_enum, default_value_t = Mode::Routes)]
        mode: Mode,
    },
}

/// The name this program answers to as a CNI plugin (the `type` of the
/// configurations the leftovers example writes).
const PLUGIN_NAME: &str = "podlab-cni";

fn main() -> ExitCode {
    // Run under the plugin's name (a link to this program in a CNI_PATH
    // directory), this program is the plugin.
    let called = std::env::args_os().next().map(std::path::PathBuf::from);
    if called.as_deref().and_then(Path::file_name).is_some_and(|name| name == PLUGIN_NAME) {
        return podlab::network::cni::serve_as_plugin();
    }
    let args = Args::parse();
    narrate::set_quiet(args.quiet);
    finish("06-network", run(args.command))
}

fn run(command: Command) -> Result<ExitCode> {
    kernel::require_root("network namespaces and devices are made by root")?;
    let mut namespaces = Namespaces::new()?;
    let network = |subnet: &str, state: &str| -> Result<Network> {
        Ok(Network {
            bridge: "cni0".into(),
            subnet: subnet.parse()?,
            mtu: 1500,
            state: namespaces.dir.join(state),
            options: Default::default(),
        })
    };
    match command {
        Command::OneNode => {
            let net = network("10.244.1.0/24", "ipam")?;
            let node = namespaces.make("node")?;
            let (one, two) = (namespaces.make("pod-one")?, namespaces.make("pod-two")?);
            let a = in_network_namespace(&node, || net.attach("one", &one, "eth0"))?;
            let b = in_network_namespace(&node, || net.attach("two", &two, "eth0"))?;
            println!("node: bridge {} with {}/{}", net.bridge, net.subnet.gateway(), net.subnet.prefix);
            describe("one", &a);
            describe("two", &b);
            routes("node", &node)?;
            hello("one", &one, "two", &two, b.address)?;
        }
        Command::Leftovers => leftovers(&mut namespaces)?,
        Command::TwoNodes { mode } => {
            let (mut net1, mut net2) =
                (network("10.244.1.0/24", "ipam-1")?, network("10.244.2.0/24", "ipam-2")?);
            (net1.mtu, net2.mtu) = (mode.pod_mtu(), mode.pod_mtu());
            let (node1, node2) = (namespaces.make("node1")?, namespaces.make("node2")?);
            let (pod1, pod2) = (namespaces.make("pod1")?, namespaces.make("pod2")?);
            let a = in_network_namespace(&node1, || net1.attach("pod1", &pod1, "eth0"))?;
            let b = in_network_namespace(&node2, || net2.attach("pod2", &pod2, "eth0"))?;
            let wire = (Ipv4Addr::new(172, 31, 254, 1), Ipv4Addr::new(172, 31, 254, 2));
            join_nodes(&node1, &node2, wire, (net1.subnet, net2.subnet), mode)?;
            describe("pod1 (node1)", &a);
            describe("pod2 (node2)", &b);
            routes("node1", &node1)?;
            routes("node2", &node2)?;
            // Watched on node 1's end of the wire while the pods talk.
            let capture = in_network_namespace(&node1, || {
                let index = Netlink::open()?.index_of("wire0")?.unwrap_or_default();
                Capture::start("wire0", index)
            })?;
            hello("pod1", &pod1, "pod2", &pod2, b.address)?;
            hello("pod2", &pod2, "pod1", &pod1, a.address)?;
            if mode == Mode::Vxlan {
                let frames = capture.frames(std::time::Duration::from_secs(2));
                match frames.iter().find_map(|frame| read_vxlan(frame)) {
                    Some(first) => println!("the first of it on node1's wire0: {first}"),
                    None => println!("no VXLAN packet was seen on node1's wire0"),
                }
            }
        }
    }
    drop(namespaces);
    Ok(ExitCode::SUCCESS)
}

/// The leftovers a crash makes, and GC.
fn leftovers(namespaces: &mut Namespaces) -> Result<()> {
    // The plugin is this very program, under the plugin's name.
    let plugin =
        std::env::current_exe().map_err(|e| podlab::error::Error::new(format!("where am I? {e}")))?;
    let (net_d, bin) = (namespaces.dir.join("net.d"), namespaces.dir.join("bin"));
    kernel::mkdir_all(&net_d)?;
    kernel::mkdir_all(&bin)?;
    kernel::symlink(&plugin, &bin.join(PLUGIN_NAME))?;
    let config = serde_json::json!({
        "cniVersion": "1.1.0", "name": "pods",
        "plugins": [{"type": PLUGIN_NAME, "bridge": "cni0",
                     "ipam": {"type": "host-local", "subnet": "10.244.1.0/24", "dataDir": namespaces.dir.join("ipam")}}],
    });
    kernel::write_file(&net_d.join("10-pods.conflist"), &config.to_string())?;
    let list = runner::pick_config(&net_d)?;
    let runtime = runner::Runtime { plugin_dirs: vec![bin], cache_dir: namespaces.dir.join("cache") };
    let node = namespaces.make("node")?;
    let mut pods = Vec::new();
    for name in ["a", "b", "c"] {
        let pod = namespaces.make(&format!("pod-{name}"))?;
        let attachment = runner::Pod { container_id: name, netns: &pod, ifname: "eth0" };
        let result = in_network_namespace(&node, || runtime.add(&list, &attachment))?;
        println!("pod {name}: ADD gave eth0 {}", result["ips"][0]["address"].as_str().unwrap_or("?"));
        pods.push(pod);
    }
    let held = |what: &str| -> Result<()> {
        let ipam = Ipam::open(&namespaces.dir.join("ipam/pods"), "10.244.1.0/24".parse()?)?;
        let owners: Vec<String> =
            ipam.reservations()?.into_iter().map(|(ip, owner)| format!("{ip} ({owner})")).collect();
        println!("{what}: the node's IPAM holds {}", owners.join(", "));
        Ok(())
    };
    held("three pods")?;
    // The node dies: pods b and c are gone, and nobody called DEL.
    for pod in &pods[1..] {
        kernel::remove_network_namespace(pod)?;
    }
    held("pods b and c gone without DEL")?;
    let valid = [runner::Pod { container_id: "a", netns: &pods[0], ifname: "eth0" }];
    in_network_namespace(&node, || runtime.gc(&list, &valid))?;
    held("after GC, told that only pod a is valid")?;
    Ok(())
}

fn describe(pod: &str, attached: &Attachment) {
    println!(
        "pod {pod}: eth0 {}/{}, default route via {}; its veth's other end on the node: {}",
        attached.address, attached.prefix, attached.gateway, attached.host_veth
    );
}

/// A node's routing table, as `ip route` shows it.
fn routes(name: &str, node: &Path) -> Result<()> {
    let routes = in_network_namespace(node, || Netlink::open()?.routes())?;
    println!("{name}'s routes:");
    for route in routes {
        let to = route.destination.map_or("default".to_string(), |(ip, prefix)| format!("{ip}/{prefix}"));
        let via = route.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        let device = route.device.map(|d| format!(" dev {d}")).unwrap_or_default();
        println!("  {to}{via}{device}");
    }
    Ok(())
}

fn hello(from_name: &str, from: &Path, to_name: &str, to: &Path, address: Ipv4Addr) -> Result<()> {
    let answer = say_hello(from, to, address)?;
    println!("{from_name} -> {to_name} ({address}:7000, TCP): {answer}");
    Ok(())
}
