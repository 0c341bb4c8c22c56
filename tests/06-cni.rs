//! Level 6's CNI plugin, run as container runtimes run plugins: a program
//! with CNI_* in its environment and the network's configuration on stdin,
//! in the node's network namespace (here one the test makes). Compared
//! with Debian's reference plugins (bridge and host-local, in
//! /usr/lib/cni) on the same configuration; tried with malformed input,
//! each answered with the specification's error JSON and nothing half made.

mod common;
#[path = "common/containerd.rs"]
mod containerd;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use podlab::kernel::{in_network_namespace, Netlink};
use podlab::network::Namespaces;
use serde_json::{json, Value};

const REFERENCE: &str = "/usr/lib/cni";

fn needs_root(test: &str) -> bool {
    common::can_run(
        test,
        (!nix::unistd::geteuid().is_root())
            .then(|| "it makes network namespaces, which needs root".to_string()),
    )
}

fn needs_reference(test: &str) -> bool {
    needs_root(test)
        && common::can_run(
            test,
            (!Path::new(REFERENCE).join("bridge").exists()).then(|| {
                "the reference CNI plugins are not installed (apt-get install containernetworking-plugins)"
                    .to_string()
            }),
        )
}

fn ours() -> PathBuf {
    common::example("06-cni")
}

/// What a plugin said: its exit status and its stdout, as JSON if it is.
struct Said {
    code: Option<i32>,
    stdout: String,
}

impl Said {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }
}

/// Runs `program` as a runtime runs a plugin, in the node's namespace:
/// `env` as its CNI_* variables (only those), `config` on its stdin.
fn plugin(program: &Path, node: &Path, env: &[(&str, &str)], config: &str) -> Said {
    let output = in_network_namespace(node, || {
        let mut child = Command::new(program)
            .env_clear()
            .env("CNI_PATH", REFERENCE)
            // The reference plugins run iptables, found on the PATH.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), config.as_bytes()).unwrap();
        Ok(child.wait_with_output().unwrap())
    })
    .unwrap();
    Said { code: output.status.code(), stdout: String::from_utf8_lossy(&output.stdout).into_owned() }
}

fn add_env<'a>(id: &'a str, netns: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", id), ("CNI_NETNS", netns), ("CNI_IFNAME", "eth0")]
}

fn config(kind: &str, data_dir: &Path, version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "pods",
        "type": kind,
        "bridge": "cni0",
        "isGateway": true,
        "ipam": {
            "type": "host-local",
            "subnet": "10.244.1.0/24",
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": data_dir,
        },
    })
}

/// What a pod's namespace holds, as netlink reads it back: its links, the
/// IPv4 addresses of eth0, its default route's gateway.
fn pod_view(pod: &Path) -> (Vec<String>, Vec<(IpAddr, u8)>, Option<IpAddr>) {
    in_network_namespace(pod, || {
        let netlink = Netlink::open()?;
        let mut links = netlink.links()?;
        links.sort();
        let addresses = match netlink.index_of("eth0")? {
            Some(_) => netlink.addresses("eth0")?.into_iter().filter(|(ip, _)| ip.is_ipv4()).collect(),
            None => Vec::new(),
        };
        let gateway = netlink.routes()?.into_iter().find(|r| r.destination.is_none()).and_then(|r| r.gateway);
        Ok((links, addresses, gateway))
    })
    .unwrap()
}

/// The node's veth ends (by their kind of name, both plugins' "veth...").
fn node_veths(node: &Path) -> usize {
    in_network_namespace(node, || {
        Ok(Netlink::open()?.links()?.iter().filter(|l| l.starts_with("veth")).count())
    })
    .unwrap()
}

/// The result's meaning: interface names and which are in the sandbox,
/// addresses with gateways, routes (a route with no gateway goes via the
/// address's).
fn meaning(result: &Value) -> Value {
    let gateway = result["ips"][0]["gateway"].clone();
    let sandboxes: Vec<Value> = result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("sandbox").is_some_and(|s| s.as_str() != Some("")))
        .map(|i| i["name"].clone())
        .collect();
    let routes: Vec<Value> = result["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"dst": r["dst"], "gw": if r["gw"].is_null() { gateway.clone() } else { r["gw"].clone() }}))
        .collect();
    json!({
        "interfaces": result["interfaces"].as_array().unwrap().len(),
        "in the sandbox": sandboxes,
        "ips": result["ips"].as_array().unwrap().iter().map(|i| json!([i["address"], i["gateway"]])).collect::<Vec<_>>(),
        "routes": routes,
        "cniVersion": result["cniVersion"],
    })
}

