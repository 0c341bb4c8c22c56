//! The Container Network Interface: what the course's net-script with its
//! ADD and DEL sections became once it was written down. A plugin is a
//! program a container runtime runs: what to do in `CNI_COMMAND` (ADD, DEL,
//! CHECK, VERSION, and since 1.1 GC and STATUS), for which container
//! (`CNI_CONTAINERID`), in which network namespace (`CNI_NETNS`), with
//! which interface name (`CNI_IFNAME`); the network's configuration as JSON
//! on stdin. It answers with JSON on stdout: the result (interfaces,
//! addresses, routes), or an error with a code the specification lists.
//!
//! This plugin is level 6's bridge network behind that interface: the
//! bridge plugin's job and host-local's (addresses on disk), in one.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{holder, host_veth_name, Ipam, Network, Options, Subnet};
use crate::kernel::{in_network_namespace, mac_text, Netlink};

/// The versions of the specification this plugin speaks.
pub const SUPPORTED: &[&str] = &["0.4.0", "1.0.0", "1.1.0"];

/// An error as the specification has it: a code, a message, details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

/// The specification's error codes.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const UNDECODABLE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
}

fn error(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
    CniError { code, msg: msg.into(), details: details.into() }
}

impl CniError {
    /// The error as JSON, in the version the request asked for.
    pub fn to_json(&self, version: &str) -> String {
        json!({"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details})
            .to_string()
    }
}

/// One run of the plugin: the environment's variables and stdin's config.
pub struct Request {
    pub command: String,
    pub container_id: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub config: Value,
    /// The version the config asks for (the answer is in it).
    pub version: String,
}

impl Request {
    /// Reads a request from the environment (`variable`) and stdin. The
    /// version is read first, so that even an error about the rest can be
    /// answered in the version that was asked for.
    pub fn read(
        variable: impl Fn(&str) -> Option<String>,
        stdin: &str,
    ) -> (String, Result<Request, CniError>) {
        let config: Result<Value, CniError> = serde_json::from_str(stdin).map_err(|e| {
            error(code::UNDECODABLE, "the network configuration on stdin is not JSON", e.to_string())
        });
        let asked = config.as_ref().ok().and_then(|c| c["cniVersion"].as_str()).map(String::from);
        let version =
            asked.clone().filter(|v| SUPPORTED.contains(&v.as_str())).unwrap_or_else(|| "1.1.0".to_string());
        let request = (|| {
            let command = variable("CNI_COMMAND").filter(|c| !c.is_empty()).ok_or_else(|| {
                error(
                    code::INVALID_ENVIRONMENT,
                    "CNI_COMMAND is not set",
                    "say ADD, DEL, CHECK, VERSION, GC or STATUS",
                )
            })?;
            if !["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"].contains(&command.as_str()) {
                return Err(error(
                    code::INVALID_ENVIRONMENT,
                    format!("CNI_COMMAND {command:?} is not a CNI command"),
                    "say ADD, DEL, CHECK, VERSION, GC or STATUS",
                ));
            }
            // VERSION is how a runtime learns what to send, so it is
            // answered whatever stdin holds (libcni asks in its own newest
            // version, which may be newer than ours).
            if command == "VERSION" {
                let config = config.unwrap_or(Value::Null);
                let (netns, container_id, ifname) = Default::default();
                return Ok(Request {
                    command,
                    container_id,
                    netns,
                    ifname,
                    config,
                    version: version.clone(),
                });
            }
            let config = config?;
            match asked.as_deref() {
                None => {
                    return Err(error(
                        code::INVALID_CONFIG,
                        "the network configuration has no cniVersion",
                        "add \"cniVersion\": \"1.1.0\"",
                    ))
                }
                Some(v) if !SUPPORTED.contains(&v) => {
                    return Err(error(
                        code::INCOMPATIBLE_VERSION,
                        format!("this plugin does not speak CNI {v}"),
                        format!("it speaks {}", SUPPORTED.join(", ")),
                    ))
                }
                _ => {}
            }
            let per_container = ["ADD", "DEL", "CHECK"].contains(&command.as_str());
            let needed = |name: &str| -> Result<String, CniError> {
                match variable(name).filter(|v| !v.is_empty()) {
                    Some(value) => Ok(value),
                    None if per_container => Err(error(
                        code::INVALID_ENVIRONMENT,
                        format!("{name} is not set"),
                        format!("{command} needs it"),
                    )),
                    None => Ok(String::new()),
                }
            };
            let container_id = needed("CNI_CONTAINERID")?;
            if per_container {
                valid_container_id(&container_id)?;
            }
            let ifname = needed("CNI_IFNAME")?;
            // DEL may come after the namespace is gone, and with none at all.
            let netns = if command == "ADD" || command == "CHECK" {
                needed("CNI_NETNS")?
            } else {
                variable("CNI_NETNS").unwrap_or_default()
            };
            if per_container {
                valid_ifname(&ifname)?;
            }
            Ok(Request {
                command,
                container_id,
                netns: PathBuf::from(netns),
                ifname,
                config,
                version: version.clone(),
            })
        })();
        (version, request)
    }
}

/// A container id as the specification has it: a letter or digit, then
/// letters, digits, '_', '.' and '-' (so never a path, nor a space, which
/// separates it from the interface in the node's records).
fn valid_container_id(id: &str) -> Result<(), CniError> {
    let mut characters = id.chars();
    let fine = characters.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && characters.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match fine {
        true => Ok(()),
        false => Err(error(
            code::INVALID_ENVIRONMENT,
            format!("CNI_CONTAINERID {id:?} is not a container id"),
            "a letter or digit, then letters, digits, '_', '.' or '-'",
        )),
    }
}

/// An interface name the kernel takes: 1 to 15 bytes, no '/', no space,
/// not "." or "..".
fn valid_ifname(name: &str) -> Result<(), CniError> {
    let fine = !name.is_empty()
        && name.len() <= 15
        && !name.contains(['/', ' ', ':'])
        && name != "."
        && name != "..";
    match fine {
        true => Ok(()),
        false => Err(error(
            code::INVALID_ENVIRONMENT,
            format!("CNI_IFNAME {name:?} is not an interface name"),
            "1 to 15 bytes, no '/', ':' or space",
        )),
    }
}

/// The network this config describes: its bridge, subnet, MTU, and where
/// its addresses are kept (host-local's `dataDir`, by the network's name).
fn network_of(config: &Value) -> Result<Network, CniError> {
    let invalid = |msg: String| {
        error(code::INVALID_CONFIG, msg, "see the bridge and host-local plugins' documentation")
    };
    let name = config["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("the network configuration has no name".into()))?;
    if name.contains('/') || name == "." || name == ".." {
        return Err(invalid(format!("the network's name {name:?} cannot name a directory")));
    }
    config["type"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("the network configuration has no type".into()))?;
    let ipam = &config["ipam"];
    match ipam["type"].as_str() {
        Some("host-local") => {}
        Some(other) => {
            return Err(error(
                code::UNSUPPORTED_FIELD,
                format!("ipam type {other:?}: this plugin keeps addresses as host-local does"),
                "use \"type\": \"host-local\"",
            ))
        }
        None => return Err(invalid("the network configuration has no ipam section with a type".into())),
    }
    let subnet = ipam["subnet"]
        .as_str()
        .or(ipam["ranges"][0][0]["subnet"].as_str())
        .ok_or_else(|| invalid("the ipam section names no subnet".into()))?;
    let subnet: Subnet = subnet.parse().map_err(|e: crate::error::Error| invalid(e.to_string()))?;
    refuse_what_host_local_has_and_we_lack(ipam, subnet)?;
    let data_dir = ipam["dataDir"].as_str().unwrap_or("/var/lib/cni/networks");
    let bridge = config["bridge"].as_str().unwrap_or("cni0").to_string();
    if bridge.is_empty() || bridge.len() > 15 {
        return Err(invalid(format!("the bridge's name {bridge:?} is not an interface name")));
    }
    let mtu = config["mtu"].as_u64().unwrap_or(1500) as u32;
    let flag = |key: &str| match &config[key] {
        Value::Null => Ok(false),
        Value::Bool(on) => Ok(*on),
        other => Err(invalid(format!("{key} is {other}, not true or false"))),
    };
    if config["isGateway"] == json!(false) {
        return Err(error(
            code::UNSUPPORTED_FIELD,
            "isGateway false: on this plugin's networks the bridge is always the pods' gateway",
            "leave it out or say true",
        ));
    }
    let options = Options {
        hairpin: flag("hairpinMode")?,
        promiscuous: flag("promiscMode")?,
        masquerade: flag("ipMasq")?,
    };
    // A promiscuous bridge takes in a hairpinned frame again: each would
    // arrive twice (the reference plugin refuses the pair too).
    if options.hairpin && options.promiscuous {
        return Err(invalid("hairpinMode and promiscMode cannot both be on".into()));
    }
    Ok(Network { bridge, subnet, mtu, state: Path::new(data_dir).join(name), options })
}

/// host-local's settings this plugin does not have are refused rather
/// than ignored (a pod would get another address than the one asked for):
/// one range only, the whole subnet, its first address the gateway; and
/// the bridge is always the gateway.
fn refuse_what_host_local_has_and_we_lack(ipam: &Value, subnet: Subnet) -> Result<(), CniError> {
    let unsupported = |what: String| {
        error(
            code::UNSUPPORTED_FIELD,
            what,
            "this plugin gives a range of one whole subnet, its gateway first",
        )
    };
    let ranges = ipam["ranges"]
        .as_array()
        .map_or(0, |sets| sets.iter().map(|s| s.as_array().map_or(1, Vec::len)).sum());
    if ranges > 1 {
        return Err(unsupported(format!("ipam.ranges has {ranges} ranges; this plugin takes one")));
    }
    let range = if ipam["subnet"].is_string() { ipam } else { &ipam["ranges"][0][0] };
    for field in ["rangeStart", "rangeEnd"] {
        if !range[field].is_null() {
            return Err(unsupported(format!("ipam's {field}: this plugin gives out the whole subnet")));
        }
    }
    if let Some(gateway) = range["gateway"].as_str().filter(|g| *g != subnet.gateway().to_string()) {
        return Err(unsupported(format!(
            "ipam's gateway {gateway}: on this plugin's networks it is {}",
            subnet.gateway()
        )));
    }
    Ok(())
}

/// Whether `path` names a network namespace: a file of the nsfs file
/// system, as /proc/PID/ns/net and its bind mounts are.
fn is_network_namespace(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

// ANCHOR: run
/// Carries out a request; what to write on stdout if it succeeded.
pub fn run(request: &Request) -> Result<String, CniError> {
    match request.command.as_str() {
        "VERSION" => Ok(json!({"cniVersion": request.version, "supportedVersions": SUPPORTED}).to_string()),
        "ADD" => add(request),
        "DEL" => {
            network_of(&request.config)?
                .detach(&request.container_id, &request.netns, &request.ifname)
                .map_err(|e| {
                    error(code::IO_FAILURE, "the interface could not be taken away", e.to_string())
                })?;
            Ok(String::new())
        }
        "CHECK" => check(request),
        "GC" => collect_garbage(request),
        "STATUS" => status(request),
        other => {
            Err(error(code::INVALID_ENVIRONMENT, format!("CNI_COMMAND {other:?} is not a CNI command"), ""))
        }
    }
}
// ANCHOR_END: run

fn add(request: &Request) -> Result<String, CniError> {
    let network = network_of(&request.config)?;
    if !is_network_namespace(&request.netns) {
        return Err(error(
            code::UNKNOWN_CONTAINER,
            format!("CNI_NETNS {:?} is not a network namespace", request.netns),
            "it must name one, as /proc/PID/ns/net or /run/netns/NAME do",
        ));
    }
    let attached = network.attach(&request.container_id, &request.netns, &request.ifname).map_err(|e| {
        let exhausted = e.to_string().contains("exhausted");
        let code = if exhausted { code::TRY_AGAIN_LATER } else { code::IO_FAILURE };
        error(code, "the interface could not be made", e.to_string())
    })?;
    let macs = (|| -> crate::error::Result<_> {
        let node = Netlink::open()?;
        let pod = in_network_namespace(&request.netns, || Netlink::open()?.mac_of(&request.ifname))?;
        Ok((node.mac_of(&network.bridge)?, node.mac_of(&attached.host_veth)?, pod))
    })()
    .map_err(|e| error(code::IO_FAILURE, "the interface was made but cannot be read back", e.to_string()))?;
    // In a chain, what the plugins before made comes first, and ours is
    // added to it; the address names its interface by its place in the list.
    let mut result = match &request.config["prevResult"] {
        Value::Object(previous) => Value::Object(previous.clone()),
        _ => json!({"interfaces": [], "ips": [], "routes": [], "dns": {}}),
    };
    result["cniVersion"] = json!(request.version);
    for list in ["interfaces", "ips", "routes"] {
        if !result[list].is_array() {
            result[list] = json!([]);
        }
    }
    let interfaces = result["interfaces"].as_array_mut().expect("made an array above");
    interfaces.push(json!({"name": network.bridge, "mac": mac_text(&macs.0)}));
    interfaces.push(json!({"name": attached.host_veth, "mac": mac_text(&macs.1)}));
    interfaces.push(json!({"name": request.ifname, "mac": mac_text(&macs.2), "sandbox": request.netns}));
    let pod_interface = interfaces.len() - 1;
    let mut address = json!({
        "address": format!("{}/{}", attached.address, attached.prefix),
        "gateway": attached.gateway.to_string(),
        "interface": pod_interface,
    });
    if request.version == "0.4.0" {
        address["version"] = json!("4");
    }
    result["ips"].as_array_mut().expect("made an array above").push(address);
    let route = json!({"dst": "0.0.0.0/0", "gw": attached.gateway.to_string()});
    result["routes"].as_array_mut().expect("made an array above").push(route);
    Ok(result.to_string())
}

/// The address ADD gave `ifname` in a result: the one whose interface is
/// `ifname` in a sandbox (in a chain, other plugins may have given others).
fn address_of<'a>(result: &'a Value, ifname: &str) -> Option<&'a str> {
    let interfaces = result["interfaces"].as_array()?;
    result["ips"].as_array()?.iter().find_map(|ip| {
        let interface = &interfaces[ip["interface"].as_u64()? as usize];
        let ours =
            interface["name"] == ifname && interface["sandbox"].as_str().is_some_and(|s| !s.is_empty());
        ours.then(|| ip["address"].as_str()).flatten()
    })
}

/// CHECK: the container still has what ADD gave it (its `prevResult`).
fn check(request: &Request) -> Result<String, CniError> {
    network_of(&request.config)?;
    let previous = &request.config["prevResult"];
    let expected = address_of(previous, &request.ifname).ok_or_else(|| {
        error(
            code::INVALID_CONFIG,
            "CHECK needs the result of ADD (prevResult) to check against",
            "the runtime passes the cached result",
        )
    })?;
    if !is_network_namespace(&request.netns) {
        return Err(error(
            code::UNKNOWN_CONTAINER,
            format!("CNI_NETNS {:?} is not a network namespace", request.netns),
            "",
        ));
    }
    let found = in_network_namespace(&request.netns, || {
        let pod = Netlink::open()?;
        Ok(match pod.index_of(&request.ifname)? {
            Some(_) => pod.addresses(&request.ifname)?,
            None => Vec::new(),
        })
    })
    .map_err(|e| error(code::IO_FAILURE, "the container's interface cannot be read", e.to_string()))?;
    if !found.iter().any(|(ip, prefix)| format!("{ip}/{prefix}") == expected) {
        return Err(error(
            code::IO_FAILURE,
            format!("{} has no address {expected} any more", request.ifname),
            format!("it has {found:?}"),
        ));
    }
    let host = host_veth_name(&request.container_id, &request.ifname);
    let plugged = Netlink::open()
        .and_then(|n| n.index_of(&host))
        .map_err(|e| error(code::IO_FAILURE, "the node's links cannot be read", e.to_string()))?;
    if plugged.is_none() {
        return Err(error(code::IO_FAILURE, format!("the veth's end on the node ({host}) is gone"), ""));
    }
    Ok(String::new())
}

/// GC (CNI 1.1): every address not held by one of the valid attachments
/// the runtime lists is released, and its veth's end on the node removed.
fn collect_garbage(request: &Request) -> Result<String, CniError> {
    let valid: Vec<String> = request.config["cni.dev/valid-attachments"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|a| holder(a["containerID"].as_str().unwrap_or(""), a["ifname"].as_str().unwrap_or("")))
        .collect();
    network_of(&request.config)?
        .collect_garbage(&valid)
        .map_err(|e| error(code::IO_FAILURE, "garbage collection failed", e.to_string()))?;
    Ok(String::new())
}

/// STATUS (CNI 1.1): ready to ADD, or code 50 when the range has no free
/// address.
fn status(request: &Request) -> Result<String, CniError> {
    let network = network_of(&request.config)?;
    let used = Ipam::open(&network.state, network.subnet)
        .and_then(|ipam| ipam.reservations())
        .map_err(|e| error(code::IO_FAILURE, "the addresses in use cannot be read", e.to_string()))?
        .len() as u32;
    // All but the network's own address, the gateway and the broadcast.
    if used >= network.subnet.size() - 3 {
        return Err(error(
            code::NOT_AVAILABLE,
            format!("every address of {} is in use", network.subnet),
            "free some (DEL or GC) before the next ADD",
        ));
    }
    Ok(String::new())
}

/// A plugin's whole run, as a runtime starts it: the request read from the
/// environment and stdin, carried out, the result or the error JSON
/// printed; success or failure as the exit status.
pub fn serve_as_plugin() -> std::process::ExitCode {
    let mut stdin = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin) {
        println!("{}", error(code::IO_FAILURE, "stdin cannot be read", e.to_string()).to_json("1.1.0"));
        return std::process::ExitCode::FAILURE;
    }
    let (version, request) = Request::read(|name| std::env::var(name).ok(), &stdin);
    match request.and_then(|request| run(&request)) {
        Ok(output) => {
            if !output.is_empty() {
                println!("{output}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{}", failure.to_json(&version));
            std::process::ExitCode::FAILURE
        }
    }
}
