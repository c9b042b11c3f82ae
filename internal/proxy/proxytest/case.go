package proxytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"kubesvc/internal/runtime/netns"
)

// Outcome is what a case's connections must do.
type Outcome int

const (
	// Reaches: every connection reaches one of Expect.Endpoints.
	Reaches Outcome = iota
	// ReachesEvery: as Reaches, and every endpoint gets at least one connection.
	ReachesEvery
	// Sticks: every connection reaches the same endpoint, one of Expect.Endpoints.
	Sticks
	// Refused: the connection is refused at once (TCP RST or ICMP port unreachable).
	Refused
	// TimesOut: no answer; the packets are dropped (or, in userspace mode, an accepted
	// connection never gets data).
	TimesOut
	// Fails: no endpoint answers, however it fails (refused, unreachable or timeout).
	Fails
	// Healthy: the health-check server answers with Expect.Health.
	Healthy
	// ProxyHealthy: the proxy's own /healthz or /livez answers healthy (PX-H-02).
	ProxyHealthy
	// HasMetrics: the proxy's metrics carry kube-proxy's names, with syncs counted.
	HasMetrics
)

func (o Outcome) String() string {
	return [...]string{"reaches one of", "reaches every one of", "sticks to one of", "is refused", "times out", "fails", "health check", "answers healthy", "has kube-proxy's metrics"}[o]
}

// Source is the source address the endpoint must see.
type Source struct {
	kind srcKind
	node int
}

type srcKind int

const (
	srcAny srcKind = iota
	srcSelf
	srcNode
)

// Any accepts whatever source the endpoint sees.
var Any = Source{}

// Self is the connecting pod's or host's own address (no SNAT).
var Self = Source{kind: srcSelf}

// NodeAddr is one of node n's addresses (its LAN address or pod gateway): masqueraded there.
func NodeAddr(n int) Source { return Source{kind: srcNode, node: n} }

func (s Source) String() string {
	switch s.kind {
	case srcSelf:
		return "its own"
	case srcNode:
		return "node" + strconv.Itoa(s.node) + "'s"
	}
	return "any"
}

// Health is a health-check server's expected answer (spec PX-H-01).
type Health struct {
	Status         int
	LocalEndpoints int
}

// Expect is a case's expected behaviour.
type Expect struct {
	Outcome Outcome
	// Endpoints are pod names (Reaches, ReachesEvery, Sticks).
	Endpoints []string
	// Source is the address the endpoint sees (Reaches, ReachesEvery, Sticks).
	Source Source
	// Conns is how many connections or UDP flows to make (default by outcome).
	Conns int
	// Health is the answer of a Healthy case.
	Health Health
}

// Deviation is what a mode does instead of Expect, by design, and why.
type Deviation struct {
	Why    string
	Expect Expect
}

// Case is one behaviour case: connections from From to To must do Expect.
type Case struct {
	Name string
	// Rule names the k8s-service-spec.md rules the case checks.
	Rule   string
	From   From
	To     To
	Expect Expect
	// Userspace, when set, is the userspace mode's documented different behaviour.
	Userspace *Deviation
}

// Timeouts of the probes; generous because CI runs loaded.
const (
	answerWait   = 10 * time.Second // a connection that must reach an endpoint
	dropWait     = 3 * time.Second  // a connection that must get no answer
	refuseWithin = time.Second      // "immediate" refusal
)

// expectFor returns the expectation of c in mode, logging a deviation.
func expectFor(t testing.TB, mode string, c Case) Expect {
	if mode == "userspace" && c.Userspace != nil {
		t.Logf("userspace mode differs by design: %s", c.Userspace.Why)
		return c.Userspace.Expect
	}
	return c.Expect
}

