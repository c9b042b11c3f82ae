package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeLog(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	i := 0
	f.now = func() time.Time { i++; return base.Add(time.Duration(i) * time.Second) }
	for _, l := range lines {
		stream, text, _ := strings.Cut(l, ":")
		if err := f.Copy(stream, strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return path
}

func TestRead(t *testing.T) {
	path := writeLog(t, "stdout:one\ntwo\n", "stderr:oops\n", "stdout:no newline")
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), "2026-01-02T03:04:06Z stdout F one\n") {
		t.Fatalf("log format:\n%s", raw)
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{name: "all", opts: Options{TailLines: -1}, want: "one\ntwo\noops\nno newline\n"},
		{name: "tail 2", opts: Options{TailLines: 2}, want: "oops\nno newline\n"},
		{name: "tail 0", opts: Options{TailLines: 0}, want: ""},
		{name: "timestamps", opts: Options{TailLines: 1, Timestamps: true}, want: "2026-01-02T03:04:09Z no newline\n"},
		{name: "since", opts: Options{TailLines: -1, Since: time.Date(2026, 1, 2, 3, 4, 8, 0, time.UTC)}, want: "oops\nno newline\n"},
		{name: "limit bytes", opts: Options{TailLines: -1, LimitBytes: 6}, want: "one\ntw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Read(context.Background(), path, tc.opts, &b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRead_LongLinesArePartial(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	path := writeLog(t, "stdout:"+long+"\n")
	raw, _ := os.ReadFile(path)
	if got := strings.Count(string(raw), " stdout P "); got != 1 {
		t.Fatalf("%d partial records, want 1", got)
	}
	var b bytes.Buffer
	if err := Read(context.Background(), path, Options{TailLines: -1}, &b); err != nil {
		t.Fatal(err)
	}
	if b.String() != long+"\n" {
		t.Fatalf("reassembled line has %d bytes, want %d", b.Len(), len(long)+1)
	}
}

func TestRead_FollowEndsWhenDone(t *testing.T) {
	path := writeLog(t, "stdout:first\n")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var out bytes.Buffer
	finished := make(chan error, 1)
	go func() {
		finished <- Read(context.Background(), path, Options{TailLines: -1, Follow: true, PollInterval: 5 * time.Millisecond,
			Done: func() bool {
				select {
				case <-done:
					return true
				default:
					return false
				}
			}}, &out)
	}()
	if err := f.Copy(Stdout, strings.NewReader("second\n")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	close(done)
	select {
	case err := <-finished:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after the container was done")
	}
	if out.String() != "first\nsecond\n" {
		t.Fatalf("followed %q", out.String())
	}
}