/// The same configuration through the reference bridge + host-local and
/// through ours, each on a node of its own: results equal in meaning, the
/// pods' namespaces the same as netlink reads them back, CHECK content with
/// what ADD made, and after DEL the same nothing (a second DEL too).
#[test]
fn ours_and_the_reference_bridge_make_the_same_network() {
    if !needs_reference("ours_and_the_reference_bridge_make_the_same_network") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let mut seen = Vec::new();
    for (name, program) in [("reference", Path::new(REFERENCE).join("bridge")), ("ours", ours())] {
        let node = namespaces.make(&format!("node-{name}")).unwrap();
        let pod = namespaces.make(&format!("pod-{name}")).unwrap();
        let data = namespaces.dir.join(format!("ipam-{name}"));
        let config = config(if name == "ours" { "podlab-bridge" } else { "bridge" }, &data, "1.0.0");
        let netns = pod.to_str().unwrap();
        let added = plugin(&program, &node, &add_env("pod-a", netns), &config.to_string());
        assert_eq!(added.code, Some(0), "{name} ADD: {}", added.stdout);
        let result = added.json();
        let view = pod_view(&pod);
        let mut checked_config = config.clone();
        checked_config["prevResult"] = result.clone();
        let mut check = add_env("pod-a", netns);
        check[0].1 = "CHECK";
        let checked = plugin(&program, &node, &check, &checked_config.to_string());
        assert_eq!(checked.code, Some(0), "{name} CHECK: {}", checked.stdout);
        assert_eq!(node_veths(&node), 1, "{name}: one veth end on the node");
        let mut del = add_env("pod-a", netns);
        del[0].1 = "DEL";
        for time in ["first", "second"] {
            let deleted = plugin(&program, &node, &del, &config.to_string());
            assert_eq!(deleted.code, Some(0), "{name} {time} DEL: {}", deleted.stdout);
        }
        let after = (pod_view(&pod), node_veths(&node), reservations(&data.join("pods")));
        seen.push((name, meaning(&result), view, after));
    }
    let (ours, reference) = (&seen[1], &seen[0]);
    assert_eq!(ours.1, reference.1, "the results' meaning: ours (left), the reference's (right)");
    assert_eq!(ours.2, reference.2, "the pod after ADD: ours (left), the reference's (right)");
    assert_eq!(ours.3, reference.3, "after DEL: ours (left), the reference's (right)");
    assert_eq!(ours.3, ((vec!["lo".to_string()], vec![], None), 0, vec![]), "nothing left");
}

/// A plugin's configuration as an entry of a configuration list, which
/// gives the version for all its plugins.
fn in_a_list(mut config: Value) -> Value {
    config.as_object_mut().unwrap().remove("cniVersion");
    config
}

/// The owners of the node's masquerade rules (their comments), sorted.
fn masquerade_owners(node: &Path) -> Vec<String> {
    let rules = in_network_namespace(node, || podlab::kernel::Nftables::open()?.masquerade_rules()).unwrap();
    let mut owners: Vec<String> = rules.into_iter().map(|(owner, _)| owner).collect();
    owners.sort();
    owners
}

/// The addresses a host-local-style directory holds.
fn reservations(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.parse::<std::net::Ipv4Addr>().is_ok());
    names.sort();
    names
}

