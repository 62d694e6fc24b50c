package main

import (
	"fmt"
	"io"
	"os"

	"github.com/wstap/wstap/internal/load"
	"github.com/wstap/wstap/internal/platform"
)

// Faults a session can ask for. The client sends the text message
// platform.FaultPrefix+kind and the upstream, the built-in platform with
// Config.Faults, acts on it; "abort" is the client's own.
const (
	faultRST       = platform.FaultRST       // upstream resets its TCP connection
	faultFIN       = platform.FaultFIN       // upstream closes TCP without a close frame
	faultMalformed = platform.FaultMalformed // upstream sends a reserved-opcode or RSV1 frame, then goes on
	faultAbort     = "abort"                 // client resets its TCP connection without a close frame
)

var faultKinds = []string{faultRST, faultFIN, faultMalformed, faultAbort}

// runUpstream is the child process ('wstap-soak upstream ADDR'): the
// built-in platform (internal/platform, the demo's) on ws://, echoing and
// carrying out faults. It prints "listening ADDR" once it listens and runs
// until its stdin closes (the parent ended).
func runUpstream(addr string) error {
	if _, err := load.RaiseOpenFileLimit(); err != nil {
		fmt.Fprintf(os.Stderr, "upstream: %v\n", err)
	}
	p, err := platform.Start(platform.Config{Addr: addr, Faults: true})
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	fmt.Printf("listening %s\n", p.Addr())
	io.Copy(io.Discard, os.Stdin)
	s := p.Stats()
	fmt.Fprintf(os.Stderr, "upstream: %d sessions, %d faults, %d clean closes, %d ended without a close frame, %d rejected\n",
		s.Upgraded, s.Faults, s.CleanCloses, s.ClientGone, s.Rejected)
	return p.Close()
}
