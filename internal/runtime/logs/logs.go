// Package logs writes and reads container logs in the CRI format the kubelet reads
// ("<RFC3339Nano> <stream> <P|F> <text>" per line, kubernetes/cri-api's log format), and serves
// what `kubectl logs` asks for: follow, tail, since, timestamps and a byte limit.
//
// Imported by internal/runtime (the container shim writes) and internal/agent (pods/log reads).
package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Stream names used in the log format.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// maxLine is the longest line written as one record; longer lines are split into partial
// records (containerd's 16 KiB).
const maxLine = 16 << 10

// File is a container log file open for appending. Its stream writers are safe for concurrent
// use; records of different streams never interleave inside a line.
type File struct {
	mu  sync.Mutex
	f   *os.File
	now func() time.Time
}

// Create opens (appending) or creates the log file at path.
func Create(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return &File{f: f, now: time.Now}, nil
}

// Close closes the file.
func (l *File) Close() error { return l.f.Close() }

// Copy writes everything read from r as records of stream until r ends; a last line without a
// newline is written as a full record.
func (l *File) Copy(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			l.record(stream, 'F', line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			l.record(stream, 'P', line)
		case len(line) > 0:
			l.record(stream, 'F', line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (l *File) record(stream string, tag byte, text []byte) {
	var b bytes.Buffer
	b.Grow(len(text) + 48)
	b.WriteString(l.now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteByte(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(b.Bytes())
}

// Record is one parsed log line.
type Record struct {
	Time    time.Time
	Stream  string
	Partial bool
	Text    []byte
}

// Parse parses one line (without its newline).
func Parse(line []byte) (Record, error) {
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return Record{}, fmt.Errorf("log line without timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Record{}, fmt.Errorf("log line timestamp: %w", err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != Stdout && string(stream) != Stderr) {
		return Record{}, fmt.Errorf("log line stream")
	}
	tag, text, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		// An empty full line has no text after the tag's space in some writers.
		tag, text = rest, nil
	}
	if len(tag) != 1 || (tag[0] != 'P' && tag[0] != 'F') {
		return Record{}, fmt.Errorf("log line tag %q", tag)
	}
	return Record{Time: t, Stream: string(stream), Partial: tag[0] == 'P', Text: text}, nil
}

// Options select what Read returns, as the pods/log query parameters do.
type Options struct {
	// Follow keeps reading after the end of the file until Done reports true (checked at the
	// end of the file) or ctx ends.
	Follow bool
	// Done reports that no more lines will be written (the container exited); nil: never.
	Done func() bool
	// TailLines, if >= 0, returns only the last TailLines lines; -1 returns all.
	TailLines int64
	// Since, if not zero, skips records older than it.
	Since time.Time
	// Timestamps prefixes each line with its RFC3339Nano time.
	Timestamps bool
	// LimitBytes, if > 0, stops after that many bytes of output.
	LimitBytes int64
	// PollInterval is how often a follow checks for new data; default 100ms.
	PollInterval time.Duration
}

// Read writes the log at path to w as `kubectl logs` shows it.
func Read(ctx context.Context, path string, opts Options, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	defer f.Close()
	if opts.TailLines >= 0 {
		off, err := tailOffset(f, opts.TailLines)
		if err != nil {
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
	}
	out := &limitWriter{w: w, limit: opts.LimitBytes}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var pending []byte
	var tick *time.Ticker
	for {
		chunk, err := br.ReadSlice('\n')
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			pending = append(pending, chunk...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			line := bytes.TrimSuffix(pending, []byte{'\n'})
			pending = pending[:0]
			if werr := writeRecord(out, line, opts); werr != nil {
				if errors.Is(werr, errLimit) {
					return nil
				}
				return werr
			}
			if f, ok := w.(interface{ Flush() }); ok {
				f.Flush()
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		pending = append(pending, chunk...)
		if !opts.Follow || (opts.Done != nil && opts.Done()) {
			// Done is checked after reaching the end, so a line written just before the
			// container exited is still read on the next pass.
			if opts.Follow {
				if more, _ := hasMore(f); more {
					continue
				}
			}
			return nil
		}
		if tick == nil {
			tick = time.NewTicker(poll)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// hasMore reports whether f has grown past the reader position (a best-effort check).
func hasMore(f *os.File) (bool, error) {
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, err
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	return st.Size() > pos, nil
}

var errLimit = errors.New("limit reached")

func writeRecord(w *limitWriter, line []byte, opts Options) error {
	if len(line) == 0 {
		return nil
	}
	rec, err := Parse(line)
	if err != nil {
		return nil // skip garbage, as the kubelet does
	}
	if !opts.Since.IsZero() && rec.Time.Before(opts.Since) {
		return nil
	}
	var b bytes.Buffer
	if opts.Timestamps {
		b.WriteString(rec.Time.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.Write(rec.Text)
	if !rec.Partial {
		b.WriteByte('\n')
	}
	_, err = w.Write(b.Bytes())
	return err
}

// tailOffset returns the offset of the start of the last n full lines of f.
func tailOffset(f *os.File, n int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n == 0 {
		return size, nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	var count int64
	pos := size
	for pos > 0 {
		start := max(pos-block, 0)
		chunk := buf[:pos-start]
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' || start+int64(i) == size-1 {
				continue
			}
			// A newline ends the previous line; only full records count.
			count++
			if count == n {
				return start + int64(i) + 1, nil
			}
		}
		pos = start
	}
	return 0, nil
}

// limitWriter stops after limit bytes (limit <= 0: no limit) and then fails with errLimit.
type limitWriter struct {
	w     io.Writer
	limit int64
	n     int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.limit <= 0 {
		return l.w.Write(p)
	}
	left := l.limit - l.n
	if left <= 0 {
		return 0, errLimit
	}
	short := int64(len(p)) > left
	if short {
		p = p[:left]
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	if err == nil && short {
		err = errLimit
	}
	return n, err
}
