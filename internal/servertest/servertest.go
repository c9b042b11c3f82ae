// Package servertest starts in-process `kubesvc server` instances for tests: embedded etcd in
// a temporary directory, every port chosen by the kernel, start-up messages discarded, and the
// server closed when the test ends.
//
// Only _test.go files import this package; it must not be linked into kubesvc binaries.
// Tests that start a server must run in a private network namespace (hack/test.sh).
package servertest

import (
	"context"
	"io"
	"sync"
	"testing"

	"kubesvc/internal/server"
)

// Option changes the test configuration before the server starts.
type Option func(*server.Config)

// WithDataDir uses dir instead of a fresh t.TempDir(), e.g. to restart a server on the same
// data.
func WithDataDir(dir string) Option { return func(c *server.Config) { c.DataDir = dir } }

// WithOutput sends the start-up messages to w instead of io.Discard.
func WithOutput(w io.Writer) Option { return func(c *server.Config) { c.Out = w } }

// WithEtcdClientPort pins the embedded etcd's client port (default 0: a free port).
func WithEtcdClientPort(port int) Option { return func(c *server.Config) { c.EtcdClientPort = port } }

// WithControllers sets --controllers (e.g. "*", "-garbagecollector"): a controller's own tests
// disable the server's copy and run the one under test.
func WithControllers(names ...string) Option {
	return func(c *server.Config) { c.Controllers = names }
}

// Config returns the test configuration: server.NewConfig with DataDir tb.TempDir(),
// BindAddress 127.0.0.1, HTTPSPort, EtcdClientPort and EtcdPeerPort 0, no agent, Out
// io.Discard; then opts.
func Config(tb testing.TB, opts ...Option) *server.Config {
	tb.Helper()
	cfg := server.NewConfig()
	cfg.DataDir = tb.TempDir()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPSPort = 0
	cfg.EtcdClientPort = 0
	cfg.EtcdPeerPort = 0
	cfg.DisableAgent = true
	cfg.Out = io.Discard
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

// StartTestServer starts a server with Config(tb, opts...) and closes it in tb.Cleanup. It
// fails the test if the server does not start.
func StartTestServer(tb testing.TB, opts ...Option) *server.Server {
	tb.Helper()
	return Start(tb, Config(tb, opts...))
}

// Start starts a server with cfg and closes it in tb.Cleanup.
func Start(tb testing.TB, cfg *server.Config) *server.Server {
	tb.Helper()
	// The context is the server's lifetime (it is the base context of every request), so it
	// ends only after Close.
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Start(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("start test server in %s: %v", cfg.DataDir, err)
	}
	tb.Cleanup(func() {
		Close(s)
		cancel()
	})
	return s
}

var closed sync.Map // *server.Server → *sync.Once

// Close closes s once; later calls (including the one in tb.Cleanup) do nothing. Use it to
// stop a server before the test ends, e.g. to restart on the same data directory.
func Close(s *server.Server) {
	once, _ := closed.LoadOrStore(s, &sync.Once{})
	once.(*sync.Once).Do(s.Close)
}
