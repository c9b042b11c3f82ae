package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"kubesvc/internal/server"
)

func newServerCommand() *cobra.Command {
	cfg := server.NewConfig()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API server on etcd, the controllers and (unless --disable-agent) a node agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := server.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			select {
			case <-ctx.Done():
				fmt.Fprintln(os.Stderr, "kubesvc: shutting down")
				return nil
			case err := <-s.Err():
				return err
			}
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}
