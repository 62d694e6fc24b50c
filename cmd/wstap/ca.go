package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wstap/wstap/proxy"
)

func init() {
	register("ca", "the local CA: where it lives, how to trust it, init, export (pem or a Java p12)", runCA)
}

// caDefaultPassword is the password Java's own cacerts trust store uses, the
// one JMeter users and -Djavax.net.ssl.trustStorePassword examples expect.
const caDefaultPassword = "changeit"

const caShowHelp = `Usage: wstap ca [--ca-dir DIR]
       wstap ca init [--ca-dir DIR]
       wstap ca export --format pem|p12 --out FILE [--password changeit] [--ca-dir DIR]

Shows where the local CA lives and how to trust it from Java, JMeter, curl,
Node.js and a browser. The CA is created on first use; its key is mode 0600.

Examples:
  wstap ca                                             where the CA is, how to trust it
  wstap ca init --ca-dir ./ca                          create a CA in ./ca (kept if it exists)
  wstap ca export --format p12 --out wstap-ca.p12      a Java trust store, password changeit
  wstap ca export --format pem --out wstap-ca.pem      for curl --cacert, NODE_EXTRA_CA_CERTS
  WSTAP_CA_DIR=/etc/wstap/ca wstap ca                  another CA directory for every command

Flags:
`

const caInitHelp = `Usage: wstap ca init [--ca-dir DIR]

Creates the local CA (ca.pem, and ca-key.pem with mode 0600) unless it exists.

Examples:
  wstap ca init
  wstap ca init --ca-dir ./ca

Flags:
`

const caExportHelp = `Usage: wstap ca export --format pem|p12 --out FILE [--password changeit] [--ca-dir DIR]

Writes the CA certificate: pem for curl, Node.js and browsers; p12 for a
PKCS#12 trust store that Java (and JMeter) accept through
-Djavax.net.ssl.trustStore=FILE -Djavax.net.ssl.trustStorePassword=changeit.
--out - writes to standard output.

Examples:
  wstap ca export --format p12 --out wstap-ca.p12
  wstap ca export --format p12 --out wstap-ca.p12 --password s3cret
  wstap ca export --format pem --out wstap-ca.pem
  wstap ca export --format pem --out - | openssl x509 -noout -subject

Flags:
`

// runCA dispatches "wstap ca", "wstap ca init" and "wstap ca export".
func runCA(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "init":
			return runCAInit(args[1:], stdout, stderr)
		case "export":
			return runCAExport(args[1:], stdout, stderr)
		default:
			return usageError(stderr, "ca", "unknown subcommand %q: want init or export", args[0])
		}
	}
	return runCAShow(args, stdout, stderr)
}

// caFlagSet returns a flag set with --ca-dir; the caller adds its own flags.
func caFlagSet(name string, dir *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {}
	fs.StringVar(dir, "ca-dir", proxy.DefaultCADir(), "CA directory ($WSTAP_CA_DIR, else wstap/ca under the user config dir)")
	return fs
}

// caLoad loads or creates the CA, saying so on w when it was just created.
func caLoad(cmd, dir string, w, stderr io.Writer) (*proxy.CA, bool) {
	ca, err := proxy.LoadOrCreateCA(dir)
	if err != nil {
		fmt.Fprintf(stderr, "wstap %s: %v\n", cmd, err)
		return nil, false
	}
	if ca.Created {
		fmt.Fprintf(w, "Created a new local CA in %s\n", ca.Dir)
	}
	return ca, true
}

func runCAShow(args []string, stdout, stderr io.Writer) int {
	var dir string
	fs := caFlagSet("ca", &dir)
	if code, ok := parseFlags(fs, "ca", caShowHelp, args, stdout, stderr); !ok {
		return code
	}
	ca, ok := caLoad("ca", dir, stdout, stderr)
	if !ok {
		return 1
	}
	caPrintTrustHints(stdout, ca)
	return 0
}

