package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"kubesvc/internal/agent"
	"kubesvc/internal/runtime/shim"
)

func newAgentCommand() *cobra.Command {
	cfg := agent.NewConfig()
	var cleanup bool
	cmd := &cobra.Command{
		Use:   "agent --server URL --token TOKEN",
		Short: "Run a node: register it, run the pods bound to it (each in its own network namespace)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cleanup {
				return agent.CleanupProxy()
			}
			if err := cfg.Load(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cfg.Proxy.Kubeconfig != "" {
				return runServices(ctx, cfg)
			}
			a, err := agent.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer a.Close()
			select {
			case <-ctx.Done():
				fmt.Fprintln(os.Stderr, "kubesvc agent: shutting down (pods keep running)")
				return nil
			case err := <-a.Err():
				return err
			}
		},
	}
	cfg.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&cleanup, "cleanup", false, "remove everything the service proxy installed on this node (nftables table kubesvc, userspace proxy device) and exit")
	// Re-exec entry points of the pod runtime (internal/runtime/shim); not for users.
	cmd.AddCommand(&cobra.Command{
		Use: shim.ShimCommand + " DIR", Hidden: true, Args: cobra.ExactArgs(1),
		Run: func(_ *cobra.Command, args []string) { os.Exit(shim.RunShim(args[0])) },
	}, &cobra.Command{
		Use: shim.NSExecCommand, Hidden: true, Args: cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			notFound, err := shim.RunNSExec()
			fmt.Fprintf(os.Stderr, "kubesvc: %v\n", err)
			if notFound {
				os.Exit(127)
			}
			os.Exit(126)
		},
	})
	return cmd
}

// runServices runs only the node's service parts (proxy and cluster DNS) against the API
// server of --kubeconfig.
func runServices(ctx context.Context, cfg *agent.Config) error {
	s, err := agent.StartServices(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if a := s.DNSAddr(); a.IsValid() {
		fmt.Printf("kubesvc agent: cluster DNS of node %s on %s port %d\n", cfg.NodeName, a, agent.DNSPort)
	}
	select {
	case <-s.Ready():
		fmt.Printf("kubesvc agent: services of node %s synced from %s\n", cfg.NodeName, cfg.Proxy.Kubeconfig)
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}
