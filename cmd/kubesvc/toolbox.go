package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"kubesvc/internal/toolbox"
)

func newToolboxCommand() *cobra.Command {
	var lines []string
	for _, n := range toolbox.Names() {
		lines = append(lines, fmt.Sprintf("  %-15s %s", n, toolbox.Apps()[n].Usage))
	}
	return &cobra.Command{
		Use:                "toolbox APP [args...]",
		Short:              "Run a built-in workload (the images luksa/kubia, agnhost, pause, ...)",
		Long:               "Built-in workloads, used as container images and by tests:\n" + strings.Join(lines, "\n"),
		DisableFlagParsing: true,
		Args:               cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "-h" || args[0] == "--help" {
				return cmd.Help()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return toolbox.Run(ctx, args, os.Stdout, os.Stderr)
		},
	}
}
