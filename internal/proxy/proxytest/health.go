package proxytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"kubesvc/internal/runtime/netns"
)

// Ports of the agent's proxy servers (kube-proxy's defaults, PX-H-02).
const (
	proxyHealthzPort = 10256 // 0.0.0.0
	proxyMetricsPort = 10249 // 127.0.0.1
)

// ProxyHealthz is node n's proxy health server at path (/healthz or /livez), PX-H-02.
func ProxyHealthz(n int, path string) To {
	return To{kind: toProxyHealthz, node: n, svc: path}
}

// ProxyMetrics is node n's proxy metrics at 127.0.0.1:10249/metrics (only from the node).
func ProxyMetrics(n int) To { return To{kind: toProxyMetrics, node: n} }

// httpGetFrom GETs url from the namespace ns and returns the response and body.
func httpGetFrom(ns, url string) (*http.Response, string, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		return netns.Dial(ctx, ns, network, a)
	}}
	resp, err := (&http.Client{Transport: tr, Timeout: answerWait}).Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// checkProxyHealthz checks the proxy's /healthz or /livez answer (PX-H-02): 200, JSON with
// healthy (and nodeEligible for /healthz) true and RFC 3339 times.
func (e *Env) checkProxyHealthz(t *testing.T, from From, to To) {
	t.Helper()
	ns, _, err := e.source(from)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s%s", netip.AddrPortFrom(e.Nodes[to.node-1].IP, proxyHealthzPort), to.svc)
	resp, body, err := httpGetFrom(ns, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Logf("GET %s: %s %s", url, resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var h struct {
		LastUpdated  string `json:"lastUpdated"`
		CurrentTime  string `json:"currentTime"`
		Healthy      *bool  `json:"healthy"`
		NodeEligible *bool  `json:"nodeEligible"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if h.Healthy == nil || !*h.Healthy {
		t.Errorf("healthy %v, want true", h.Healthy)
	}
	if to.svc == "/healthz" && (h.NodeEligible == nil || !*h.NodeEligible) {
		t.Errorf("nodeEligible %v, want true", h.NodeEligible)
	}
	for k, v := range map[string]string{"lastUpdated": h.LastUpdated, "currentTime": h.CurrentTime} {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			t.Errorf("%s %q: %v", k, v, err)
		}
	}
}

// checkProxyMetrics checks that the proxy's metrics carry kube-proxy's names (issue 6 item
// 4) and that it has synced.
func (e *Env) checkProxyMetrics(t *testing.T, to To) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", proxyMetricsPort)
	resp, body, err := httpGetFrom(e.Nodes[to.node-1].NetNS, url)
	if err != nil {
		t.Fatalf("GET %s on node%d: %v", url, to.node, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s on node%d: %s", url, to.node, resp.Status)
	}
	for _, name := range []string{
		"kubeproxy_sync_proxy_rules_duration_seconds_count",
		"kubeproxy_network_programming_duration_seconds_count",
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds",
	} {
		v, ok := metricValue(body, name)
		switch {
		case !ok:
			t.Errorf("metric %s missing", name)
		case v <= 0:
			t.Errorf("metric %s = %v; want > 0 after the syncs of the table's Services", name, v)
		default:
			t.Logf("%s %v", name, v)
		}
	}
}

// metricValue returns the value of the unlabelled sample name in a text exposition.
func metricValue(text, name string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}
