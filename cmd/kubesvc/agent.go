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
	cmd := &cobra.Command{
		Use:   "agent --server URL --token TOKEN",
		Short: "Run a node: register it, run the pods bound to it (each in its own network namespace)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Load(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
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
