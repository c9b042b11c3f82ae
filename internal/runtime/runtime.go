// Package runtime runs pods as processes in their own namespaces (DESIGN §5.1): a sandbox per
// pod (a persistent network namespace with a veth on the node bridge and an IP from the node's
// podCIDR, and the pod's /etc files), and containers started under shims (internal/runtime/shim)
// in that sandbox. Everything is recorded in a state directory, so a restarted agent adopts the
// running pods instead of restarting them.
//
// State layout under Config.DataDir:
//
//	netns/<uid>                                  the pod's network namespace (bind mount)
//	pods/<uid>/sandbox.json                      namespace, name, IP, veth
//	pods/<uid>/etc/{resolv.conf,hosts,hostname}  bind-mounted into every container
//	pods/<uid>/containers/<name>/<attempt>/      container.json, the shim's spec/started/exit
//	pods/<uid>/logs/<name>/<attempt>.log         CRI-format logs
//
// The package is not a security boundary: containers share the host's filesystem, PID
// namespace and users. Imported by internal/agent.
package runtime

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"

	"kubesvc/internal/runtime/ipam"
	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/podnet"
)

// Config configures a Runtime.
type Config struct {
	// DataDir holds the state (see the package doc). Required.
	DataDir string
	// Exe is the kubesvc binary re-executed for shims and exec sessions. Required.
	Exe string
	// Bridge is the node bridge; default "kubesvc0".
	Bridge string
	// PodCIDR is the node's pod range; required unless every pod uses the host network.
	PodCIDR netip.Prefix
}

// Runtime manages sandboxes and containers. It is safe for concurrent use, but the caller
// serializes the operations on one pod (the agent's pod worker).
type Runtime struct {
	cfg    Config
	bridge *podnet.Bridge
	ipam   *ipam.Allocator

	mu        sync.Mutex
	sandboxes map[string]*Sandbox
	events    chan string
	starts    chan struct{} // limits concurrent container starts
}

// New prepares the state directory and the bridge and loads the sandboxes a previous run left
// (their IPs are reserved again).
func New(cfg Config) (*Runtime, error) {
	if cfg.DataDir == "" || cfg.Exe == "" {
		return nil, errors.New("runtime: DataDir and Exe are required")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "kubesvc0"
	}
	for _, d := range []string{"netns", "pods"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
	}
	r := &Runtime{cfg: cfg, sandboxes: map[string]*Sandbox{}, events: make(chan string, 1024),
		starts: make(chan struct{}, 4*max(1, goruntime.NumCPU()))}
	if cfg.PodCIDR.IsValid() {
		var err error
		if r.ipam, err = ipam.New(cfg.PodCIDR); err != nil {
			return nil, err
		}
		if r.bridge, err = podnet.EnsureBridge(cfg.Bridge, cfg.PodCIDR, ipam.Gateway(cfg.PodCIDR)); err != nil {
			return nil, err
		}
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// Events delivers the UID of a pod whose container's shim exited (containers the runtime
// started itself; adopted ones are noticed by polling their state).
func (r *Runtime) Events() <-chan string { return r.events }

// Bridge returns the node bridge, nil without a podCIDR.
func (r *Runtime) Bridge() *podnet.Bridge { return r.bridge }

// Sandbox is a pod's network and identity context.
type Sandbox struct {
	UID         string     `json:"uid"`
	Namespace   string     `json:"namespace"`
	Name        string     `json:"name"`
	HostNetwork bool       `json:"hostNetwork,omitempty"`
	IP          netip.Addr `json:"ip,omitzero"`
	HostIf      string     `json:"hostIf,omitempty"`
	// Hostname is the pod's hostname (empty for host-network pods: the node's).
	Hostname string `json:"hostname,omitempty"`
	// Released is set once the network of a terminal pod was freed (ReleaseNetwork).
	Released bool `json:"released,omitempty"`
	dir      string
	netns    string
}

// NetNS returns the network namespace file, empty for host-network pods.
func (s *Sandbox) NetNS() string { return s.netns }

// Dir returns the pod's state directory.
func (s *Sandbox) Dir() string { return s.dir }

// SandboxConfig describes a pod's sandbox.
type SandboxConfig struct {
	UID, Namespace, Name string
	HostNetwork          bool
	// Hostname is set in the containers' UTS namespace (ignored with HostNetwork).
	Hostname string
	// HostIP is the pod IP of a host-network pod.
	HostIP netip.Addr
}

func (r *Runtime) podDir(uid string) string { return filepath.Join(r.cfg.DataDir, "pods", uid) }

func (r *Runtime) netnsPath(uid string) string { return filepath.Join(r.cfg.DataDir, "netns", uid) }

// hostIf is the node-side veth name of a pod: "ks" and 11 hex digits of its UID's hash (the
// kernel allows 15 characters).
func hostIf(uid string) string {
	sum := sha256.Sum256([]byte(uid))
	return "ks" + hex.EncodeToString(sum[:])[:11]
}

// load reads the sandboxes of a previous run and reserves their IPs.
func (r *Runtime) load() error {
	entries, err := os.ReadDir(filepath.Join(r.cfg.DataDir, "pods"))
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var sb Sandbox
		data, err := os.ReadFile(filepath.Join(r.podDir(e.Name()), "sandbox.json"))
		if err != nil {
			continue // created half-way: RemoveSandbox cleans it when the agent finds no pod
		}
		if err := json.Unmarshal(data, &sb); err != nil || sb.UID != e.Name() {
			continue
		}
		sb.dir = r.podDir(sb.UID)
		if !sb.HostNetwork {
			sb.netns = r.netnsPath(sb.UID)
			if r.ipam != nil && sb.IP.IsValid() && !sb.Released {
				if err := r.ipam.Restore(sb.IP, sb.UID); err != nil {
					sb.IP = netip.Addr{} // podCIDR changed: EnsureSandbox re-addresses
				}
			}
		}
		r.sandboxes[sb.UID] = &sb
	}
	// Pod directories without sandbox.json are listed by Orphans as well.
	return nil
}

// Sandboxes returns the known sandboxes sorted by namespace and name.
func (r *Runtime) Sandboxes() []*Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Sandbox, 0, len(r.sandboxes))
	for _, sb := range r.sandboxes {
		out = append(out, sb)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// PodDirs returns the UIDs of every pod state directory, with or without a sandbox record.
func (r *Runtime) PodDirs() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(r.cfg.DataDir, "pods"))
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, e.Name())
		}
	}
	return uids, nil
}

