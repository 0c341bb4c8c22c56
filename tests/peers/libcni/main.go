// A container runtime's CNI calls, made by libcni itself (the Go library
// that containerd, CRI-O and cnitool use), for tests/06-cni.rs to run our
// plugin the way those runtimes run it.
//
//	libcni validate|add|check|del CONFLIST CONTAINER-ID NETNS IFNAME
//
// Plugins are found in CNI_PATH; results are cached in CNI_CACHE_DIR. The
// arguments kubelet passes (CNI_ARGS) are passed too, and the capability
// arguments in CNI_CAPABILITY_ARGS (JSON: {"portMappings": [...]}, as
// kubelet's port mappings reach libcni). add prints the result as libcni
// parsed it; validate prints the versions the chain's plugins speak.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 6 {
		fail(fmt.Errorf("usage: libcni validate|add|check|del CONFLIST CONTAINER-ID NETNS IFNAME"))
	}
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	runtime := &libcni.RuntimeConf{
		ContainerID: os.Args[3],
		NetNS:       os.Args[4],
		IfName:      os.Args[5],
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", "pod-a"},
			{"K8S_POD_INFRA_CONTAINER_ID", os.Args[3]},
		},
	}
	if capabilities := os.Getenv("CNI_CAPABILITY_ARGS"); capabilities != "" {
		if err := json.Unmarshal([]byte(capabilities), &runtime.CapabilityArgs); err != nil {
			fail(err)
		}
	}
	ctx := context.Background()
	switch os.Args[1] {
	case "validate":
		versions, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			fail(err)
		}
		out, _ := json.Marshal(versions)
		fmt.Println(string(out))
	case "add":
		result, err := cni.AddNetworkList(ctx, list, runtime)
		if err != nil {
			fail(err)
		}
		if err := result.Print(); err != nil {
			fail(err)
		}
	case "check":
		err = cni.CheckNetworkList(ctx, list, runtime)
	case "del":
		err = cni.DelNetworkList(ctx, list, runtime)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
