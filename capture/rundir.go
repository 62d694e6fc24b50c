package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wstap/wstap/capture/record"
)

// The files of a run dir (docs/records.md, "The run dir").
const (
	RunFile      = "run.json"
	SessionsFile = "sessions.jsonl"
	EventsFile   = "events.jsonl"
	// PcapFile is the first capture file; rotation continues with
	// capture-0002.pcapng, capture-0003.pcapng and on.
	PcapFile   = "capture.pcapng"
	KeylogFile = "keylog.txt"
)

// maxBadExamples is how many bad lines BadLines quotes.
const maxBadExamples = 3

// RunDir reads a run dir back: run.json whole (it is small), sessions.jsonl
// and events.jsonl one line at a time. Every reader of a run dir (the report,
// the HAR, the bundle, wstap audit, the soak check) goes through it, so a bad
// line is handled one way everywhere: counted in Bad, quoted with its file
// and line, left out of what is computed, and never the end of the command.
type RunDir struct {
	Dir string
	Bad BadLines
	// Progress, when set, is told how many bytes of a JSONL file each read
	// took (a progress bar over a large run dir).
	Progress func(n int64)
}

// OpenRunDir checks that dir is a wstap run dir: a directory holding at
// least one of run.json, sessions.jsonl, events.jsonl or capture.pcapng.
func OpenRunDir(dir string) (*RunDir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("run dir %s: not a directory", dir)
	}
	d := &RunDir{Dir: dir}
	for _, name := range []string{RunFile, SessionsFile, EventsFile, PcapFile} {
		if d.Has(name) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("run dir %s: no %s, %s, %s or %s: not a wstap run dir",
		dir, RunFile, SessionsFile, EventsFile, PcapFile)
}

// Path is the path of the run dir's file name.
func (d *RunDir) Path(name string) string { return filepath.Join(d.Dir, name) }

// Has reports whether the run dir holds the file name.
func (d *RunDir) Has(name string) bool {
	_, err := os.Stat(d.Path(name))
	return err == nil
}

// Info reads run.json. A field of the wrong type still gives the other
// fields, with the error; a file that is not JSON gives nil and the error.
func (d *RunDir) Info() (*RunInfo, error) {
	b, err := os.ReadFile(d.Path(RunFile))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.Path(RunFile), err)
	}
	var m RunInfo
	err = json.Unmarshal(b, &m)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return &m, nil
	case errors.As(err, &typeErr):
		return &m, fmt.Errorf("%s: %w", d.Path(RunFile), err)
	}
	return nil, fmt.Errorf("%s: unparsable: %w", d.Path(RunFile), err)
}

// Sessions calls fn with every record of sessions.jsonl, in file order.
func (d *RunDir) Sessions(fn func(*record.Session) error) error {
	return Lines(d, SessionsFile, fn)
}

// Lines calls fn with every line of the run dir's JSONL file, decoded into a
// new T (fn may keep it), in file order. A missing file has no lines; a line
// that does not decode is counted in d.Bad and left out; fn's error stops the
// reading and is returned, as is a read error.
func Lines[T any](d *RunDir, file string, fn func(*T) error) error {
	if !d.Has(file) {
		return nil
	}
	return readJSONL(d.Path(file), &d.Bad, d.Progress, func(line []byte) (*T, error) {
		v := new(T)
		return v, decodeLine(line, v)
	}, fn)
}

// LinesInto is Lines decoding every line into *into, which fn must not keep:
// nothing is allocated per line for T, and a LineDecoder can carry what it
// needs from line to line. A T that is no LineDecoder is zeroed before each
// line; a LineDecoder resets itself.
func LinesInto[T any](d *RunDir, file string, into *T, fn func(*T) error) error {
	if !d.Has(file) {
		return nil
	}
	return readJSONL(d.Path(file), &d.Bad, d.Progress, func(line []byte) (*T, error) {
		if _, ok := any(into).(LineDecoder); !ok {
			var zero T
			*into = zero
		}
		return into, decodeLine(line, into)
	}, fn)
}

// ReadJSONL streams the JSONL file at path, one line at a time (a line may
// be of any length), into fn as Lines does; bad lines go to bad. Blank lines
// are no records and are passed over.
func ReadJSONL[T any](path string, bad *BadLines, fn func(*T) error) error {
	return readJSONL(path, bad, nil, func(line []byte) (*T, error) {
		v := new(T)
		return v, decodeLine(line, v)
	}, fn)
}

// readJSONL reads path line by line, decoding each with decode, telling
// progress, when set, of every read.
func readJSONL[T any](path string, bad *BadLines, progress func(int64), decode func([]byte) (*T, error), fn func(*T) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	var r io.Reader = f
	if progress != nil {
		r = progressReader{f, progress}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than br's buffer, reused
	for n := 1; ; n++ {
		line, rerr := readLine(br, &long)
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if v, err := decode(line); err != nil {
				bad.add(path, n, err)
			} else if err := fn(v); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("reading %s: %w", path, rerr)
		}
	}
}

// LineDecoder is a line type that decodes its own line: Lines and
// ReadJSONL call DecodeLine instead of json.Unmarshal, so that a type that
// keeps the line (or part of it) need not scan it twice, as a type with its
// own UnmarshalJSON under json.Unmarshal would (the whole line validated,
// skipped, then handed over). line is valid only during the call.
type LineDecoder interface {
	DecodeLine(line []byte) error
}

// decodeLine decodes line into v, through v's DecodeLine when it has one.
func decodeLine[T any](line []byte, v *T) error {
	if d, ok := any(v).(LineDecoder); ok {
		return d.DecodeLine(line)
	}
	return json.Unmarshal(line, v)
}

// readLine reads up to and including the next newline, into br's buffer
// or, for a longer line, into long: the line is valid until the next call
// (json.Unmarshal copies what it keeps).
func readLine(br *bufio.Reader, long *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	*long = append((*long)[:0], line...)
	for err == bufio.ErrBufferFull {
		line, err = br.ReadSlice('\n')
		*long = append(*long, line...)
	}
	return *long, err
}

// progressReader tells progress how many bytes each read took.
type progressReader struct {
	r        io.Reader
	progress func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.progress(int64(n))
	return n, err
}

// BadLines counts the lines of JSONL files that did not decode (a copy cut
// short, a line edited by hand) and quotes the first few as path:line: error.
type BadLines struct {
	Count    int
	Examples []string
}

func (b *BadLines) add(path string, line int, err error) {
	b.Count++
	if len(b.Examples) < maxBadExamples {
		b.Examples = append(b.Examples, fmt.Sprintf("%s:%d: %v", path, line, err))
	}
}

// String says how many lines were left out and quotes the examples; it is
// empty when there were none.
func (b BadLines) String() string {
	if b.Count == 0 {
		return ""
	}
	what := "lines that do not parse"
	if b.Count == 1 {
		what = "line that does not parse"
	}
	return fmt.Sprintf("%d %s left out (%s)", b.Count, what, strings.Join(b.Examples, "; "))
}
