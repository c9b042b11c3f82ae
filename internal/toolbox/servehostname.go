package toolbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/spf13/pflag"
)

// runServeHostname is agnhost's serve-hostname: it answers every HTTP request, TCP connection
// or UDP packet with the hostname.
func runServeHostname(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("serve-hostname", pflag.ContinueOnError)
	port := fs.Int("port", 9376, "port to serve on")
	tcp := fs.Bool("tcp", false, "serve raw TCP")
	udp := fs.Bool("udp", false, "serve UDP")
	httpOn := fs.Bool("http", true, "serve HTTP")
	closeConn := fs.Bool("close", false, "close HTTP connections after each response")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tcp && *httpOn {
		return fmt.Errorf("serve-hostname: --tcp and --http are exclusive")
	}
	hostname, err := os.Hostname()
	if err != nil {
		return err
	}
	addr := ":" + strconv.Itoa(*port)
	fmt.Fprintf(stdout, "Serving on port %d.\n", *port)
	errc := make(chan error, 3)
	if *udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 1024)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					errc <- nil
					return
				}
				_, _ = pc.WriteTo([]byte(hostname), from)
			}
		}()
	}
	if *tcp {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					errc <- nil
					return
				}
				_, _ = c.Write([]byte(hostname))
				c.Close()
			}
		}()
	}
	if *httpOn {
		go func() {
			errc <- serveHTTP(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if *closeConn {
					w.Header().Set("Connection", "close")
				}
				fmt.Fprint(w, hostname)
			}))
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// runUDPEcho echoes every UDP packet, and every TCP stream, on --port.
func runUDPEcho(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("udp-echo", pflag.ContinueOnError)
	port := fs.Int("port", 8081, "UDP and TCP port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr := ":" + strconv.Itoa(*port)
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	defer pc.Close()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(stdout, "Echoing UDP and TCP on port %d.\n", *port)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	<-ctx.Done()
	return nil
}
