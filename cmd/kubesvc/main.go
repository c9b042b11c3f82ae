// Command kubesvc is the Kubernetes Service layer in one binary: `kubesvc server` (API server,
// etcd, controllers), `kubesvc agent` (a node) and `kubesvc kubectl` (the real kubectl).
package main

import (
	"os"

	"github.com/spf13/cobra"
)

func main() {
	// `kubesvc kubectl ...` hands all arguments to kubectl untouched (its own flag parsing).
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Exit(runKubectl(os.Args[2:]))
	}
	root := &cobra.Command{
		Use:           "kubesvc",
		Short:         "Kubernetes Services — API server, controllers, node agent, proxy and DNS in one binary",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServerCommand(), newKubectlCommand(), newAgentCommand(), newToolboxCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
