package kubectl_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"kubesvc/internal/server"
)

// commandTimeout bounds one kubectl invocation.
const commandTimeout = 90 * time.Second

// binary is one kubectl build under test.
type binary struct {
	name string
	// argv is the command line prefix: [path] or [kubesvc, "kubectl"].
	argv []string
	// skip, when set, is why this build cannot run here.
	skip string
}

// binaries returns the kubectl builds of the suite: bin/kubesvc's and the newest prebuilt
// kubectl.1.3x.
func binaries() []binary {
	var bins []binary
	if p := os.Getenv("KUBESVC_BIN"); p == "" {
		bins = append(bins, binary{name: "kubesvc", skip: "KUBESVC_BIN is not set; run `make build` and export KUBESVC_BIN=$PWD/bin/kubesvc (hack/test.sh does)"})
	} else if _, err := os.Stat(p); err != nil {
		bins = append(bins, binary{name: "kubesvc", skip: fmt.Sprintf("KUBESVC_BIN=%s: %v", p, err)})
	} else {
		bins = append(bins, binary{name: "kubesvc", argv: []string{p, "kubectl"}})
	}
	if p, minor := newestPrebuilt(); p != "" {
		bins = append(bins, binary{name: "kubectl-1." + strconv.Itoa(minor), argv: []string{p}})
	} else {
		bins = append(bins, binary{name: "kubectl-1.3x", skip: "no prebuilt kubectl.1.3x next to the kubectl on PATH or in /usr/lib/google-cloud-sdk/bin"})
	}
	return bins
}

// newestPrebuilt finds the highest kubectl.1.3x beside the kubectl dispatcher on PATH.
func newestPrebuilt() (string, int) {
	var dirs []string
	if p, err := exec.LookPath("kubectl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	dirs = append(dirs, "/usr/lib/google-cloud-sdk/bin")
	best, bestMinor := "", -1
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d, "kubectl.1.3*"))
		for _, m := range matches {
			minor, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), "kubectl.1."))
			if err != nil || minor <= bestMinor {
				continue
			}
			if fi, err := os.Stat(m); err == nil && fi.Mode()&0o111 != 0 {
				best, bestMinor = m, minor
			}
		}
	}
	return best, bestMinor
}

// kubectl runs one kubectl build against one server with a fresh cache directory and HOME.
type kubectl struct {
	bin       binary
	s         *server.Server
	namespace string
	cacheDir  string
	home      string
}

func newKubectl(t *testing.T, bin binary, s *server.Server, namespace string) *kubectl {
	t.Helper()
	return &kubectl{bin: bin, s: s, namespace: namespace, cacheDir: t.TempDir(), home: t.TempDir()}
}

// result is what one kubectl invocation did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// command builds the process for args; env adds variables.
func (k *kubectl) command(ctx context.Context, args []string, env []string) *exec.Cmd {
	argv := append(slices.Clone(k.bin.argv), args...)
	argv = append(argv, "--namespace="+k.namespace, "--cache-dir="+k.cacheDir)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+k.s.Kubeconfig,
		"KUBECACHEDIR="+k.cacheDir,
		"HOME="+k.home,
		"KUBECTL_INTERACTIVE_DELETE=false",
		"NO_COLOR=1",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs kubectl with args to completion.
func (k *kubectl) run(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := k.command(ctx, args, env)
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("kubectl %s: no exit within %v\n%s", strings.Join(args, " "), commandTimeout, r)
	}
	return r
}

// stream starts kubectl with args and delivers its stdout lines; stop kills it.
func (k *kubectl) stream(t *testing.T, args ...string) (lines <-chan string, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	cmd := k.command(ctx, args, nil)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start kubectl %s: %v", strings.Join(args, " "), err)
	}
	ch := make(chan string, 100)
	var all strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			ch <- sc.Text()
		}
	}()
	waitc := make(chan error, 1)
	go func() {
		waitc <- cmd.Wait()
		pw.Close()
	}()
	return ch, func() result {
		cancel() // kills the process
		err := <-waitc
		for range ch {
		}
		<-done
		r := result{stdout: all.String(), stderr: errb.String()}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			r.code = exitErr.ExitCode()
		}
		return r
	}
}

// nextLine waits for a line of ch that satisfies match.
func nextLine(t *testing.T, ch <-chan string, timeout time.Duration, what string, match func(string) bool) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("output ended before %s; saw %q", what, seen)
			}
			if match(l) {
				return l
			}
			seen = append(seen, l)
		case <-timer.C:
			t.Fatalf("no %s within %v; saw %q", what, timeout, seen)
		}
	}
}

// headerCell matches one header cell: words separated by single spaces ("NOMINATED NODE").
var headerCell = regexp.MustCompile(`\S+( \S+)*`)

// checkTable checks that out is a kubectl table whose header fields are exactly header and
// whose layout is exactly what kubectl's tab writer makes of those cells (minimum width 6,
// padding 3, no trailing padding). Cells are cut at the header's column starts, so empty
// cells are fine. It returns the data rows split into cells.
func checkTable(t *testing.T, out string, header []string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("no table in output %q", out)
	}
	if got := strings.Fields(lines[0]); !slices.Equal(got, strings.Fields(strings.Join(header, " "))) {
		t.Errorf("header %q, want %q", got, header)
	}
	var starts []int
	for _, loc := range headerCell.FindAllStringIndex(lines[0], -1) {
		starts = append(starts, loc[0])
	}
	var rows [][]string
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 6, 4, 3, ' ', 0)
	for i, l := range lines {
		cells := make([]string, len(starts))
		for c, st := range starts {
			end := len(l)
			if c+1 < len(starts) {
				end = min(starts[c+1], len(l))
			}
			if st > 0 && st < len(l) && l[st-1] != ' ' {
				t.Errorf("line %d %q: column %d does not start at offset %d", i, l, c, st)
			}
			if st < end {
				cells[c] = strings.TrimRight(l[st:end], " ")
			}
		}
		if i > 0 {
			rows = append(rows, cells)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if buf.String() != strings.TrimRight(out, "\n")+"\n" {
		t.Errorf("table layout differs from kubectl's column layout:\ngot:\n%s\nwant:\n%s", out, buf.String())
	}
	return rows
}

// row returns the row whose first cell is name.
func row(t *testing.T, rows [][]string, name string) []string {
	t.Helper()
	for _, r := range rows {
		if len(r) > 0 && r[0] == name {
			return r
		}
	}
	t.Fatalf("no row %q in %q", name, rows)
	return nil
}