// Sandbox returns the sandbox of uid, or nil.
func (r *Runtime) Sandbox(uid string) *Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sandboxes[uid]
}

// EnsureSandbox creates the sandbox of cfg.UID, or completes or repairs an existing one (a
// missing namespace or veth). created reports a new network namespace: containers that ran in
// an old one must be restarted.
func (r *Runtime) EnsureSandbox(cfg SandboxConfig) (sb *Sandbox, created bool, err error) {
	r.mu.Lock()
	sb = r.sandboxes[cfg.UID]
	r.mu.Unlock()
	if sb == nil {
		sb = &Sandbox{UID: cfg.UID, Namespace: cfg.Namespace, Name: cfg.Name, HostNetwork: cfg.HostNetwork, dir: r.podDir(cfg.UID)}
	}
	if !sb.HostNetwork {
		sb.Hostname = cfg.Hostname
	}
	for _, d := range []string{"etc", "containers", "logs"} {
		if err := os.MkdirAll(filepath.Join(sb.dir, d), 0o700); err != nil {
			return nil, false, fmt.Errorf("runtime: %w", err)
		}
	}
	sb.Released = false
	if sb.HostNetwork {
		sb.IP = cfg.HostIP
	} else {
		if r.bridge == nil {
			return nil, false, errors.New("runtime: node has no podCIDR yet")
		}
		sb.netns = r.netnsPath(sb.UID)
		sb.HostIf = hostIf(sb.UID)
		if !netns.IsMounted(sb.netns) {
			_ = netns.Delete(sb.netns)
			if err := netns.New(sb.netns); err != nil {
				return nil, false, fmt.Errorf("runtime: pod network namespace: %w", err)
			}
			created = true
		}
		if !sb.IP.IsValid() {
			if sb.IP, err = r.ipam.Allocate(sb.UID); err != nil {
				return nil, false, err
			}
			created = true
		}
		if created || !linkExists(sb.HostIf) {
			if err := r.bridge.AddPod(sb.netns, sb.HostIf, sb.IP); err != nil {
				return nil, false, fmt.Errorf("runtime: pod network: %w", err)
			}
		}
	}
	data, err := json.Marshal(sb)
	if err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(filepath.Join(sb.dir, "sandbox.json"), data); err != nil {
		return nil, false, fmt.Errorf("runtime: %w", err)
	}
	r.mu.Lock()
	r.sandboxes[sb.UID] = sb
	r.mu.Unlock()
	return sb, created, nil
}

// WriteEtc writes the pod file name (resolv.conf, hosts or hostname) that containers see at
// /etc/<name>. Containers started earlier see the new content as well (it is a bind mount of
// the same inode only until replaced: the file is rewritten in place).
func (r *Runtime) WriteEtc(sb *Sandbox, name string, data []byte) error {
	path := filepath.Join(sb.dir, "etc", name)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	// Written in place, not renamed, so running containers' bind mounts follow.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("runtime: write /etc/%s of pod: %w", name, err)
	}
	return nil
}

// ReleaseNetwork deletes the veth and network namespace of a pod whose containers have all
// ended (a terminal pod) and frees its IP; its records and logs stay until RemoveSandbox.
func (r *Runtime) ReleaseNetwork(uid string) error {
	r.mu.Lock()
	sb := r.sandboxes[uid]
	r.mu.Unlock()
	if sb == nil || sb.HostNetwork {
		return nil
	}
	var errs []error
	if err := podnet.RemovePod(hostIf(uid)); err != nil {
		errs = append(errs, err)
	}
	if err := netns.Delete(r.netnsPath(uid)); err != nil {
		errs = append(errs, err)
	}
	if r.ipam != nil && sb.IP.IsValid() {
		r.ipam.Release(sb.IP, uid)
	}
	sb.Released = true
	if data, err := json.Marshal(sb); err == nil {
		if err := writeFileAtomic(filepath.Join(sb.dir, "sandbox.json"), data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveSandbox deletes the pod's veth, network namespace, IP and state directory. Its
// containers must have ended.
func (r *Runtime) RemoveSandbox(uid string) error {
	r.mu.Lock()
	sb := r.sandboxes[uid]
	delete(r.sandboxes, uid)
	r.mu.Unlock()
	var errs []error
	if err := podnet.RemovePod(hostIf(uid)); err != nil {
		errs = append(errs, err)
	}
	if err := netns.Delete(r.netnsPath(uid)); err != nil {
		errs = append(errs, err)
	}
	if sb != nil && r.ipam != nil && sb.IP.IsValid() && !sb.HostNetwork {
		r.ipam.Release(sb.IP, uid)
	}
	if err := os.RemoveAll(r.podDir(uid)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// linkExists asks netlink (not /sys/class/net, which shows the namespace sysfs was mounted in).
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func itoa(i int) string { return strconv.Itoa(i) }
