package report

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// BundleOptions says what an evidence bundle keeps that it leaves out by
// default (docs/records.md, "The evidence bundle").
type BundleOptions struct {
	// IncludePayloads keeps message data in events.jsonl, session.har and
	// the capture; by default data-frame payloads are overwritten.
	IncludePayloads bool
	// IncludeKeylog adds keylog.txt, which decrypts any capture of the run.
	IncludeKeylog bool
}

// Bundle file names.
const (
	bundleReadme  = "README.txt"
	bundleHAR     = "session.har"
	bundleSummary = "summary.txt"
	bundleJSON    = "summary.json"
	bundleReport  = "report.html"
)

// WriteBundle writes the evidence bundle of the run in dir to out as a
// tar.gz: README.txt, report.html, summary.txt, summary.json,
// sessions.jsonl, events.jsonl and run.json redacted, session.har, every
// capture*.pcapng with data-frame payloads and upgrade secrets overwritten,
// and keylog.txt only when asked. The report is computed from the redacted
// files. Nothing is written to the run dir. Lines of sessions.jsonl and
// events.jsonl that do not parse cannot be redacted: they are left out,
// counted in d.Bad and named in README.txt.
func WriteBundle(d *capture.RunDir, out io.Writer, opts BundleOptions) error {
	tmp, err := os.MkdirTemp("", "wstap-bundle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bundler{rd: d, dir: d.Dir, tmp: tmp, opts: opts,
		harB: newHARBuilder(HAROptions{IncludePayloads: opts.IncludePayloads})}
	steps := []func() error{b.sessions, b.events, b.run, b.captures, b.har, b.reports, b.keylog, b.readme}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return b.archive(out)
}

// bundler builds the bundle's files in tmp, then archives them.
type bundler struct {
	rd           *capture.RunDir
	dir, tmp     string
	opts         BundleOptions
	files        []string // names in tmp, in archive order
	notes        []string // what the README must say was left out
	captureNames []string
	mem          []memFile // files built in memory rather than in tmp
	// harB gathers session.har as sessions and events are redacted: each
	// file of the run dir is read once.
	harB *harBuilder
}

func (b *bundler) add(name string) { b.files = append(b.files, name) }

func (b *bundler) note(format string, a ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, a...))
}

// sessions writes sessions.jsonl with every record redacted.
func (b *bundler) sessions() error {
	return lines(b, capture.SessionsFile, func(r *record.Session) ([]byte, error) {
		b.harB.session(r) // before the record is redacted in place: it redacts its own
		redactRecord(r)
		return json.Marshal(r)
	})
}

// events writes events.jsonl redacted, message data dropped unless asked.
func (b *bundler) events() error {
	return lines(b, capture.EventsFile, func(line *json.RawMessage) ([]byte, error) {
		var ev harEvent
		if json.Unmarshal(*line, &ev) == nil { // else the HAR leaves it out, as WriteHAR would
			b.harB.event(&ev)
		}
		return redactJSONLine(*line, b.opts.IncludePayloads)
	})
}

