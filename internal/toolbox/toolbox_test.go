package toolbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kubesvc/internal/runtime/netns/netnstest"
	"kubesvc/internal/servertest"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs app in the background until the test ends.
func start(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	netnstest.RequireIsolated(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, args, out, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%v: %v", args, err)
		}
	})
	return out
}

func get(url string) (int, string, error) {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitGet polls url until it answers.
func waitGet(t *testing.T, url string) (int, string) {
	t.Helper()
	var code int
	var body string
	servertest.WaitFor(t, 10*time.Second, "GET "+url, func() error {
		var err error
		code, body, err = get(url)
		return err
	})
	return code, body
}

func udp(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var reply string
	servertest.WaitFor(t, 10*time.Second, "UDP answer from "+addr, func() error {
		_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		reply = string(buf[:n])
		return nil
	})
	return reply
}

func TestKubia(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name    string
		variant string
		want    []string // bodies of requests 1..6
		codes   []int
	}{
		{name: "v1", variant: "v1", want: repeat("You've hit "+host+"\n", 6), codes: []int{200, 200, 200, 200, 200, 200}},
		{name: "v2", variant: "v2", want: repeat("This is v2 running in pod "+host+"\n", 6), codes: []int{200, 200, 200, 200, 200, 200}},
		{name: "v3 fails from the fifth request", variant: "v3",
			want:  append(repeat("This is v3 running in pod "+host+"\n", 4), repeat("Some internal error has occurred! This is pod "+host+"\n", 2)...),
			codes: []int{200, 200, 200, 200, 500, 500}},
		{name: "unhealthy fails after five requests", variant: "unhealthy",
			want:  append(repeat("You've hit "+host+"\n", 5), "I'm not well. Please restart me!"),
			codes: []int{200, 200, 200, 200, 200, 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			log := start(t, "kubia", "--port", strconv.Itoa(port), "--variant", tc.variant)
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			for i := range tc.want {
				var code int
				var body string
				if i == 0 {
					code, body = waitGet(t, url)
				} else {
					var err error
					if code, body, err = get(url); err != nil {
						t.Fatal(err)
					}
				}
				if code != tc.codes[i] || body != tc.want[i] {
					t.Fatalf("request %d: %d %q, want %d %q", i+1, code, body, tc.codes[i], tc.want[i])
				}
			}
			if l := log.String(); !strings.HasPrefix(l, "Kubia server starting...\n") || !strings.Contains(l, "Received request from ::ffff:127.0.0.1\n") {
				t.Fatalf("log:\n%s", l)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestNetexec(t *testing.T) {
	host, _ := os.Hostname()
	hp, up := freePort(t), freePort(t)
	start(t, "agnhost", "netexec", "--http-port="+strconv.Itoa(hp), "--udp-port="+strconv.Itoa(up))
	base := fmt.Sprintf("http://127.0.0.1:%d", hp)
	waitGet(t, base+"/healthz")
	for _, tc := range []struct {
		name, path, want string
		prefix           bool
	}{
		{name: "hostname", path: "/hostname", want: host},
		{name: "echo", path: "/echo?msg=hello", want: "hello"},
		{name: "clientip", path: "/clientip", want: "127.0.0.1:", prefix: true},
		{name: "whoami", path: "/whoami", want: host + " 127.0.0.1:", prefix: true},
		{name: "dial http", path: fmt.Sprintf("/dial?request=hostname&protocol=http&host=127.0.0.1&port=%d&tries=2", hp), want: `{"responses":["` + host + `","` + host + `"],"errors":[]}` + "\n"},
		{name: "dial udp", path: fmt.Sprintf("/dial?request=echo%%20x&protocol=udp&host=127.0.0.1&port=%d&tries=1", up), want: `{"responses":["x"],"errors":[]}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := get(base + tc.path)
			if err != nil || code != 200 || (tc.prefix && !strings.HasPrefix(body, tc.want)) || (!tc.prefix && body != tc.want) {
				t.Fatalf("%s: %d %q %v, want %q", tc.path, code, body, err, tc.want)
			}
		})
	}
	addr := fmt.Sprintf("127.0.0.1:%d", up)
	if got := udp(t, addr, "hostname"); got != host {
		t.Fatalf("UDP hostname: %q", got)
	}
	if got := udp(t, addr, "echo hi there"); got != "hi there" {
		t.Fatalf("UDP echo: %q", got)
	}
	if got := udp(t, addr, "whoami"); !strings.HasPrefix(got, host+" 127.0.0.1:") {
		t.Fatalf("UDP whoami: %q", got)
	}
}

// A terminating netexec with --delay-shutdown keeps serving until the delay ends, as
// agnhost's: the proxy table's terminating endpoints (k8s-service-spec.md PX-E-01) rely on it.
func TestNetexec_DelayShutdownKeepsServing(t *testing.T) {
	netnstest.RequireIsolated(t)
	hp, up := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() {
		done <- Run(ctx, []string{"netexec", "--http-port=" + strconv.Itoa(hp), "--udp-port=" + strconv.Itoa(up), "--delay-shutdown=2"}, out, out)
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", hp)
	waitGet(t, base+"/healthz")
	stopped := time.Now()
	cancel()
	servertest.WaitFor(t, 10*time.Second, "shutdown delay logged", func() error {
		if !strings.Contains(out.String(), "Sleeping 2 seconds before terminating") {
			return fmt.Errorf("log: %s", out.String())
		}
		return nil
	})
	if code, _, err := get(base + "/hostname"); err != nil || code != 200 {
		t.Fatalf("GET during the shutdown delay: %d %v", code, err)
	}
	if got := udp(t, fmt.Sprintf("127.0.0.1:%d", up), "echo still"); got != "still" {
		t.Fatalf("UDP during the shutdown delay: %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(stopped); d < 2*time.Second {
			t.Fatalf("stopped after %v, want the 2 s delay", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("netexec did not stop after its shutdown delay")
	}
	if _, _, err := get(base + "/hostname"); err == nil {
		t.Fatal("HTTP still answers after the shutdown delay")
	}
}

func TestServeHostname(t *testing.T) {
	host, _ := os.Hostname()
	t.Run("http", func(t *testing.T) {
		p := freePort(t)
		start(t, "serve-hostname", "--port", strconv.Itoa(p))
		if _, body := waitGet(t, fmt.Sprintf("http://127.0.0.1:%d/", p)); body != host {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("tcp and udp", func(t *testing.T) {
		p := freePort(t)
		start(t, "agnhost", "serve-hostname", "--http=false", "--tcp", "--udp", "--port", strconv.Itoa(p))
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if got := udp(t, addr, "x"); got != host {
			t.Fatalf("UDP: %q", got)
		}
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		if string(b) != host {
			t.Fatalf("TCP: %q", b)
		}
	})
}

func TestUDPEcho(t *testing.T) {
	p := freePort(t)
	start(t, "udp-echo", "--port", strconv.Itoa(p))
	if got := udp(t, fmt.Sprintf("127.0.0.1:%d", p), "ping"); got != "ping" {
		t.Fatalf("echo %q", got)
	}
}

func TestRun_UnknownApp(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no app", args: nil, want: "which app?"},
		{name: "unknown app", args: []string{"nginx"}, want: `unknown app "nginx"`},
		{name: "unknown agnhost subcommand", args: []string{"agnhost", "porter"}, want: `"porter" is not built into kubesvc`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPause_StopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"pause"}, io.Discard, io.Discard) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pause did not stop")
	}
}