/// Malformed input, each answered with the specification's error JSON
/// (its cniVersion, a code, a message) and a failing exit status, with
/// nothing made: no veth on the node, no address reserved.
#[test]
fn malformed_input_gets_the_specs_errors_and_nothing_is_made() {
    if !needs_root("malformed_input_gets_the_specs_errors_and_nothing_is_made") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let pod = namespaces.make("pod").unwrap();
    // A pod that has an eth0 already.
    let taken = namespaces.make("taken").unwrap();
    in_network_namespace(&taken, || Netlink::open()?.add_veth("eth0", "other0")).unwrap();
    let data = namespaces.dir.join("ipam");
    let good = config("podlab-bridge", &data, "1.1.0");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut config = good.clone();
        edit(&mut config);
        config.to_string()
    };
    let netns = pod.to_str().unwrap().to_string();
    let not_netns = namespaces.dir.join("ipam-not-a-netns");
    std::fs::write(&not_netns, "").unwrap();
    let env = |command: &str, netns: &str, ifname: &str| -> Vec<(String, String)> {
        vec![
            ("CNI_COMMAND".into(), command.into()),
            ("CNI_CONTAINERID".into(), "bad".into()),
            ("CNI_NETNS".into(), netns.into()),
            ("CNI_IFNAME".into(), ifname.into()),
        ]
    };
    let add = |netns: &str| env("ADD", netns, "eth0");
    let with_id = |netns: &str, id: &str| -> Vec<(String, String)> {
        let mut env = add(netns);
        env[1].1 = id.to_string();
        env
    };
    type Case = (&'static str, Vec<(String, String)>, String, u32);
    let cases: Vec<Case> = vec![
        ("stdin that is not JSON", add(&netns), "{ not json".into(), 6),
        ("an empty stdin", add(&netns), String::new(), 6),
        ("no cniVersion", add(&netns), with(&|c| drop(c.as_object_mut().unwrap().remove("cniVersion"))), 7),
        ("an unknown cniVersion", add(&netns), with(&|c| c["cniVersion"] = json!("9.9.9")), 1),
        ("an older cniVersion", add(&netns), with(&|c| c["cniVersion"] = json!("0.3.1")), 1),
        ("no name", add(&netns), with(&|c| drop(c.as_object_mut().unwrap().remove("name"))), 7),
        ("a name that climbs", add(&netns), with(&|c| c["name"] = json!("..")), 7),
        ("no type", add(&netns), with(&|c| drop(c.as_object_mut().unwrap().remove("type"))), 7),
        ("no ipam", add(&netns), with(&|c| drop(c.as_object_mut().unwrap().remove("ipam"))), 7),
        ("another ipam type", add(&netns), with(&|c| c["ipam"]["type"] = json!("dhcp")), 2),
        ("no subnet", add(&netns), with(&|c| drop(c["ipam"].as_object_mut().unwrap().remove("subnet"))), 7),
        (
            "a subnet that does not parse",
            add(&netns),
            with(&|c| c["ipam"]["subnet"] = json!("10.244.1/33")),
            7,
        ),
        ("a bridge name too long", add(&netns), with(&|c| c["bridge"] = json!("a-bridge-name-too-long")), 7),
        ("a netns that does not exist", add("/tmp/podlab-no-such-netns"), good.to_string(), 3),
        ("a netns that is not one", add(not_netns.to_str().unwrap()), good.to_string(), 3),
        ("an ifname too long", env("ADD", &netns, "an-ifname-too-long"), good.to_string(), 4),
        ("an ifname with a slash", env("ADD", &netns, "eth/0"), good.to_string(), 4),
        ("an ifname taken already", add(taken.to_str().unwrap()), good.to_string(), 5),
        ("no CNI_COMMAND", add(&netns).into_iter().skip(1).collect(), good.to_string(), 4),
        ("an unknown CNI_COMMAND", env("MAKE", &netns, "eth0"), good.to_string(), 4),
        (
            "no CNI_CONTAINERID",
            add(&netns).into_iter().filter(|(k, _)| k != "CNI_CONTAINERID").collect(),
            good.to_string(),
            4,
        ),
        (
            "no CNI_NETNS",
            add(&netns).into_iter().filter(|(k, _)| k != "CNI_NETNS").collect(),
            good.to_string(),
            4,
        ),
        (
            "no CNI_IFNAME",
            add(&netns).into_iter().filter(|(k, _)| k != "CNI_IFNAME").collect(),
            good.to_string(),
            4,
        ),
        (
            "hairpin and promiscuous at once",
            add(&netns),
            with(&|c| {
                c["hairpinMode"] = json!(true);
                c["promiscMode"] = json!(true)
            }),
            7,
        ),
        (
            "a range that starts late",
            add(&netns),
            with(&|c| c["ipam"]["rangeStart"] = json!("10.244.1.100")),
            2,
        ),
        (
            "a gateway not the first address",
            add(&netns),
            with(&|c| c["ipam"]["gateway"] = json!("10.244.1.254")),
            2,
        ),
        (
            "two ranges",
            add(&netns),
            with(
                &|c| c["ipam"] = json!({"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "10.244.2.0/24"}]]}),
            ),
            2,
        ),
        ("a bridge that is not the gateway", add(&netns), with(&|c| c["isGateway"] = json!(false)), 2),
        ("ipMasq that is not a boolean", add(&netns), with(&|c| c["ipMasq"] = json!("yes")), 7),
        ("a container id with a space", with_id(&netns, "a b"), good.to_string(), 4),
        ("a container id that climbs", with_id(&netns, "../a"), good.to_string(), 4),
        ("CHECK without prevResult", env("CHECK", &netns, "eth0"), good.to_string(), 7),
    ];
    assert!(cases.len() >= 20);
    for (case, env, stdin, code) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let said = plugin(&ours(), &node, &env, &stdin);
        assert_ne!(said.code, Some(0), "{case}: succeeded: {}", said.stdout);
        let error = said.json();
        assert_eq!(error["code"], json!(code), "{case}: {error}");
        assert!(error["msg"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {error}");
        assert!(error["cniVersion"].as_str().is_some(), "{case}: {error}");
        assert_eq!(node_veths(&node), 0, "{case}: a veth was left on the node");
        assert!(reservations(&data.join("pods")).is_empty(), "{case}: an address was left reserved");
    }
    assert_eq!(pod_view(&pod).0, ["lo"], "nothing was made in the pod");
}

/// VERSION names the versions spoken; a DEL after the pod's namespace is
/// gone still frees everything on the node's side (its masquerade rule
/// too); GC frees what no valid attachment holds (rules included); STATUS says code 50 once the range is exhausted.
#[test]
fn version_del_without_netns_gc_and_status() {
    if !needs_root("version_del_without_netns_gc_and_status") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let data = namespaces.dir.join("ipam");
    let mut config = config("podlab-bridge", &data, "1.1.0");
    config["ipMasq"] = json!(true);
    let masqueraded = || masquerade_owners(&node);
    let version = plugin(&ours(), &node, &[("CNI_COMMAND", "VERSION")], &config.to_string());
    assert_eq!(
        version.json(),
        json!({"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]})
    );
    // Asked in a newer version than ours (as a newer libcni asks), or with
    // nothing on stdin, VERSION still answers: it is how a runtime learns.
    for stdin in [r#"{"cniVersion": "9.9.9"}"#, ""] {
        let version = plugin(&ours(), &node, &[("CNI_COMMAND", "VERSION")], stdin);
        assert_eq!(version.code, Some(0), "VERSION with {stdin:?}: {}", version.stdout);
        assert_eq!(version.json()["supportedVersions"], json!(["0.4.0", "1.0.0", "1.1.0"]));
    }

    let gone = namespaces.make("gone").unwrap();
    let kept = namespaces.make("kept").unwrap();
    for (id, pod) in [("gone", &gone), ("kept", &kept), ("stale", &namespaces.make("stale").unwrap())] {
        let added = plugin(&ours(), &node, &add_env(id, pod.to_str().unwrap()), &config.to_string());
        assert_eq!(added.code, Some(0), "{}", added.stdout);
    }
    assert_eq!(reservations(&data.join("pods")).len(), 3);
    podlab::kernel::remove_network_namespace(&gone).unwrap();
    let del = [
        ("CNI_COMMAND", "DEL"),
        ("CNI_CONTAINERID", "gone"),
        ("CNI_NETNS", gone.to_str().unwrap()),
        ("CNI_IFNAME", "eth0"),
    ];
    let deleted = plugin(&ours(), &node, &del, &config.to_string());
    assert_eq!(deleted.code, Some(0), "{}", deleted.stdout);
    assert_eq!(reservations(&data.join("pods")), ["10.244.1.3", "10.244.1.4"]);
    assert_eq!(masqueraded(), ["pods: kept eth0", "pods: stale eth0"], "the gone pod's rule went with DEL");

    config["cni.dev/valid-attachments"] = json!([{"containerID": "kept", "ifname": "eth0"}]);
    let collected = plugin(&ours(), &node, &[("CNI_COMMAND", "GC")], &config.to_string());
    assert_eq!(collected.code, Some(0), "{}", collected.stdout);
    assert_eq!(reservations(&data.join("pods")), ["10.244.1.3"], "only the valid attachment's");
    assert_eq!(node_veths(&node), 1, "the stale pod's veth end went with its address");
    assert_eq!(masqueraded(), ["pods: kept eth0"], "and its masquerade rule");

    let small = |c: &mut Value| c["ipam"]["subnet"] = json!("10.244.9.0/30");
    let mut tiny = config.clone();
    small(&mut tiny);
    tiny["ipam"]["dataDir"] = json!(namespaces.dir.join("ipam-tiny"));
    let ready = plugin(&ours(), &node, &[("CNI_COMMAND", "STATUS")], &tiny.to_string());
    assert_eq!(ready.code, Some(0), "{}", ready.stdout);
    let one = namespaces.make("one").unwrap();
    assert_eq!(
        plugin(&ours(), &node, &add_env("one", one.to_str().unwrap()), &tiny.to_string()).code,
        Some(0)
    );
    let status = plugin(&ours(), &node, &[("CNI_COMMAND", "STATUS")], &tiny.to_string());
    assert_eq!(status.json()["code"], json!(50), "{}", status.stdout);
    let two = namespaces.make("two").unwrap();
    let refused = plugin(&ours(), &node, &add_env("two", two.to_str().unwrap()), &tiny.to_string());
    assert_eq!(refused.json()["code"], json!(11), "an exhausted range: try again later: {}", refused.stdout);
}

/// 50 ADDs at once get 50 different addresses and 50 masquerade rules;
/// 50 DELs free them all, and nothing is left on the node.
#[test]
fn fifty_adds_at_once_get_fifty_addresses() {
    if !needs_root("fifty_adds_at_once_get_fifty_addresses") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let pods: Vec<PathBuf> = (0..50).map(|n| namespaces.make(&format!("pod-{n}")).unwrap()).collect();
    let data = namespaces.dir.join("ipam");
    let mut config = config("podlab-bridge", &data, "1.1.0");
    config["ipMasq"] = json!(true);
    let config = config.to_string();
    let rules = || masquerade_owners(&node);
    let run_all = |command: &'static str| -> Vec<Said> {
        std::thread::scope(|scope| {
            let runs: Vec<_> = pods
                .iter()
                .enumerate()
                .map(|(n, pod)| {
                    let (node, config) = (&node, &config);
                    scope.spawn(move || {
                        let id = format!("pod-{n}");
                        let env = [
                            ("CNI_COMMAND", command),
                            ("CNI_CONTAINERID", &id),
                            ("CNI_NETNS", pod.to_str().unwrap()),
                            ("CNI_IFNAME", "eth0"),
                        ];
                        plugin(&ours(), node, &env, config)
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        })
    };
    let added = run_all("ADD");
    let mut addresses: Vec<String> = added
        .iter()
        .map(|said| {
            assert_eq!(said.code, Some(0), "{}", said.stdout);
            said.json()["ips"][0]["address"].as_str().unwrap().to_string()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 50);
    assert_eq!(node_veths(&node), 50);
    assert_eq!(rules().len(), 50, "a masquerade rule each");
    for said in run_all("DEL") {
        assert_eq!(said.code, Some(0), "{}", said.stdout);
    }
    assert!(reservations(&data.join("pods")).is_empty());
    assert_eq!(node_veths(&node), 0);
    assert!(rules().is_empty());
}

/// The runner, playing the container runtime: of a `net.d` directory it
/// takes the configuration list that sorts first, finds each plugin by its
/// type, and runs the chain: theirs before ours (loopback), ours, theirs
/// after ours (bandwidth, which shapes the pod's traffic with tc and an
/// ifb device), each given the result so far. ADD's result is cached as
/// libcni caches it; CHECK passes; DEL runs the chain backwards and leaves
/// nothing, cache included.
#[test]
fn the_runner_runs_the_first_configuration_as_a_chain_with_theirs() {
    if !needs_reference("the_runner_runs_the_first_configuration_as_a_chain_with_theirs") {
        return;
    }
    use podlab::network::runner::{pick_config, Pod, Runtime};
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let pod = namespaces.make("pod").unwrap();
    let net_d = namespaces.dir.join("net.d");
    let bin = namespaces.dir.join("bin");
    std::fs::create_dir_all(&net_d).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(ours(), bin.join("podlab-bridge")).unwrap();
    let ours_config = in_a_list(config("podlab-bridge", &namespaces.dir.join("ipam"), "1.0.0"));
    let chain = json!({
        "cniVersion": "1.0.0",
        "name": "pods",
        "plugins": [
            {"type": "loopback"},
            ours_config,
            {"type": "bandwidth", "ingressRate": 1_000_000, "ingressBurst": 100_000, "egressRate": 1_000_000, "egressBurst": 100_000},
        ],
    });
    std::fs::write(net_d.join("10-pods.conflist"), chain.to_string()).unwrap();
    std::fs::write(
        net_d.join("20-later.conflist"),
        r#"{"cniVersion": "1.0.0", "name": "later", "plugins": [{"type": "no-such-plugin"}]}"#,
    )
    .unwrap();
    std::fs::write(net_d.join("00-notes.txt"), "not a configuration").unwrap();
    let list = pick_config(&net_d).unwrap();
    assert_eq!((list.name.as_str(), list.plugins.len()), ("pods", 3), "the first of the configurations");
    let runtime = Runtime {
        plugin_dirs: vec![bin.clone(), PathBuf::from(REFERENCE)],
        cache_dir: namespaces.dir.join("cache"),
    };
    let attachment = Pod { container_id: "pod-a", netns: &pod, ifname: "eth0" };

    let result = in_network_namespace(&node, || runtime.add(&list, &attachment)).unwrap();
    let names: Vec<&str> =
        result["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "lo", "loopback's first: {result}");
    assert_eq!(&names[1..4], ["cni0", podlab::network::host_veth_name("pod-a", "eth0").as_str(), "eth0"]);
    assert!(names.len() == 5 && names[4].starts_with("bwp"), "bandwidth's ifb device last: {names:?}");
    let ours_address =
        result["ips"].as_array().unwrap().iter().find(|ip| ip["interface"] == json!(3)).unwrap();
    assert_eq!(ours_address["address"], json!("10.244.1.2/24"));
    let cached = namespaces.dir.join("cache/results/pods-pod-a-eth0");
    let cache: Value = serde_json::from_str(&std::fs::read_to_string(&cached).unwrap()).unwrap();
    assert_eq!(cache["result"], result);
    let shaped = in_network_namespace(&node, || {
        Ok(Netlink::open()?.links()?.iter().filter(|l| l.starts_with("bwp")).count())
    })
    .unwrap();
    assert_eq!(shaped, 1, "bandwidth's ifb device on the node");
    assert_eq!(pod_view(&pod).1, [(IpAddr::V4("10.244.1.2".parse().unwrap()), 24)]);

    in_network_namespace(&node, || runtime.check(&list, &attachment)).unwrap();
    in_network_namespace(&node, || runtime.del(&list, &attachment)).unwrap();
    assert!(!cached.exists(), "the cached result goes with DEL");
    let left = in_network_namespace(&node, || Netlink::open()?.links()).unwrap();
    assert!(!left.iter().any(|l| l.starts_with("veth") || l.starts_with("bwp")), "{left:?}");
    assert_eq!(pod_view(&pod).0, ["lo"]);
    assert!(reservations(&namespaces.dir.join("ipam/pods")).is_empty());
    let said = in_network_namespace(&node, || runtime.check(&list, &attachment)).unwrap_err().to_string();
    assert!(said.contains("no cached result"), "{said}");
}

/// libcni, built from Debian's source of it: the Go library containerd,
/// CRI-O and cnitool call plugins with (`tests/peers/libcni`, a tool of a
/// few lines around it, builds in a second), run in a node's namespace
/// with our plugin as `podlab-bridge` and the reference plugins.
struct Libcni {
    program: PathBuf,
    plugins: String,
    cache: PathBuf,
    node: PathBuf,
}

impl Libcni {
    fn build(scratch: &Path, node: &Path) -> Libcni {
        let gopath = scratch.join("gopath");
        std::fs::create_dir_all(gopath.join("src")).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/libcni");
        std::os::unix::fs::symlink(source, gopath.join("src/libcni")).unwrap();
        let program = scratch.join("libcni");
        let built = Command::new("go")
            .args(["build", "-o"])
            .arg(&program)
            .arg("libcni")
            .env("GOPATH", format!("{}:{LIBCNI_SOURCE}", gopath.display()))
            .env("GO111MODULE", "off")
            .env("GOCACHE", scratch.join("gocache"))
            .status()
            .expect("go runs");
        assert!(built.success(), "the libcni tool does not build");
        let bin = scratch.join("libcni-bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(ours(), bin.join("podlab-bridge")).unwrap();
        Libcni {
            program,
            plugins: format!("{}:{REFERENCE}", bin.display()),
            cache: scratch.join("libcni-cache"),
            node: node.to_path_buf(),
        }
    }

    /// libcni's `command` (validate, add, check, del) of the chain in
    /// `conflist` for the pod whose namespace is `pod`, with kubelet's
    /// capability arguments `capabilities`: whether it succeeded, its
    /// stdout, its stderr.
    fn run(
        &self,
        command: &str,
        conflist: &Path,
        pod: &Path,
        capabilities: &Value,
    ) -> (bool, String, String) {
        let output = in_network_namespace(&self.node, || {
            Ok(Command::new(&self.program)
                .args([command, conflist.to_str().unwrap(), "pod-a", pod.to_str().unwrap(), "eth0"])
                .env("CNI_PATH", &self.plugins)
                .env("CNI_CACHE_DIR", &self.cache)
                .env("CNI_CAPABILITY_ARGS", capabilities.to_string())
                // The reference plugins run iptables, found on the PATH.
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .output()
                .unwrap())
        })
        .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (output.status.success(), text(&output.stdout), text(&output.stderr))
    }
}

const LIBCNI_SOURCE: &str = "/usr/share/gocode";

fn needs_libcni(test: &str) -> bool {
    needs_reference(test)
        && common::can_run(
            test,
            (!Path::new(LIBCNI_SOURCE).join("src/github.com/containernetworking/cni/libcni").exists()
                || Command::new("go").arg("version").stdout(Stdio::null()).status().is_err())
            .then(|| "libcni's source or Go is not installed (apt-get install golang-go golang-github-appc-cni-dev)".to_string()),
        )
}

/// Our plugin run by libcni, as containerd and CRI-O run it, in a chain
/// with the reference loopback before it and tuning after it (which
/// changes the MAC of the interface our result names): for each version
/// libcni speaks, the chain validates (libcni asks each plugin's VERSION),
/// ADD's result is one libcni parses, CHECK passes with the cached result,
/// and DEL leaves nothing: no veth, no address, no cache.
#[test]
fn libcni_runs_ours_in_a_chain() {
    if !needs_libcni("libcni_runs_ours_in_a_chain") {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let libcni = Libcni::build(&namespaces.dir, &node);
    for version in ["0.4.0", "1.0.0"] {
        let pod = namespaces.make(&format!("pod-{version}")).unwrap();
        let data = namespaces.dir.join(format!("ipam-{version}"));
        let ours_config = in_a_list(config("podlab-bridge", &data, version));
        let chain = json!({
            "cniVersion": version,
            "name": "pods",
            "plugins": [
                {"type": "loopback"},
                ours_config,
                // tuning keeps what it changed in its dataDir (by default in /run/cni).
                {"type": "tuning", "mac": "c2:00:00:00:06:06", "dataDir": namespaces.dir.join("tuning")},
            ],
        });
        let conflist = namespaces.dir.join(format!("{version}.conflist"));
        std::fs::write(&conflist, chain.to_string()).unwrap();
        let run = |command: &str| libcni.run(command, &conflist, &pod, &json!({}));
        let validated = run("validate");
        assert!(validated.0, "{version}: validate: {}", validated.2);
        let added = run("add");
        assert!(added.0, "{version}: ADD: {}", added.2);
        let result: Value = serde_json::from_str(&added.1).unwrap();
        assert_eq!(result["cniVersion"], json!(version));
        let eth0 =
            result["interfaces"].as_array().unwrap().iter().find(|i| i["name"] == json!("eth0")).unwrap();
        assert_eq!(eth0["mac"], json!("c2:00:00:00:06:06"), "{version}: tuning changed eth0's MAC: {result}");
        assert_eq!(pod_view(&pod).1, [(IpAddr::V4("10.244.1.2".parse().unwrap()), 24)], "{version}");
        let mac = in_network_namespace(&pod, || Netlink::open()?.mac_of("eth0")).unwrap();
        assert_eq!(mac, [0xc2, 0, 0, 0, 6, 6], "{version}: the pod's eth0 as tuning left it");
        let checked = run("check");
        assert!(checked.0, "{version}: CHECK: {}", checked.2);
        for time in ["first", "second"] {
            let deleted = run("del");
            assert!(deleted.0, "{version}: {time} DEL: {}", deleted.2);
        }
        assert_eq!(pod_view(&pod).0, ["lo"], "{version}: eth0 is gone");
        assert_eq!(node_veths(&node), 0, "{version}: the node's end is gone");
        assert!(reservations(&data.join("pods")).is_empty(), "{version}: the address is free");
        let cached = std::fs::read_dir(libcni.cache.join("results")).map(|d| d.count()).unwrap_or(0);
        assert_eq!(cached, 0, "{version}: libcni's cache is empty");
    }
}

/// How long a connection that should work may take: a new bridge port
/// forwards only once the kernel has seen its carrier come up (link
/// events are handled up to a second late), so a first SYN may be lost
/// and sent again a second later.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The peer of a connection `listener` (non-blocking) has taken, waiting
/// for it up to [`PATIENCE`]: the client's connect returns when the
/// server's answer reaches it, a moment before its last ACK reaches the
/// server.
fn accepted(listener: &std::net::TcpListener) -> Option<std::net::SocketAddr> {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Ok((_, peer)) = listener.accept() {
            return Some(peer);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// A wire from the node (`uplink`, 198.51.100.1) to a namespace playing
/// the world beyond it (`eth0`, 198.51.100.2), which has no route to the
/// pods.
fn wire_to_the_world(node: &Path, world: &Path) {
    in_network_namespace(node, || {
        let netlink = Netlink::open()?;
        netlink.add_veth_across("uplink", "eth0", world)?;
        netlink.add_address("uplink", "198.51.100.1".parse().unwrap(), 24)?;
        netlink.set_up("uplink")
    })
    .unwrap();
    in_network_namespace(world, || {
        let netlink = Netlink::open()?;
        netlink.add_address("eth0", "198.51.100.2".parse().unwrap(), 24)?;
        netlink.set_up("eth0")?;
        netlink.set_up("lo")
    })
    .unwrap();
}

/// The reference portmap plugin chained after ours, run by libcni with
/// kubelet's port mapping (the node's port 8080 to the pod's 80): a
/// client in the world connects to the node's port and reaches the pod's
/// server, which sees the client's own address. After DEL the node's port
/// leads nowhere, and nothing of either plugin is left.
#[test]
fn portmap_after_ours_forwards_the_nodes_port_to_the_pod() {
    if !needs_libcni("portmap_after_ours_forwards_the_nodes_port_to_the_pod") {
        return;
    }
    use std::net::{TcpListener, TcpStream};
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let world = namespaces.make("world").unwrap();
    let pod = namespaces.make("pod").unwrap();
    wire_to_the_world(&node, &world);
    let libcni = Libcni::build(&namespaces.dir, &node);
    let ours_config = in_a_list(config("podlab-bridge", &namespaces.dir.join("ipam"), "1.0.0"));
    let chain = json!({
        "cniVersion": "1.0.0",
        "name": "pods",
        "plugins": [ours_config, {"type": "portmap", "capabilities": {"portMappings": true}}],
    });
    let conflist = namespaces.dir.join("pods.conflist");
    std::fs::write(&conflist, chain.to_string()).unwrap();
    let ports = json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]});
    let added = libcni.run("add", &conflist, &pod, &ports);
    assert!(added.0, "ADD: {}", added.2);

    let server = in_network_namespace(&pod, || Ok(TcpListener::bind("0.0.0.0:80").unwrap())).unwrap();
    server.set_nonblocking(true).unwrap();
    let node_port = "198.51.100.1:8080".parse().unwrap();
    let reached =
        in_network_namespace(&world, || Ok(TcpStream::connect_timeout(&node_port, PATIENCE).is_ok()))
            .unwrap();
    assert!(reached, "the world reached the node's port 8080");
    let client = accepted(&server).expect("the pod's server took the connection");
    assert_eq!(client.ip().to_string(), "198.51.100.2", "the pod sees the client's own address");

    let deleted = libcni.run("del", &conflist, &pod, &ports);
    assert!(deleted.0, "DEL: {}", deleted.2);
    let reached =
        in_network_namespace(&world, || Ok(TcpStream::connect_timeout(&node_port, PATIENCE).is_ok()))
            .unwrap();
    assert!(!reached, "after DEL the node's port leads nowhere");
    assert_eq!(node_veths(&node), 0);
    assert!(reservations(&namespaces.dir.join("ipam/pods")).is_empty());
}

/// ipMasq, hairpinMode and promiscMode as the reference bridge plugin
/// has them. The node has a wire to the world (another namespace, which
/// has no route to the pods); a pod connects to a server there, and the
/// server sees the node's address (masqueraded): with both plugins, and
/// not at all without ipMasq (the answer has no way back). The pod's
/// port on the bridge hairpins and the bridge is promiscuous. A DEL after
/// the pod's namespace is gone still removes our masquerade rule.
#[test]
fn masquerade_hairpin_and_promiscuous_as_the_reference() {
    if !needs_reference("masquerade_hairpin_and_promiscuous_as_the_reference") {
        return;
    }
    use std::net::{SocketAddr, TcpListener, TcpStream};
    let mut namespaces = Namespaces::new().unwrap();
    let server: SocketAddr = "198.51.100.2:8080".parse().unwrap(); // in the world
    let reference = Path::new(REFERENCE).join("bridge");
    // Hairpin with masquerade, a promiscuous bridge without: the two modes
    // cannot go together.
    let runs = [(&reference, true), (&reference, false), (&ours(), true), (&ours(), false)];
    for (program, masquerade) in runs {
        let name = if program == &reference { "reference" } else { "ours" };
        let case = format!("{name}, ipMasq {masquerade}");
        let tag = format!("{name}-{masquerade}");
        let node = namespaces.make(&format!("node-{tag}")).unwrap();
        let world = namespaces.make(&format!("world-{tag}")).unwrap();
        let pod = namespaces.make(&format!("pod-{tag}")).unwrap();
        wire_to_the_world(&node, &world);
        let listener = in_network_namespace(&world, || Ok(TcpListener::bind(server).unwrap())).unwrap();
        let mut config = config(
            if name == "ours" { "podlab-bridge" } else { "bridge" },
            &namespaces.dir.join(format!("ipam-{tag}")),
            "1.0.0",
        );
        config["ipMasq"] = json!(masquerade);
        config["hairpinMode"] = json!(masquerade);
        config["promiscMode"] = json!(!masquerade);
        let added = plugin(program, &node, &add_env("pod-a", pod.to_str().unwrap()), &config.to_string());
        assert_eq!(added.code, Some(0), "{case} ADD: {}", added.stdout);
        let modes = in_network_namespace(&node, || {
            let netlink = Netlink::open()?;
            let port = netlink.links()?.into_iter().find(|l| l.starts_with("veth")).unwrap();
            Ok((netlink.hairpins(&port)?, netlink.is_promiscuous("cni0")?))
        })
        .unwrap();
        assert_eq!(
            modes,
            (masquerade, !masquerade),
            "{case}: whether the pod's port hairpins, the bridge is promiscuous"
        );

        listener.set_nonblocking(true).unwrap();
        // Without masquerade the answer never comes: a short wait says so.
        let wait = if masquerade { PATIENCE } else { std::time::Duration::from_millis(1500) };
        let connected =
            in_network_namespace(&pod, || Ok(TcpStream::connect_timeout(&server, wait).is_ok())).unwrap();
        assert_eq!(connected, masquerade, "{case}: the pod reached the world");
        if masquerade {
            let peer = accepted(&listener).expect("the world's server took the connection");
            assert_eq!(peer.ip().to_string(), "198.51.100.1", "{case}: the world sees the node's address");
        }
        if name == "ours" {
            let rules = || masquerade_owners(&node);
            assert_eq!(rules().len(), usize::from(masquerade), "{case}: one rule for the pod");
            podlab::kernel::remove_network_namespace(&pod).unwrap();
            let del = [
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "pod-a"),
                ("CNI_NETNS", pod.to_str().unwrap()),
                ("CNI_IFNAME", "eth0"),
            ];
            let deleted = plugin(program, &node, &del, &config.to_string());
            assert_eq!(deleted.code, Some(0), "{case} DEL: {}", deleted.stdout);
            assert!(rules().is_empty(), "{case}: the rule went with DEL, the pod's namespace gone");
            assert_eq!(node_veths(&node), 0, "{case}");
        }
    }
}

/// Our plugin run by containerd's CRI plugin, as a node of Kubernetes runs
/// it: a containerd of the test's own, in a namespace playing the node,
/// with ours (and the reference loopback, which containerd runs for every
/// pod) in its CNI directory. A CRI client, as kubelet, asks for a pod's
/// sandbox: containerd makes the pod's network namespace, runs ours (ADD),
/// and reports the address ours gave; the pod's eth0 has it. Stopping the
/// sandbox runs DEL: the address is free, the veth gone.
#[test]
fn containerd_runs_ours_through_its_cri_plugin() {
    let test = "containerd_runs_ours_through_its_cri_plugin";
    if !common::needs_root_and_busybox(test)
        || !needs_reference(test)
        || !common::can_run(test, containerd::missing_tools())
    {
        return;
    }
    let mut namespaces = Namespaces::new().unwrap();
    let node = namespaces.make("node").unwrap();
    let dir = namespaces.dir.clone();
    let rootfs = dir.join("rootfs");
    let built = common::run(
        Command::new(common::example("01-chroot")).arg("--rootfs").arg(&rootfs).args(["-q", "true"]),
    );
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    let image = "podlab.test/pause:1";
    containerd::oci_image(&rootfs, image, &["sleep", "100000"], &dir.join("pause.tar"));
    let (bin, net_d) = (dir.join("bin"), dir.join("net.d"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&net_d).unwrap();
    std::os::unix::fs::symlink(ours(), bin.join("podlab-bridge")).unwrap();
    std::os::unix::fs::symlink(Path::new(REFERENCE).join("loopback"), bin.join("loopback")).unwrap();
    let data = dir.join("ipam");
    let plugin_config = in_a_list(config("podlab-bridge", &data, "1.0.0"));
    let list = json!({"cniVersion": "1.0.0", "name": "pods", "plugins": [plugin_config]});
    std::fs::write(net_d.join("10-pods.conflist"), list.to_string()).unwrap();

    let settings = containerd::CriSettings { cni_bin: &bin, cni_conf: &net_d, sandbox_image: image };
    let containerd = containerd::Containerd::start(&dir, Some(&settings), Some(&node));
    let imported = containerd.ctr(&["image", "import", dir.join("pause.tar").to_str().unwrap()]);
    assert_eq!(imported.code, Some(0), "import: {}\n{}", imported.stderr, containerd.log());
    let mut cri = containerd::Cri::connect(&containerd.socket()).unwrap();
    let sandbox = k8s_cri::v1::PodSandboxConfig {
        metadata: Some(k8s_cri::v1::PodSandboxMetadata {
            name: "pod-a".into(),
            uid: "uid-a".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "pod-a".into(),
        log_directory: dir.join("logs").to_str().unwrap().into(),
        linux: Some(k8s_cri::v1::LinuxPodSandboxConfig {
            cgroup_parent: format!("/{}", containerd.pods_cgroup),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = cri.run_pod(sandbox).unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", containerd.log()));
    let (status, info) = cri.pod_status(&id).unwrap();
    let network = status.network.unwrap_or_default();
    assert_eq!(network.ip, "10.244.1.2", "the address ours gave, as containerd reports it");
    assert_eq!(reservations(&data.join("pods")), ["10.244.1.2"]);
    let owner = std::fs::read_to_string(data.join("pods/10.244.1.2")).unwrap();
    assert_eq!(owner.trim(), format!("{id} eth0"), "held by the sandbox's id and eth0");
    assert_eq!(node_veths(&node), 1);
    // The pod's network namespace, from the sandbox's OCI spec.
    let info: Value = serde_json::from_str(&info["info"]).unwrap();
    let netns = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == json!("network"))
        .and_then(|n| n["path"].as_str())
        .map(PathBuf::from)
        .unwrap();
    let (links, addresses, gateway) = pod_view(&netns);
    assert_eq!(links, ["eth0", "lo"]);
    assert_eq!(addresses, [(IpAddr::V4("10.244.1.2".parse().unwrap()), 24)]);
    assert_eq!(gateway, Some(IpAddr::V4("10.244.1.1".parse().unwrap())));

    cri.stop(&id).unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", containerd.log()));
    assert!(reservations(&data.join("pods")).is_empty(), "DEL freed the address");
    assert_eq!(node_veths(&node), 0, "DEL took the veth away");
    cri.remove(&id).unwrap();
    assert!(!netns.exists(), "containerd removed the pod's network namespace");
}
