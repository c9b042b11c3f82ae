// Package toolbox holds the built-in workloads kubesvc runs as container "images" (DESIGN §5.2)
// and that tests use as servers: the book's luksa/kubia app, an agnhost-like image (netexec,
// serve-hostname, pause), a UDP echo server and pause. Each app is a function of its arguments,
// writing its log to stdout like the original and running until ctx ends or a signal stops the
// process.
//
// Imported by cmd/kubesvc (`kubesvc toolbox APP`) and internal/agent (the image catalog).
package toolbox

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// App is one built-in workload.
type App struct {
	// Name is the toolbox subcommand.
	Name string
	// Usage is a one-line description.
	Usage string
	// Run runs the app with its arguments (without the name) until ctx ends or it fails.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Apps returns the built-in apps by name.
func Apps() map[string]App {
	apps := []App{
		{Name: "kubia", Usage: "luksa/kubia: HTTP on :8080 answering \"You've hit <hostname>\" (--variant v1|v2|v3|unhealthy)", Run: runKubia},
		{Name: "agnhost", Usage: "registry.k8s.io/e2e-test-images/agnhost: subcommands netexec, serve-hostname, pause", Run: runAgnhost},
		{Name: "netexec", Usage: "agnhost netexec: HTTP /hostname /clientip /echo /exit /dial ..., UDP commands", Run: runNetexec},
		{Name: "serve-hostname", Usage: "agnhost serve-hostname: answers with the hostname over HTTP, TCP or UDP", Run: runServeHostname},
		{Name: "udp-echo", Usage: "UDP (and TCP) echo server (--port 8081)", Run: runUDPEcho},
		{Name: "pause", Usage: "sleeps until SIGTERM/SIGINT; reaps orphans when it is PID 1", Run: runPause},
	}
	m := make(map[string]App, len(apps))
	for _, a := range apps {
		m[a.Name] = a
	}
	return m
}

// Names returns the sorted app names.
func Names() []string {
	var names []string
	for n := range Apps() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs the app args[0] with args[1:].
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("toolbox: which app? one of %s", strings.Join(Names(), ", "))
	}
	app, ok := Apps()[args[0]]
	if !ok {
		return fmt.Errorf("toolbox: unknown app %q (apps: %s)", args[0], strings.Join(Names(), ", "))
	}
	return app.Run(ctx, slices.Clone(args[1:]), stdout, stderr)
}

func runAgnhost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("agnhost: which subcommand? netexec, serve-hostname, pause")
	}
	switch args[0] {
	case "netexec":
		return runNetexec(ctx, args[1:], stdout, stderr)
	case "serve-hostname":
		return runServeHostname(ctx, args[1:], stdout, stderr)
	case "pause":
		return runPause(ctx, args[1:], stdout, stderr)
	case "udp-echo":
		return runUDPEcho(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("agnhost: subcommand %q is not built into kubesvc (have netexec, serve-hostname, pause)", args[0])
}
