package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/atomicfile"
)

func init() {
	register("bundle", "evidence bundle (tar.gz) of a run dir for a support ticket, secrets redacted", runBundle)
}

const bundleHelp = `Usage: wstap bundle RUN_DIR -o FILE.tar.gz [--include-payloads] [--include-keylog]

Packs what a support engineer needs into one tar.gz: report.html, summary.txt,
summary.json, sessions.jsonl, events.jsonl, run.json, session.har, the
capture (capture*.pcapng) and a README.txt saying what each file is.

Redacted everywhere: Authorization, Proxy-Authorization, Cookie and Set-Cookie
values, token-like query parameters (token, access_token, jwt, key, secret,
password, auth, signature...) and JWT-shaped strings. Message data is left
out of events.jsonl and session.har, and every payload byte of text, binary
and continuation frames in the capture is overwritten (lengths kept), unless
--include-payloads. The TLS key log is never included unless --include-keylog.

Examples:
  wstap bundle wstap-runs/20261128T101500Z -o evidence.tar.gz
  wstap bundle wstap-runs/20261128T101500Z -o evidence.tar.gz --include-payloads
  wstap bundle wstap-runs/20261128T101500Z -o - | ssh support@host 'cat > ticket-4711.tar.gz'
  mkdir evidence && tar -xzf evidence.tar.gz -C evidence && tshark -r evidence/capture.pcapng -Y websocket

Flags:
`

func runBundle(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	out := fs.String("o", "", "write the bundle to `FILE.tar.gz` (- for stdout)")
	var opts report.BundleOptions
	fs.BoolVar(&opts.IncludePayloads, "include-payloads", false, "keep message data in the capture, events.jsonl and session.har")
	fs.BoolVar(&opts.IncludeKeylog, "include-keylog", false, "add keylog.txt, which decrypts any recording of the run's TLS sessions")
	dirs, code, ok := parseWithOperands(fs, "bundle", bundleHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(dirs) == 0:
		return usageError(stderr, "bundle", "no RUN_DIR given")
	case len(dirs) > 1:
		return usageError(stderr, "bundle", "one RUN_DIR at a time, got %d: %q", len(dirs), dirs)
	case *out == "":
		return usageError(stderr, "bundle", "-o FILE.tar.gz is required")
	}
	d, err := capture.OpenRunDir(dirs[0])
	if err == nil {
		err = writeOutput(*out, sharedMode(opts.IncludePayloads || opts.IncludeKeylog), stdout,
			func(w io.Writer) error { return report.WriteBundle(d, w, opts) })
	}
	if err != nil {
		fmt.Fprintf(stderr, "wstap bundle: %v\n", err)
		return 1
	}
	warnBadLines(stderr, "bundle", d)
	if *out != "-" {
		fmt.Fprintf(stderr, "wstap bundle: wrote %s\n", *out)
	}
	return 0
}

// sharedMode is the mode of a bundle or a HAR, made to be shared: 0644
// when redacted, 0600 when it keeps payloads or the key log.
func sharedMode(secrets bool) os.FileMode {
	if secrets {
		return capture.PrivateMode
	}
	return 0o644
}

// writeOutput writes a file whole with mode perm: to a temporary file beside
// it, renamed into place once complete, so a failure leaves no partial file.
// "-" is stdout.
func writeOutput(path string, perm os.FileMode, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		return write(stdout)
	}
	var werr error
	err := atomicfile.Write(path, perm, func(w io.Writer) error {
		werr = write(w)
		return werr
	})
	if err != nil && err != werr {
		return fmt.Errorf("-o: %w", err) // the file, not what goes into it
	}
	return err
}