// lines writes the run dir's JSONL file name redacted, line by line. Lines
// that do not parse cannot be redacted: the run dir's reader counts them and
// they are left out, with a note.
func lines[T any](b *bundler, name string, redact func(*T) ([]byte, error)) error {
	if !b.rd.Has(name) {
		b.note("%s: not in the run dir", name)
		return nil
	}
	out, err := os.Create(filepath.Join(b.tmp, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	before := b.rd.Bad.Count
	err = capture.Lines(b.rd, name, func(v *T) error {
		red, err := redact(v)
		if err != nil {
			return fmt.Errorf("redacting %s: %w", b.rd.Path(name), err)
		}
		w.Write(red)
		return w.WriteByte('\n')
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n := b.rd.Bad.Count - before; n > 0 {
		b.note("%s: lines left out because they do not parse (they could not be redacted): %d", name, n)
	}
	b.add(name)
	return nil
}

// run writes run.json with its args and any other secret redacted.
func (b *bundler) run() error {
	raw, err := os.ReadFile(b.rd.Path(capture.RunFile))
	if os.IsNotExist(err) {
		b.note("%s: not in the run dir", capture.RunFile)
		return nil
	}
	if err != nil {
		return err
	}
	red, err := redactJSONLine(raw, false)
	if err != nil {
		b.note("%s: not JSON, left out: %v", capture.RunFile, err)
		return nil
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, red, "", "  ") == nil {
		red = append(pretty.Bytes(), '\n')
	}
	b.add(capture.RunFile)
	return os.WriteFile(filepath.Join(b.tmp, capture.RunFile), red, 0o600)
}

// captures rewrites every capture*.pcapng, in rotation order.
func (b *bundler) captures() error {
	in := captureFiles(b.dir)
	if len(in) == 0 {
		b.note("%s: not in the run dir (the proxy ran with --pcap=false?)", capture.PcapFile)
		return nil
	}
	out := make([]string, len(in))
	for i, p := range in {
		out[i] = filepath.Join(b.tmp, filepath.Base(p))
		b.captureNames = append(b.captureNames, filepath.Base(p))
	}
	if err := redactCaptures(in, out, b.opts.IncludePayloads); err != nil {
		return err
	}
	b.files = append(b.files, b.captureNames...)
	return nil
}

// captureFiles lists capture.pcapng then capture-0002.pcapng... of dir.
func captureFiles(dir string) []string {
	paths, _ := filepath.Glob(filepath.Join(dir, "capture*.pcapng"))
	sort.Slice(paths, func(i, j int) bool {
		a, c := filepath.Base(paths[i]), filepath.Base(paths[j])
		if (a == capture.PcapFile) != (c == capture.PcapFile) {
			return a == capture.PcapFile
		}
		return a < c
	})
	return paths
}

// har writes session.har (payloads only when asked).
func (b *bundler) har() error {
	f, err := os.Create(filepath.Join(b.tmp, bundleHAR))
	if err != nil {
		return err
	}
	err = b.harB.write(f, harRunVersion(b.rd))
	b.harB = nil
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	b.add(bundleHAR)
	return nil
}

// reports writes report.html, summary.txt and summary.json, computed from
// the redacted files and redacted once more as text.
func (b *bundler) reports() error {
	run, err := LoadRun(b.tmp)
	if err != nil {
		b.note("report: %v", err)
		return nil
	}
	s := Summarize(run)
	var text, html, js bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		return fmt.Errorf("summary.txt: %w", err)
	}
	b.write(bundleSummary, text.Bytes())
	if h, ok := any(s).(interface{ WriteHTML(io.Writer) error }); ok {
		if err := h.WriteHTML(&html); err != nil {
			return fmt.Errorf("report.html: %w", err)
		}
		b.write(bundleReport, html.Bytes())
	} else {
		b.note("report.html: this wstap build cannot write it; run 'wstap report' on the redacted files")
	}
	if j, ok := any(s).(interface{ WriteJSON(io.Writer) error }); ok {
		err = j.WriteJSON(&js)
	} else {
		var raw []byte
		raw, err = json.MarshalIndent(s, "", "  ")
		js.Write(raw)
	}
	if err != nil {
		return fmt.Errorf("summary.json: %w", err)
	}
	b.write(bundleJSON, js.Bytes())
	return nil
}

// write adds a generated file, its text redacted once more and the
// temporary dir it was computed from named as the run dir.
func (b *bundler) write(name string, data []byte) {
	text := strings.ReplaceAll(string(data), b.tmp, b.dir)
	b.files = append(b.files, name)
	b.mem = append(b.mem, memFile{name, []byte(redactText(text))})
}

// keylog copies keylog.txt only when asked.
func (b *bundler) keylog() error {
	if !b.opts.IncludeKeylog {
		return nil
	}
	raw, err := os.ReadFile(b.rd.Path(capture.KeylogFile))
	if os.IsNotExist(err) {
		b.note("%s: not in the run dir", capture.KeylogFile)
		return nil
	}
	if err != nil {
		return err
	}
	b.mem = append(b.mem, memFile{capture.KeylogFile, raw})
	b.add(capture.KeylogFile)
	return nil
}

// readme writes README.txt, which says what every file is.
func (b *bundler) readme() error {
	var w strings.Builder
	fmt.Fprintf(&w, "wstap evidence bundle of run dir %s, made %s.\n\n",
		filepath.Base(b.dir), time.Now().UTC().Format(time.RFC3339))
	w.WriteString(readmeFiles)
	if len(b.captureNames) > 1 {
		fmt.Fprintf(&w, "\nThe capture was rotated into %s; open them in that order, or\n"+
			"  mergecap -w all.pcapng %s\n", strings.Join(b.captureNames, ", "), strings.Join(b.captureNames, " "))
	}
	w.WriteString("\nRedacted: Authorization, Proxy-Authorization, Cookie and Set-Cookie values, token-like\n" +
		"query parameters (token, access_token, jwt, key, secret, password, auth, signature...), JWT-shaped\n" +
		"strings and bearer tokens, in every file; in the capture they are overwritten with 'x', same length.\n")
	if b.opts.IncludePayloads {
		w.WriteString("Message payloads were KEPT (--include-payloads): the capture, events.jsonl and\n" +
			"session.har hold what the clients and the platform sent.\n")
	} else {
		w.WriteString("Message payloads were left out: events.jsonl and session.har have no message data,\n" +
			"and every payload byte of text, binary and continuation frames in the capture reads 'x'\n" +
			"once unmasked (frame lengths, control frames, ping/pong payloads and close codes are kept).\n")
	}
	if b.opts.IncludeKeylog {
		w.WriteString("keylog.txt is INCLUDED (--include-keylog): it decrypts any recording of these TLS sessions.\n")
	} else {
		w.WriteString("The TLS key log (keylog.txt) was left out.\n")
	}
	if len(b.notes) > 0 {
		w.WriteString("\nNotes:\n")
		for _, n := range b.notes {
			fmt.Fprintf(&w, "  - %s\n", n)
		}
	}
	b.mem = append(b.mem, memFile{bundleReadme, []byte(w.String())})
	b.files = append([]string{bundleReadme}, b.files...)
	return nil
}

const readmeFiles = `Files:
  report.html      the report: open it in any browser (self-contained, no network)
  summary.txt      the same summary as text ('wstap report' output)
  summary.json     the same summary as one JSON document
  sessions.jsonl   one JSON line per WebSocket session: handshake, TLS, frames, keep-alive,
                   close frames, how it ended and the verdict
  events.jsonl     one JSON line per event (handshake, ping, pong, close, message, TLS, end...)
  run.json         how the proxy was run: version, arguments, limits, counters
  session.har      HAR 1.2, one entry per session: Chrome DevTools > Network > Import HAR file
                   (the Messages tab shows each WebSocket's messages)
  capture.pcapng   both legs of every session as decrypted TCP; open it in Wireshark, or
                     tshark -r capture.pcapng -Y websocket
                     tshark -r capture.pcapng -Y 'websocket.opcode == 8' -T fields -e frame.time -e websocket.close.code
`

// memFile is a bundle file built in memory.
type memFile struct {
	name string
	data []byte
}

// archive writes the tar.gz of every file, README.txt first.
func (b *bundler) archive(out io.Writer) error {
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	now := time.Now()
	for _, name := range b.files {
		if err := b.archiveFile(tw, name, now); err != nil {
			return fmt.Errorf("bundle %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func (b *bundler) archiveFile(tw *tar.Writer, name string, mod time.Time) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: mod, Typeflag: tar.TypeReg}
	for _, m := range b.mem {
		if m.name == name {
			hdr.Size = int64(len(m.data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := tw.Write(m.data)
			return err
		}
	}
	f, err := os.Open(filepath.Join(b.tmp, name))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