// Run runs one case against the world.
func (e *Env) Run(t *testing.T, c Case) {
	t.Helper()
	exp := expectFor(t, e.Mode, c)
	t.Logf("%s: from %s to %s %s %v, source %s", c.Rule, c.From, c.To, exp.Outcome, exp.Endpoints, exp.Source)
	switch exp.Outcome {
	case Healthy:
		e.checkHealth(t, c.To, exp.Health)
		return
	case ProxyHealthy:
		e.checkProxyHealthz(t, c.From, c.To)
		return
	case HasMetrics:
		e.checkProxyMetrics(t, c.To)
		return
	}
	n := exp.Conns
	if n == 0 {
		switch exp.Outcome {
		case ReachesEvery:
			n = 40
		case Sticks:
			n = 15
		case Reaches:
			n = 6
		default:
			n = 2
		}
	}
	wait := answerWait
	if exp.Outcome == TimesOut || exp.Outcome == Fails {
		wait = dropWait
	}
	_, self, err := e.source(c.From)
	if err != nil {
		t.Fatal(err)
	}
	hits := map[string]int{}
	for i := range n {
		a, err := e.probe(c.From, c.To, wait)
		if err != nil {
			t.Fatal(err)
		}
		switch exp.Outcome {
		case Reaches, ReachesEvery, Sticks:
			if a.fail != ok {
				t.Fatalf("connection %d of %d: %v; want an answer from one of %v", i+1, n, a, exp.Endpoints)
			}
			if !slices.Contains(exp.Endpoints, a.pod) {
				t.Fatalf("connection %d of %d reached %v; want one of %v", i+1, n, a, exp.Endpoints)
			}
			if err := e.checkSource(exp.Source, self, a.src); err != nil {
				t.Fatalf("connection %d of %d reached %s: %v", i+1, n, a.pod, err)
			}
			hits[a.pod]++
		case Refused:
			if a.fail != refused || a.elapsed > refuseWithin {
				t.Fatalf("connection %d of %d: %v; want refused within %v", i+1, n, a, refuseWithin)
			}
		case TimesOut:
			if a.fail != timedOut {
				t.Fatalf("connection %d of %d: %v; want no answer (dropped)", i+1, n, a)
			}
		case Fails:
			if a.fail == ok {
				t.Fatalf("connection %d of %d reached %v; want no endpoint to answer", i+1, n, a)
			}
			t.Logf("connection %d: %v", i+1, a)
		}
	}
	switch exp.Outcome {
	case ReachesEvery:
		for _, ep := range exp.Endpoints {
			if hits[ep] == 0 {
				t.Fatalf("%d connections: %v; endpoint %s got none", n, hits, ep)
			}
		}
	case Sticks:
		if len(hits) != 1 {
			t.Fatalf("%d connections spread over %v; want all on one endpoint (ClientIP affinity)", n, hits)
		}
	}
	if len(hits) > 0 {
		t.Logf("%d connections: %v", n, hits)
	}
}

// checkSource checks the source address an endpoint saw.
func (e *Env) checkSource(want Source, self, got netip.Addr) error {
	switch want.kind {
	case srcSelf:
		if got != self {
			return fmt.Errorf("endpoint saw source %s; want the client's own %s (not masqueraded)", got, self)
		}
	case srcNode:
		if addrs := e.nodeAddrs(want.node); !slices.Contains(addrs, got) {
			return fmt.Errorf("endpoint saw source %s; want one of node%d's addresses %s (masqueraded)", got, want.node, describe(addrs))
		}
	}
	return nil
}

// healthBody is the health-check server's answer (spec PX-H-01).
type healthBody struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// checkHealth GETs an arbitrary path of the health-check node port from the client host.
func (e *Env) checkHealth(t *testing.T, to To, want Health) {
	t.Helper()
	addr, _, err := e.destination(to)
	if err != nil {
		t.Fatal(err)
	}
	ns := e.World.ClientHost().NetNS
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		return netns.Dial(ctx, ns, network, a)
	}}
	resp, err := (&http.Client{Transport: tr, Timeout: answerWait}).Get("http://" + addr + "/any/path")
	if err != nil {
		t.Fatalf("GET health check %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("health check %s: %s %v\n%s", addr, resp.Status, resp.Header, body)
	if resp.StatusCode != want.Status {
		t.Errorf("status %d, want %d", resp.StatusCode, want.Status)
	}
	for k, v := range map[string]string{
		"Content-Type":                     "application/json",
		"X-Content-Type-Options":           "nosniff",
		"X-Load-Balancing-Endpoint-Weight": strconv.Itoa(want.LocalEndpoints),
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	wantBody := fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": true\n}",
		Namespace, to.svc, want.LocalEndpoints)
	if string(body) != wantBody {
		var hb healthBody
		jerr := json.Unmarshal(body, &hb)
		t.Errorf("body %q (decoded %+v, %v)\nwant %q", body, hb, jerr, wantBody)
	}
}
