package toolbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

// runNetexec is agnhost's netexec: an HTTP server with /, /clientip, /echo, /exit, /healthz,
// /hostname, /hostName, /header, /shell, /dial and /shutdown, and a UDP server answering the
// commands "hostname", "echo <msg>" and "clientip". As agnhost, --delay-shutdown keeps both
// servers answering for that many seconds after SIGTERM (a terminating endpoint that still
// serves).
//
// kubesvc addition: /whoami (HTTP) and "whoami" (UDP) answer "<hostname> <client ip:port>", so
// one connection tells which pod it reached and which source address the pod saw (the proxy
// behaviour table, internal/proxy/proxytest).
func runNetexec(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("netexec", pflag.ContinueOnError)
	httpPort := fs.Int("http-port", 8080, "HTTP listen port")
	udpPort := fs.Int("udp-port", 8081, "UDP listen port (-1 disables)")
	_ = fs.Int("sctp-port", -1, "SCTP listen port (not supported)")
	delayShutdown := fs.Int("delay-shutdown", 0, "seconds to wait after SIGTERM before exiting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The servers run until serveCtx ends: at once on /exit or an error, else --delay-shutdown
	// after ctx (SIGTERM).
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var log sync.Mutex
	logf := func(format string, a ...any) {
		log.Lock()
		defer log.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	exit := make(chan int, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		logf("GET /")
		fmt.Fprintf(w, "NOW: %v", time.Now())
	})
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		logf("GET /clientip")
		fmt.Fprint(w, r.RemoteAddr)
	})
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get(r.FormValue("key")))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		msg := r.FormValue("msg")
		logf("GET /echo?msg=%s", msg)
		if c := r.FormValue("code"); c != "" {
			if code, err := strconv.Atoi(c); err == nil {
				w.WriteHeader(code)
			}
		}
		fmt.Fprint(w, msg)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.FormValue("code"))
		logf("GET /exit?code=%d", code)
		exit <- code
	})
	healthz := func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", healthz)
	hostname := func(w http.ResponseWriter, r *http.Request) {
		logf("GET /hostname")
		h, _ := os.Hostname()
		fmt.Fprint(w, h)
	}
	mux.HandleFunc("/hostname", hostname)
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprint(w, h+" "+r.RemoteAddr)
	})
	mux.HandleFunc("/hostName", hostname)
	mux.HandleFunc("/shell", func(w http.ResponseWriter, r *http.Request) {
		cmd := r.FormValue("cmd")
		logf("GET /shell?cmd=%s", cmd)
		out, err := exec.CommandContext(r.Context(), "/bin/sh", "-c", cmd).CombinedOutput()
		res := map[string]string{"output": string(out)}
		if err != nil {
			res = map[string]string{"error": fmt.Sprintf("%v", err), "output": string(out)}
		}
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("/dial", dialHandler)
	mux.HandleFunc("/shutdown", func(w http.ResponseWriter, r *http.Request) {
		logf("GET /shutdown")
		exit <- 0
	})
	if *udpPort > 0 {
		pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(*udpPort))
		if err != nil {
			return err
		}
		defer pc.Close()
		go udpCommands(pc, logf)
		logf("Started UDP server on port %d", *udpPort)
	}
	logf("Started HTTP server on port %d", *httpPort)
	errc := make(chan error, 1)
	go func() { errc <- serveHTTP(serveCtx, ":"+strconv.Itoa(*httpPort), mux) }()
	select {
	case code := <-exit:
		os.Exit(code)
	case err := <-errc:
		return err
	case <-ctx.Done():
		if *delayShutdown > 0 {
			logf("Sleeping %d seconds before terminating...", *delayShutdown)
			time.Sleep(time.Duration(*delayShutdown) * time.Second)
		}
	}
	return nil
}

// udpCommands answers netexec's UDP protocol until pc closes.
func udpCommands(pc net.PacketConn, logf func(string, ...any)) {
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		cmd := strings.TrimSpace(string(buf[:n]))
		logf("UDP command %q from %s", cmd, addr)
		var reply string
		switch {
		case cmd == "hostname":
			reply, _ = os.Hostname()
		case cmd == "clientip":
			reply = addr.String()
		case cmd == "whoami":
			h, _ := os.Hostname()
			reply = h + " " + addr.String()
		case strings.HasPrefix(cmd, "echo "):
			reply = strings.TrimPrefix(cmd, "echo ")
		default:
			reply = "unknown command"
		}
		_, _ = pc.WriteTo([]byte(reply), addr)
	}
}

// dialHandler is netexec's /dial: it sends request to host:port over protocol (http or udp)
// tries times and reports the answers as {"responses": [...], "errors": [...]}.
func dialHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	request, protocol, host, port := q.Get("request"), q.Get("protocol"), q.Get("host"), q.Get("port")
	tries, _ := strconv.Atoi(q.Get("tries"))
	if tries < 1 {
		tries = 1
	}
	if protocol == "" {
		protocol = "http"
	}
	addr := net.JoinHostPort(host, port)
	res := struct {
		Responses []string `json:"responses"`
		Errors    []string `json:"errors"`
	}{Responses: []string{}, Errors: []string{}}
	for i := 0; i < tries; i++ {
		out, err := dialOnce(protocol, addr, request)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		res.Responses = append(res.Responses, out)
	}
	_ = json.NewEncoder(w).Encode(res)
}

func dialOnce(protocol, addr, request string) (string, error) {
	switch protocol {
	case "udp":
		c, err := net.DialTimeout("udp", addr, 5*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(request)); err != nil {
			return "", err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case "http":
		if !strings.HasPrefix(request, "/") {
			request = "/" + request
		}
		u := url.URL{Scheme: "http", Host: addr}
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(u.String() + request)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	return "", fmt.Errorf("unsupported protocol %q", protocol)
}