// caPrintTrustHints prints where the CA lives and how each kind of client trusts it.
func caPrintTrustHints(w io.Writer, ca *proxy.CA) {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	pemPath := abs(ca.CertPath())
	fmt.Fprintf(w, `wstap local CA
  directory     %s
  certificate   %s
  key           %s (mode 0600: keep it private)
  SHA-256       %s
  valid until   %s

Trust it from
  Java          wstap ca export --format p12 --out wstap-ca.p12
                java -Djavax.net.ssl.trustStore=wstap-ca.p12 -Djavax.net.ssl.trustStorePassword=%[6]s ...
  JMeter        jmeter -n -t plan.jmx -H 127.0.0.1 -P 8080 \
                  -Djavax.net.ssl.trustStore=$PWD/wstap-ca.p12 -Djavax.net.ssl.trustStorePassword=%[6]s
                (jmeter hands -D properties to its JVM; -H/-P make the plan use wstap's forward proxy;
                the Doornbosch WebSocket Samplers accept any server certificate, Jetty-based samplers need the trust store)
  curl          curl --cacert %[2]s https://...
  Node.js       NODE_EXTRA_CA_CERTS=%[2]s node client.js
  browser       import %[2]s as a certificate authority (Firefox: Settings > Privacy & Security >
                Certificates > View Certificates > Authorities > Import)
                Chromium on Linux (certutil: apt-get install libnss3-tools; then restart Chromium):
                mkdir -p $HOME/.pki/nssdb && certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wstap -i %[2]s
`, abs(ca.Dir), pemPath, abs(ca.KeyPath()), ca.Fingerprint(), ca.Cert.NotAfter.UTC().Format(time.DateOnly), caDefaultPassword)
}

func runCAInit(args []string, stdout, stderr io.Writer) int {
	var dir string
	fs := caFlagSet("ca init", &dir)
	if code, ok := parseFlags(fs, "ca init", caInitHelp, args, stdout, stderr); !ok {
		return code
	}
	ca, ok := caLoad("ca init", dir, stdout, stderr)
	if !ok {
		return 1
	}
	if !ca.Created {
		fmt.Fprintf(stdout, "The local CA in %s already exists; kept it.\n", ca.Dir)
	}
	fmt.Fprintf(stdout, "  certificate %s\n  SHA-256     %s\nRun 'wstap ca' to see how to trust it.\n", ca.CertPath(), ca.Fingerprint())
	return 0
}

func runCAExport(args []string, stdout, stderr io.Writer) int {
	var dir, format, out, password string
	fs := caFlagSet("ca export", &dir)
	fs.StringVar(&format, "format", "pem", "pem or p12 (a PKCS#12 Java trust store)")
	fs.StringVar(&out, "out", "", "file to write, - for standard output (required)")
	fs.StringVar(&password, "password", caDefaultPassword, "password of the p12 trust store")
	if code, ok := parseFlags(fs, "ca export", caExportHelp, args, stdout, stderr); !ok {
		return code
	}
	// Refuse bad combinations before any work starts (the CA may not exist yet).
	if format != "pem" && format != "p12" {
		return usageError(stderr, "ca export", "--format %q: want pem or p12", format)
	}
	if out == "" {
		return usageError(stderr, "ca export", "--out FILE is required (- for standard output)")
	}
	passwordSet := false
	fs.Visit(func(f *flag.Flag) { passwordSet = passwordSet || f.Name == "password" })
	if passwordSet && format != "p12" {
		return usageError(stderr, "ca export", "--password applies to --format p12 only, not %q", format)
	}

	// With --out -, standard output carries the certificate: messages go to stderr.
	msg := stdout
	if out == "-" {
		msg = stderr
	}
	ca, ok := caLoad("ca export", dir, msg, stderr)
	if !ok {
		return 1
	}
	var buf bytes.Buffer
	var err error
	if format == "p12" {
		err = ca.ExportP12(&buf, password)
	} else {
		err = ca.ExportPEM(&buf)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wstap ca export: %v\n", err)
		return 1
	}
	if out == "-" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			fmt.Fprintf(stderr, "wstap ca export: writing to standard output: %v\n", err)
			return 1
		}
		return 0
	}
	// The file holds only the public CA certificate, so it may be world-readable.
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "wstap ca export: writing --out %s: %v\n", out, err)
		return 1
	}
	if format == "p12" {
		absOut, err := filepath.Abs(out)
		if err != nil {
			absOut = out
		}
		shown := password
		if password != caDefaultPassword {
			shown = "YOUR-PASSWORD" // never echo a chosen secret
		}
		fmt.Fprintf(stdout, "Wrote the Java trust store %s (alias wstap). Use it with:\n  -Djavax.net.ssl.trustStore=%s -Djavax.net.ssl.trustStorePassword=%s\n", out, absOut, shown)
	} else {
		fmt.Fprintf(stdout, "Wrote the CA certificate %s (SHA-256 %s)\n", out, ca.Fingerprint())
	}
	return 0
}
