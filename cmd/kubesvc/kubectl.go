package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

// defaultKubeconfig is the server's admin kubeconfig under the default data dir.
const defaultKubeconfig = "/var/lib/kubesvc/admin.kubeconfig"

// runKubectl runs the real kubectl with args. Without KUBECONFIG (and without --kubeconfig),
// it uses the local server's admin kubeconfig, as k3s does.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" && !hasKubeconfigFlag(args) {
		path := defaultKubeconfig
		if dir := os.Getenv("KUBESVC_DATA_DIR"); dir != "" {
			path = filepath.Join(dir, "admin.kubeconfig")
		}
		if _, err := os.Stat(path); err == nil {
			os.Setenv("KUBECONFIG", path)
		}
	}
	os.Args = append([]string{"kubectl"}, args...)
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
		return 1
	}
	return 0
}

func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || len(a) > 13 && a[:13] == "--kubeconfig=" {
			return true
		}
	}
	return false
}

// newKubectlCommand only documents `kubesvc kubectl` in help; main dispatches it before cobra.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl [args...]",
		Short:              "Run kubectl (k8s.io/kubectl " + "v1.37.2" + ") against the local cluster",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			os.Exit(runKubectl(args))
			return nil
		},
	}
}
