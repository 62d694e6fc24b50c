package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/wstap/wstap/capture/record"
)

// startStatus prints a live status line on stderr each second when it is a
// terminal, and a log line every 30 s otherwise. It returns a stop function.
func startStatus(r *running, stderr io.Writer) func() {
	f, isFile := stderr.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	every := 30 * time.Second
	if tty {
		every = time.Second
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(stderr)
				}
				return
			case <-t.C:
				line := statusLine(r)
				if tty {
					fmt.Fprintf(stderr, "\r\033[K%s", line)
				} else {
					fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05"), line)
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func statusLine(r *running) string {
	st := &r.srv.Stats
	v := st.Verdicts()
	keys := make([]record.Verdict, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "active %d  opened %d  1006 %d", st.Active.Load(), st.Opened.Load(), st.Abnormal.Load())
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %d", k, v[k])
	}
	if n := st.AcceptErrors.Load(); n > 0 {
		fmt.Fprintf(&b, "  ACCEPT ERRORS %d", n)
	}
	return b.String()
}
