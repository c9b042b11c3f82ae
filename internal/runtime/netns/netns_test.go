package netns_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"kubesvc/internal/runtime/netns"
	"kubesvc/internal/runtime/netns/netnstest"
)

func TestNetns_ListenDialInside(t *testing.T) {
	a := netnstest.New(t)
	b := netnstest.New(t)
	// The same loopback address in two namespaces is two different sockets.
	la, err := netns.Listen(a, "tcp", "127.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := netns.Listen(b, "tcp", "127.0.0.1:7000")
	if err != nil {
		t.Fatalf("second listener on the same address in another namespace: %v", err)
	}
	defer lb.Close()
	for _, l := range []struct {
		name string
		l    net.Listener
	}{{"a", la}, {"b", lb}} {
		go func() {
			c, err := l.l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(l.name))
			c.Close()
		}()
	}
	for _, tc := range []struct {
		name, ns, want string
	}{
		{name: "dial in a", ns: a, want: "a"},
		{name: "dial in b", ns: b, want: "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := netns.Dial(ctx, tc.ns, "tcp", "127.0.0.1:7000")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, _ := io.ReadAll(c)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// The caller's namespace has nothing on that port.
	if c, err := netns.DialTimeout("", "tcp", "127.0.0.1:7000", time.Second); err == nil {
		c.Close()
		t.Fatal("dial in the caller's namespace reached a namespaced listener")
	}
}

func TestNetns_NewDelete(t *testing.T) {
	p := netnstest.New(t)
	if !netns.IsMounted(p) {
		t.Fatal("new namespace not mounted")
	}
	if err := netns.Delete(p); err != nil {
		t.Fatal(err)
	}
	if netns.IsMounted(p) {
		t.Fatal("deleted namespace still mounted")
	}
	if err := netns.Delete(p); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}
