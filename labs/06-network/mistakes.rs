//! Level 6's mistakes: what each looks like from outside, and the hint for
//! it. `cargo lab 6` shows the hint of the first one a scenario shows;
//! labs/06-network/fixtures/ holds a wrong solution for each of several.

use crate::Mistake;
use crate::Symptom::{NoneAfter, Says};

pub const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "pod-end-down",
        scenarios: &[],
        shows_as: Says("(the default route) go via"),
        hint: "the kernel refused the default route: a gateway must be reachable on a link that is up, and \
               the pod's interface was still down (a new device is; RTM_NEWLINK with IFF_UP, pod.set_up)",
    },
    Mistake {
        name: "gateway-given",
        scenarios: &[],
        shows_as: Says("eth0 10.244.1.1/"),
        hint: "a pod got the subnet's second address, which is the gateway's: the bridge has it, and the \
               pods send everything for other subnets to it. The usable addresses start at the third",
    },
    Mistake {
        name: "not-in-bridge",
        scenarios: &[],
        shows_as: NoneAfter("make veth pair", "into bridge"),
        hint: "the veth's end on the node was never plugged into the bridge, so the pod's cable leads \
               nowhere: RTM_NEWLINK setting its master (node.set_master(host, bridge))",
    },
    Mistake {
        name: "no-default-route",
        scenarios: &["two-nodes", "two-nodes-vxlan"],
        shows_as: Says("Network is unreachable (os error"),
        hint: "the pod reaches its own subnet but nothing beyond it: with no default route it has nowhere \
               to send a packet for another node's pods. Add one via the gateway (pod.add_route(None, \
               Some(gateway), None))",
    },
];
