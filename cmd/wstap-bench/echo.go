package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wstap/wstap/internal/load"
	"github.com/wstap/wstap/internal/platform"
)

// echoMain is the hidden "echo" subcommand: the benchmark's upstream, the
// built-in platform (internal/platform, the demo's) serving wss with the
// run's leaf, run as its own process so its garbage collection and CPU show
// apart from the client's. It prints its address and serves until SIGTERM.
func echoMain(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	certFile := fs.String("cert", "", "PEM certificate")
	keyFile := fs.String("key", "", "PEM key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("echo: loading --cert/--key: %w", err)
	}
	if _, err := load.RaiseOpenFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	p, err := platform.Start(platform.Config{Addr: *listen, TLS: true, Cert: &cert, ReadBuffer: 16 << 10})
	if err != nil {
		return fmt.Errorf("echo: --listen %s: %w", *listen, err)
	}
	fmt.Fprintln(os.Stdout, p.Addr())
	<-stop
	return p.Close()
}
