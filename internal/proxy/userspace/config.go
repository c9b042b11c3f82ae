package userspace

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// Defaults of Config's zero fields.
const (
	DefaultDevice         = "kubesvc-vip0"
	DefaultDialTimeout    = time.Second
	DefaultUDPIdleTimeout = 10 * time.Second
	DefaultDropTimeout    = 30 * time.Second
	DefaultMaxDropped     = 256
	DefaultMaxUDPSessions = 16384
)

// Config configures the userspace Dataplane. NewConfig returns the defaults; zero fields take
// them too. It carries no runtime state except the optional Logger.
type Config struct {
	// Device is the bridge (without ports) in the node's network namespace that holds the
	// Services' ClusterIPs, externalIPs and LoadBalancer IPs as local addresses (default
	// DefaultDevice). The proxy creates it, owns every address on it and deletes it in
	// Cleanup. At most 15 bytes.
	Device string `json:"device"`
	// DialTimeout bounds each connection attempt to an endpoint; after a failure the proxy
	// tries another endpoint (default DefaultDialTimeout).
	DialTimeout time.Duration `json:"dialTimeout"`
	// UDPIdleTimeout ends a UDP session (client address → endpoint) after that long without a
	// datagram in either direction (default DefaultUDPIdleTimeout, 10 s). Every session holds
	// a socket and a goroutine, and request-response protocols such as DNS use a new client
	// port per query, so it is shorter than the kernel's 30 s UDP conntrack timeout; it is
	// longer than a slow reply (a DNS server waiting on its upstream), which arriving after
	// the session ended would be lost. kube-proxy's removed userspace mode used 250 ms
	// (`--udp-timeout`). A flow that pauses longer starts a new session, which ClientIP
	// affinity sends to the same endpoint; without affinity it may move.
	UDPIdleTimeout time.Duration `json:"udpIdleTimeout"`
	// MaxUDPSessions bounds the UDP sessions (each a socket and a goroutine) of one service
	// address; datagrams of new flows beyond it are dropped until sessions end (default
	// DefaultMaxUDPSessions). It keeps a flood of new source ports from exhausting file
	// descriptors.
	MaxUDPSessions int `json:"maxUDPSessions"`
	// DropTimeout is how long a TCP connection that policy says to drop (externalTrafficPolicy
	// or internalTrafficPolicy Local with no local endpoint, PX-T-02/03) is held open without
	// data before it is reset (default DefaultDropTimeout).
	DropTimeout time.Duration `json:"dropTimeout"`
	// MaxDropped bounds the connections held for DropTimeout per listener; beyond it dropped
	// connections are reset at once (default DefaultMaxDropped).
	MaxDropped int `json:"maxDropped"`
	// CopyBuffer, if > 0, moves TCP data through a user-space buffer of that many bytes per
	// direction instead of splice(2) (0, the default: splice). On loopback a large buffer can
	// beat splice; with real NICs splice saves the copy (PERF-ANCHORS.md §8).
	CopyBuffer int `json:"copyBuffer"`
	// Logger receives errors of the data path (default klog.Background()).
	Logger klog.Logger `json:"-"`
}

// NewConfig returns a Config with the defaults.
func NewConfig() *Config {
	return &Config{Device: DefaultDevice, DialTimeout: DefaultDialTimeout,
		UDPIdleTimeout: DefaultUDPIdleTimeout, DropTimeout: DefaultDropTimeout, MaxDropped: DefaultMaxDropped,
		MaxUDPSessions: DefaultMaxUDPSessions}
}

func (c *Config) setDefaults() {
	d := NewConfig()
	if c.Device == "" {
		c.Device = d.Device
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.UDPIdleTimeout == 0 {
		c.UDPIdleTimeout = d.UDPIdleTimeout
	}
	if c.DropTimeout == 0 {
		c.DropTimeout = d.DropTimeout
	}
	if c.MaxUDPSessions == 0 {
		c.MaxUDPSessions = d.MaxUDPSessions
	}
	if c.MaxDropped == 0 {
		c.MaxDropped = d.MaxDropped
	}
	if c.Logger.GetSink() == nil {
		c.Logger = klog.Background()
	}
}

// Validate reports the first invalid field after defaulting.
func (c *Config) Validate() error {
	if len(c.Device) > 15 {
		return fmt.Errorf("userspace proxy device %q: longer than 15 bytes", c.Device)
	}
	if c.DialTimeout < 0 || c.UDPIdleTimeout < 0 || c.DropTimeout < 0 {
		return errors.New("userspace proxy timeouts must not be negative")
	}
	if c.CopyBuffer < 0 {
		return errors.New("userspace proxy copyBuffer must not be negative")
	}
	if c.MaxDropped < 0 || c.MaxUDPSessions < 0 {
		return errors.New("userspace proxy maxDropped and maxUDPSessions must not be negative")
	}
	return nil
}
