//! `scripts/bench network`: ADD then DEL of one pod's network through our
//! CNI plugin and through Debian's reference plugins (bridge, which runs
//! host-local), in one run, interleaved, with medians and their ratio; and
//! 50 ADDs at once through each. Everything in network namespaces made for
//! the run. A measurement to read, not a test.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use podlab::error::{finish, Error, Result};
use podlab::kernel::{self, in_network_namespace};
use podlab::narrate;
use podlab::network::Namespaces;

/// Time a pod's network made and removed by ours and by the reference plugins.
#[derive(Parser)]
#[command(name = "06-network-bench")]
struct Args {
    /// How many ADD and DEL of each to time (after two to warm up).
    #[arg(long, default_value_t = 30)]
    runs: usize,
}

const REFERENCE: &str = "/usr/lib/cni";

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
    let plugins = [("podlab", ours), ("bridge+host-local", reference)];
    let mut nodes = Vec::new();
    for (which, _) in plugins.iter().enumerate() {
        nodes.push((namespaces.make(&format!("node-{which}"))?, namespaces.make(&format!("pod-{which}"))?));
    }
    let dir = namespaces.dir.clone();
    let config = |which: usize, kind: &str| {
        serde_json::json!({
            "cniVersion": "1.0.0", "name": "bench", "type": kind, "bridge": "cni0", "isGateway": true,
            "ipam": {"type": "host-local", "subnet": "10.244.1.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": dir.join(format!("ipam-{which}"))},
        })
        .to_string()
    };
    let mut times = vec![Vec::new(); plugins.len()];
    for round in 0..args.runs + 2 {
        for (which, (_, program)) in plugins.iter().enumerate() {
            let (node, pod) = &nodes[which];
            let config = config(which, if which == 0 { "podlab-bridge" } else { "bridge" });
            let started = Instant::now();
            for command in ["ADD", "DEL"] {
                run(program, node, command, "bench", pod, &config)?;
            }
            if round >= 2 {
                times[which].push(started.elapsed());
            }
        }
        eprint!("\rround {}/{}", round + 1, args.runs + 2);
    }
    eprintln!();
    let medians: Vec<Duration> = times.iter().map(|t| median(t)).collect();
    println!("ADD then DEL of one pod's network, {} runs each, interleaved:", args.runs);
    println!("{:<18} {:>10} {:>10} {:>14}", "", "median", "fastest", "podlab ÷ it");
    for (which, (name, _)) in plugins.iter().enumerate() {
        let fastest = times[which].iter().min().copied().unwrap_or_default();
        let ratio = medians[0].as_secs_f64() / medians[which].as_secs_f64();
        println!("{name:<18} {:>8.2}ms {:>8.2}ms {ratio:>14.2}", ms(medians[which]), ms(fastest));
    }

    // 50 pods at once on each node.
    println!("\n50 ADDs at once, then 50 DELs at once:");
    for (which, (name, program)) in plugins.iter().enumerate() {
        let (node, _) = &nodes[which];
        let pods: Vec<PathBuf> =
            (0..50).map(|n| namespaces.make(&format!("many-{which}-{n}"))).collect::<Result<_>>()?;
        let config = config(which, if which == 0 { "podlab-bridge" } else { "bridge" });
        let mut took = Vec::new();
        for command in ["ADD", "DEL"] {
            let started = Instant::now();
            std::thread::scope(|scope| -> Result<()> {
                let runs: Vec<_> = pods
                    .iter()
                    .enumerate()
                    .map(|(n, pod)| {
                        let (program, node, config) = (program, node, &config);
                        scope.spawn(move || run(program, node, command, &format!("pod-{n}"), pod, config))
                    })
                    .collect();
                runs.into_iter().try_for_each(|r| r.join().map_err(|_| Error::new("a run panicked"))?)
            })?;
            took.push(started.elapsed());
        }
        println!("{name:<18} ADD {:>8.1}ms   DEL {:>8.1}ms", ms(took[0]), ms(took[1]));
    }
    drop(namespaces);
    Ok(ExitCode::SUCCESS)
}

/// Runs a plugin as a runtime does, in the node's namespace; fails if it does.
fn run(program: &Path, node: &Path, command: &str, id: &str, pod: &Path, config: &str) -> Result<()> {
    let output = in_network_namespace(node, || {
        let mut child = Command::new(program)
            .env_clear()
            .env("CNI_PATH", REFERENCE)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", pod)
            .env("CNI_IFNAME", "eth0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::new(format!("{program:?} could not be started: {e}")))?;
        let mut stdin = child.stdin.take().ok_or_else(|| Error::new("no stdin"))?;
        std::io::Write::write_all(&mut stdin, config.as_bytes())
            .map_err(|e| Error::new(format!("stdin: {e}")))?;
        drop(stdin);
        child.wait_with_output().map_err(|e| Error::new(format!("waiting: {e}")))
    })?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "{program:?} {command} failed: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        )));
    }
    Ok(())
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}
