package toolbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/spf13/pflag"
)

// runKubia is the book's luksa/kubia app.js (Kubernetes in Action, chapter 2) and its variants:
// v2 answers "This is v2 running in pod <hostname>", v3 fails with 500 from the fifth request
// on, unhealthy (luksa/kubia-unhealthy) fails with 500 after five requests.
func runKubia(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("kubia", pflag.ContinueOnError)
	port := fs.Int("port", 8080, "HTTP port")
	variant := fs.String("variant", "v1", "v1, v2, v3 or unhealthy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *variant {
	case "v1", "v2", "v3", "unhealthy":
	default:
		return fmt.Errorf("kubia: unknown --variant %q", *variant)
	}
	hostname, _ := os.Hostname()
	var mu sync.Mutex
	count := 0
	var logMu sync.Mutex
	fmt.Fprintln(stdout, "Kubia server starting...")
	handler := func(w http.ResponseWriter, r *http.Request) {
		logMu.Lock()
		fmt.Fprintf(stdout, "Received request from %s\n", nodeRemoteAddress(r.RemoteAddr))
		logMu.Unlock()
		mu.Lock()
		count++
		n := count
		mu.Unlock()
		switch *variant {
		case "v2":
			fmt.Fprintf(w, "This is v2 running in pod %s\n", hostname)
		case "v3":
			if n >= 5 {
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, "Some internal error has occurred! This is pod %s\n", hostname)
				return
			}
			fmt.Fprintf(w, "This is v3 running in pod %s\n", hostname)
		case "unhealthy":
			if n > 5 {
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, "I'm not well. Please restart me!")
				return
			}
			fmt.Fprintf(w, "You've hit %s\n", hostname)
		default:
			fmt.Fprintf(w, "You've hit %s\n", hostname)
		}
	}
	return serveHTTP(ctx, ":"+strconv.Itoa(*port), http.HandlerFunc(handler))
}

// nodeRemoteAddress formats a client address as Node.js's request.connection.remoteAddress on a
// dual-stack listener: IPv4 clients appear as IPv4-mapped IPv6 addresses.
func nodeRemoteAddress(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		return "::ffff:" + ip.String()
	}
	return host
}

// serveHTTP serves h on addr until ctx ends.
func serveHTTP(ctx context.Context, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
