//! `scripts/bench network`: ADD, then DEL, of one pod's network through our
//! CNI plugin and through Debian's reference plugins (bridge, which runs
//! host-local), each run by level 6's runner as a runtime runs them, in one
//! run, interleaved, with medians and their ratio, beside what the kernel
//! alone takes to delete a veth pair (the floor of any DEL); and 50 ADDs at
//! once through each. Everything in network namespaces made for the run. A
//! measurement to read, not a test.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use podlab::error::{finish, Error, Result};
use podlab::kernel::{self, in_network_namespace, Netlink};
use podlab::narrate;
use podlab::network::runner::{ConfigList, Pod, Runtime};
use podlab::network::{plug, Attachment, Namespaces};
use podlab::timing::{median, ms, report};

/// Time a pod's network made and removed by ours and by the reference plugins.
#[derive(Parser)]
#[command(name = "06-network-bench")]
struct Args {
    /// How many ADD and DEL of each to time (after two to warm up).
    #[arg(long, default_value_t = 30)]
    runs: usize,
}

const REFERENCE: &str = "/usr/lib/cni";
/// How long a pod's network is left before its DEL.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

fn main() -> ExitCode {
    let args = Args::parse();
    narrate::set_quiet(true);
    finish("06-network-bench", bench(args))
}

fn bench(args: Args) -> Result<ExitCode> {
    kernel::require_root("network namespaces and devices are made by root")?;
    let ours =
        std::env::current_exe().map_err(|e| Error::new(format!("where am I? {e}")))?.with_file_name("06-cni");
    if !ours.exists() {
        return Err(Error::new("06-cni is not built beside this program: run scripts/bench network"));
    }
    let reference = Path::new(REFERENCE).join("bridge");
    if !reference.exists() {
        return Err(Error::new(
            "the reference plugins are missing: apt-get install containernetworking-plugins",
        ));
    }
    let mut namespaces = Namespaces::new()?;
    // Run as a runtime runs them: by the runner, each plugin found by its type.
    let bin = namespaces.dir.join("bin");
    kernel::mkdir_all(&bin)?;
    kernel::symlink(&ours, &bin.join("podlab-cni"))?;
    let runtime =
        Runtime { plugin_dirs: vec![bin, PathBuf::from(REFERENCE)], cache_dir: namespaces.dir.join("cache") };
    let names = ["podlab", "bridge+host-local"];
    let lists: Vec<ConfigList> = ["podlab-cni", "bridge"]
        .iter()
        .enumerate()
        .map(|(which, kind)| ConfigList {
            file: PathBuf::new(),
            name: format!("bench-{which}"),
            version: "1.0.0".to_string(),
            plugins: vec![serde_json::json!({
                "type": kind, "bridge": "cni0", "isGateway": true,
                "ipam": {"type": "host-local", "subnet": "10.244.1.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": namespaces.dir.join("ipam")},
            })],
        })
        .collect();
    let mut nodes = Vec::new();
    for which in 0..lists.len() {
        nodes.push((namespaces.make(&format!("node-{which}"))?, namespaces.make(&format!("pod-{which}"))?));
    }
    let (mut adds, mut dels) = (vec![Vec::new(); lists.len()], vec![Vec::new(); lists.len()]);
    let mut kernel_alone = Vec::new();
    for round in 0..args.runs + 2 {
        for (which, list) in lists.iter().enumerate() {
            let (node, pod) = &nodes[which];
            let pod = Pod { container_id: "bench", netns: pod, ifname: "eth0" };
            let started = Instant::now();
            in_network_namespace(node, || runtime.add(list, &pod))?;
            let added = started.elapsed();
            // A pod lives a while: the kernel's work after ADD (RCU grace
            // periods, link events) is done before its DEL, as in life.
            std::thread::sleep(SETTLE);
            let started = Instant::now();
            in_network_namespace(node, || runtime.del(list, &pod))?;
            if round >= 2 {
                adds[which].push(added);
                dels[which].push(started.elapsed());
            }
        }
        // What no plugin can go below: the kernel deleting a pod's veth
        // pair plugged as ADD plugs it (one RTM_DELLINK, no program
        // started, nothing else done), on the node whose bridge ours made.
        let (node, pod) = &nodes[0];
        let plugged = Attachment {
            address: "10.244.1.250".parse().expect("an address"),
            prefix: 24,
            gateway: "10.244.1.1".parse().expect("an address"),
            host_veth: "vethfloor".to_string(),
        };
        in_network_namespace(pod, || plug::plug_pod(&Netlink::open()?, &plugged, "eth0", 1500, node))?;
        in_network_namespace(node, || plug::plug_node(&Netlink::open()?, "vethfloor", "cni0", 1500))?;
        std::thread::sleep(SETTLE);
        let deleted = in_network_namespace(pod, || {
            let netlink = Netlink::open()?;
            let started = Instant::now();
            netlink.delete_link("eth0")?;
            Ok(started.elapsed())
        })?;
        if round >= 2 {
            kernel_alone.push(deleted);
        }
        eprint!("\rround {}/{}", round + 1, args.runs + 2);
    }
    eprintln!();
    report("ADD of one pod's network", &names, &adds, &[]);
    println!();
    dels.push(kernel_alone);
    let with_floor = [names[0], names[1], "the kernel alone"];
    let note = ["", "", "deleting a pod's veth pair, plugged as ADD plugs it (RTM_DELLINK)"];
    report("DEL of it", &with_floor, &dels, &note);
    // Each plugin's own part of a pod's life: its ADD and DEL, less what
    // the kernel alone takes to delete the veth.
    let floor = ms(median(&dels[2]));
    let own: Vec<f64> = (0..2).map(|w| ms(median(&adds[w])) + ms(median(&dels[w])) - floor).collect();
    println!(
        "\nADD and DEL beyond the kernel's veth deletion: {} {:.2}ms, {} {:.2}ms, {} ÷ {} {:.2}",
        names[0],
        own[0],
        names[1],
        own[1],
        names[0],
        names[1],
        own[0] / own[1]
    );

    // 50 pods at once on each node.
    println!("\n50 ADDs at once, then 50 DELs at once:");
    for (which, list) in lists.iter().enumerate() {
        let (node, _) = &nodes[which];
        let pods: Vec<PathBuf> =
            (0..50).map(|n| namespaces.make(&format!("many-{which}-{n}"))).collect::<Result<_>>()?;
        let mut took = Vec::new();
        for del in [false, true] {
            let started = Instant::now();
            std::thread::scope(|scope| -> Result<()> {
                let runs: Vec<_> = pods
                    .iter()
                    .enumerate()
                    .map(|(n, pod)| {
                        let (runtime, node) = (&runtime, node);
                        scope.spawn(move || {
                            let id = format!("pod-{n}");
                            let pod = Pod { container_id: &id, netns: pod, ifname: "eth0" };
                            in_network_namespace(node, || match del {
                                false => runtime.add(list, &pod).map(drop),
                                true => runtime.del(list, &pod),
                            })
                        })
                    })
                    .collect();
                runs.into_iter().try_for_each(|r| r.join().map_err(|_| Error::new("a run panicked"))?)
            })?;
            took.push(started.elapsed());
        }
        println!("{:<18} ADD {:>8.1}ms   DEL {:>8.1}ms", names[which], ms(took[0]), ms(took[1]));
    }
    drop(namespaces);
    Ok(ExitCode::SUCCESS)
}
