//! `06-cni`: level 6's network as a CNI plugin. A container runtime runs
//! it with CNI_COMMAND and the rest in the environment and the network's
//! configuration on stdin; it answers on stdout, and tells what it does on
//! stderr. Install it in a CNI_PATH directory under the name its
//! configuration's `type` gives (`podlab-cni`, say). (`06-network`
//! itself is this plugin too when run under the name `podlab-cni`.)

use std::process::ExitCode;

use podlab::network::cni;

fn main() -> ExitCode {
    // Asked as a program rather than by a runtime: say what this is.
    if std::env::var_os("CNI_COMMAND").is_none() && std::env::args().len() > 1 {
        println!(
            "06-cni: level 6's network as a CNI plugin (CNI {}).\n\
             A runtime runs it with CNI_COMMAND=ADD|DEL|CHECK|VERSION|GC|STATUS, CNI_CONTAINERID,\n\
             CNI_NETNS and CNI_IFNAME set, and the network's configuration on stdin, e.g.\n  \
             {{\"cniVersion\": \"1.1.0\", \"name\": \"pods\", \"type\": \"podlab-cni\", \"bridge\": \"cni0\",\n   \
             \"ipam\": {{\"type\": \"host-local\", \"subnet\": \"10.244.1.0/24\"}}}}",
            cni::SUPPORTED.join(", ")
        );
        return ExitCode::SUCCESS;
    }
    cni::serve_as_plugin()
}
